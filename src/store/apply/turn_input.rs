//! A round-robin turn's part of `apply.lua`'s arguments: what the turn adds
//! for each manager (its commands' tokens and its record's JSON) as texts all
//! managers share with slots marked in them that each fills in. A template
//! ([`TurnAdds::Template`]) is written out twice with marks for the manager,
//! and the slots are where the two differ ([`holes`]): each manager fills in
//! his id and his notification's. Other turns send each variant's commands
//! as they are and compare their records ([`factor`]). What the plan itself
//! publishes is written once for all.

use std::borrow::Cow;
use std::collections::HashSet;

use super::{change_tokens, json};
use crate::ids::Id;
use crate::output::{Notification, Output};
use crate::state::{Plan, Turn, TurnAdds, Variant, fill_change, fill_output};
use crate::store::keys::Key;
use crate::store::turn::{factor, holes, marked};

/// The JSON of a record of `outputs` (given as their texts) and
/// `declare_users`, in parts that join into [`super::Record::to_json`]'s text: one
/// for each output, for [`factor`] and [`holes`].
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

/// What the turn's variants write, as texts in parts.
struct Texts<'a> {
    /// The JSON of the plan's own outputs, the same for every variant.
    shared: &'a [String],
    declare_users: &'a [Id],
    template: Option<(Notification, String)>,
}

impl Texts<'_> {
    /// `variant`'s record, in parts.
    fn record(&mut self, variant: &Variant) -> Vec<String> {
        let mut outputs = self.shared.to_vec();
        outputs.extend(
            variant
                .outputs
                .iter()
                .map(|o| output_json(o, &mut self.template)),
        );
        record_parts(outputs, self.declare_users)
    }
}

/// Marks of a template's manager and of his notification's id, two of each
/// ([`holes`]): ASCII, equally long, different at every byte, and as ids they
/// need no escaping in JSON, however deep.
const MANAGER_MARKS: (&str, &str) = ("mmmmmmmmmmmmmmmm", "MMMMMMMMMMMMMMMM");
const NOTIFICATION_MARKS: (&str, &str) = (
    "nnnnnnnn-nnnn-nnnn-nnnn-nnnnnnnnnnnn",
    "NNNNNNNN+NNNN+NNNN+NNNN+NNNNNNNNNNNN",
);

/// Whether `id` is written into JSON as it is (no `"` or `\`; an id has no
/// control characters), so it fills a slot whatever the depth of quoting.
fn plain(id: &Id) -> bool {
    !id.as_str().contains(['"', '\\'])
}

/// A template's command tokens and record with slot 1 marked where the
/// manager goes and slot 2 his notification's id; `None` where the managers'
/// ids would need escaping in the record's JSON, or the two fills differ
/// elsewhere than in the marks. Only what holds a slot is written twice.
fn template_texts(
    texts: &mut Texts<'_>,
    variant: &Variant,
    managers: &[Id],
    absent: &HashSet<Key>,
    slot: &mut impl FnMut(&Key) -> usize,
) -> Option<(Vec<String>, String)> {
    if !managers.iter().all(plain) {
        return None;
    }
    let id = |s: &str| Id::parse(s).expect("a mark is a valid id");
    let (ma, mb) = (id(MANAGER_MARKS.0), id(MANAGER_MARKS.1));
    let (na, nb) = (id(NOTIFICATION_MARKS.0), id(NOTIFICATION_MARKS.1));
    let marks = [MANAGER_MARKS, NOTIFICATION_MARKS];
    let mut ops = Vec::new();
    for change in &variant.changes {
        let mut a = change.clone();
        if fill_change(&mut a, &ma) {
            let mut b = change.clone();
            fill_change(&mut b, &mb);
            let tokens_a = change_tokens(std::slice::from_ref(&a), absent, slot);
            let tokens_b = change_tokens(std::slice::from_ref(&b), absent, slot);
            if tokens_a.len() != tokens_b.len() {
                return None;
            }
            for (x, y) in tokens_a.into_iter().zip(tokens_b) {
                if x == y {
                    ops.push(x);
                } else {
                    ops.push(marked(&holes(&[x], &[y], &marks)?, 1));
                }
            }
        } else {
            ops.extend(change_tokens(std::slice::from_ref(change), absent, slot));
        }
    }
    let (mut outputs_a, mut outputs_b) = (texts.shared.to_vec(), texts.shared.to_vec());
    for output in variant.outputs.iter() {
        let mut a = output.clone();
        if fill_output(&mut a, &ma, &na) {
            let mut b = output.clone();
            fill_output(&mut b, &mb, &nb);
            outputs_a.push(output_json(&a, &mut texts.template));
            outputs_b.push(output_json(&b, &mut texts.template));
        } else {
            let same = output_json(output, &mut texts.template);
            outputs_b.push(same.clone());
            outputs_a.push(same);
        }
    }
    let record = holes(
        &record_parts(outputs_a, texts.declare_users),
        &record_parts(outputs_b, texts.declare_users),
        &marks,
    )?;
    Some((ops, marked(&record, 1)))
}

