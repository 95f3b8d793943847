//! A round-robin turn's part of `apply.lua`'s argument: each variant's
//! commands and record as JSON texts in parts, factored into what all
//! variants share and what each fills in ([`factor`]). Written straight to
//! text, what the plan itself publishes once for all variants, so a turn
//! costs little more than its variants' own ids and changes.

use super::{Command, json};
use crate::ids::Id;
use crate::output::{Notification, Output};
use crate::state::{Change, Plan, Turn};
use crate::store::keys::Key;
use crate::store::turn::factor;

/// The JSON of a record of `outputs` (given as their texts) and
/// `declare_users`, in parts that join into [`super::Record::to_json`]'s text: one
/// for each output, for [`factor`].
fn record_parts(outputs: Vec<String>, declare_users: &[Id]) -> Vec<String> {
    let mut parts = json_array(outputs);
    parts[0].insert_str(0, "{\"o\":");
    let last = parts.last_mut().expect("a closing bracket");
    if !declare_users.is_empty() {
        last.push_str(",\"q\":");
        last.push_str(&json(&declare_users));
    }
    last.push('}');
    parts
}

/// The JSON of `output`, as [`super::Record::to_json`] writes it. A group of
/// notifications reuses `template`, the JSON of its template when that is
/// `same` as the group's (the variants of a turn share it, text and all), so
/// a text is escaped once per turn, not once per manager.
fn output_json(output: &Output, template: &mut Option<(Notification, String)>) -> String {
    let Output::Notify { template: t, to } = output else {
        return json(output);
    };
    if template.as_ref().is_none_or(|(same, _)| same != t) {
        *template = Some((t.clone(), json(t)));
    }
    let text = &template.as_ref().expect("a template's JSON").1;
    let mut out = String::with_capacity(text.len() + 16 + 96 * to.len());
    out.push_str("{\"n\":{\"t\":");
    out.push_str(text);
    out.push_str(",\"to\":");
    out.push_str(&json(to));
    out.push_str("}}");
    out
}

/// The commands of `changes` as JSON texts, for [`factor`].
fn command_texts(changes: &[Change], slot: &mut impl FnMut(&Key) -> usize) -> Vec<String> {
    changes
        .iter()
        .flat_map(Command::of)
        .map(|command| command.json_text(slot))
        .collect()
}

/// A turn for `apply.lua`: the pool and its counter, the managers in order,
/// and each variant's commands and record as pieces they share and slots each
/// fills in ([`factor`]), so the message text goes once, not once per manager.
/// What the plan itself publishes is written once for all variants.
pub(super) fn turn_input(
    plan: &Plan,
    turn: &Turn,
    slot: &mut impl FnMut(&Key) -> usize,
) -> serde_json::Value {
    let mut ops = Vec::with_capacity(turn.variants.len());
    let mut records = Vec::with_capacity(turn.variants.len());
    let mut template = None;
    let shared: Vec<String> = plan
        .outputs
        .iter()
        .map(|o| output_json(o, &mut template))
        .collect();
    for variant in &turn.variants {
        ops.push(json_array(command_texts(&variant.changes, slot)));
        let outputs = shared
            .iter()
            .cloned()
            .chain(
                variant
                    .outputs
                    .iter()
                    .map(|o| output_json(o, &mut template)),
            )
            .collect();
        records.push(record_parts(outputs, &plan.declare_users));
    }
    let ops = factor(&ops);
    let records = factor(&records);
    let variants: Vec<serde_json::Value> = turn
        .variants
        .iter()
        .enumerate()
        .map(|(n, v)| {
            serde_json::json!({
                "m": v.manager.as_str(),
                "ops": ops.slots[n],
                "record": records.slots[n],
            })
        })
        .collect();
    serde_json::json!({
        "pool": slot(&Key::Pool(turn.channel.clone())),
        "turn": slot(&Key::Turn(turn.channel.clone())),
        "ops": ops.pieces_json(),
        "record": records.pieces_json(),
        "variants": variants,
    })
}

/// A JSON array's text from its elements' texts, as parts (`[`, elements
/// with their commas, `]`) for [`factor`].
fn json_array(elements: Vec<String>) -> Vec<String> {
    let mut parts = Vec::with_capacity(elements.len() + 2);
    parts.push("[".to_owned());
    let n = elements.len();
    for (i, element) in elements.into_iter().enumerate() {
        parts.push(if i + 1 < n { element + "," } else { element });
    }
    parts.push("]".to_owned());
    parts
}