/// A turn's tokens for `apply.lua`, appended to `out`: the pool and its
/// counter, the op tokens every manager shares and the record, with slots
/// marked (slot 1 is the manager's id), the managers in order, then the texts
/// of each one's other slots, and his own op tokens where there are any.
pub(super) fn turn_input(
    plan: &Plan,
    turn: &Turn,
    absent: &HashSet<Key>,
    slot: &mut impl FnMut(&Key) -> usize,
    out: &mut Vec<String>,
) {
    let mut template = None;
    let shared: Vec<String> = plan
        .outputs
        .iter()
        .map(|o| output_json(o, &mut template))
        .collect();
    let mut texts = Texts {
        shared: &shared,
        declare_users: &plan.declare_users,
        template,
    };
    out.push(slot(&Key::Pool(turn.channel.clone())).to_string());
    out.push(slot(&Key::Turn(turn.channel.clone())).to_string());

    let from_template = match &turn.adds {
        TurnAdds::Template {
            variant,
            notification_ids,
        } => template_texts(&mut texts, variant, &turn.managers, absent, slot)
            .map(|texts| (texts, notification_ids)),
        TurnAdds::Variants(_) => None,
    };
    match from_template {
        Some(((ops, record), notification_ids)) => {
            out.push(ops.len().to_string());
            out.extend(ops);
            out.push(record);
            managers(turn, out);
            // One more slot each: his notification's id.
            out.push("1".to_owned());
            out.extend(notification_ids.iter().map(|n| n.as_str().to_owned()));
        }
        None => {
            let variants: Vec<Cow<'_, Variant>> = match &turn.adds {
                TurnAdds::Variants(variants) => variants.iter().map(Cow::Borrowed).collect(),
                TurnAdds::Template { .. } => turn
                    .managers
                    .iter()
                    .map(|m| Cow::Owned(turn.variant(m).expect("a manager of the turn")))
                    .collect(),
            };
            let records: Vec<Vec<String>> = variants.iter().map(|v| texts.record(v)).collect();
            let records = factor(&records);
            // No shared op tokens: each variant sends its own. The record's
            // slots follow the manager's id.
            out.push("0".to_owned());
            out.push(marked(&records.pieces, 2));
            managers(turn, out);
            out.push("0".to_owned());
            for (variant, slots) in variants.iter().zip(records.slots) {
                out.push(slots.len().to_string());
                out.extend(slots);
                let ops = change_tokens(&variant.changes, absent, slot);
                out.push(ops.len().to_string());
                out.extend(ops);
            }
        }
    }
}

/// The turn's managers, counted, in order.
fn managers(turn: &Turn, out: &mut Vec<String>) {
    out.push(turn.managers.len().to_string());
    out.extend(turn.managers.iter().map(|m| m.as_str().to_owned()));
}

/// A JSON array's text from its elements' texts, as parts (`[`, elements
/// with their commas, `]`) for [`factor`] and [`holes`].
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
