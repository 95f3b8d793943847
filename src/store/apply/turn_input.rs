//! A round-robin turn's part of `apply.lua`'s argument: what the turn adds
//! for each manager (its commands and its record, JSON texts) as pieces all
//! managers share and slots each fills in. A template ([`TurnAdds::Template`])
//! is written out twice with marks for the manager, and the slots are where
//! the two differ ([`holes`]): each manager fills in his id and his
//! notification's. Other turns write out every variant and compare them
//! ([`factor`]). What the plan itself publishes is written once for all.

use std::borrow::Cow;

use super::{Command, json};
use crate::ids::Id;
use crate::output::{Notification, Output};
use crate::state::{Change, Plan, Turn, TurnAdds, Variant, fill_change, fill_output};
use crate::store::keys::Key;
use crate::store::turn::{Piece, factor, holes, write_json_str, write_pieces};

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

/// The commands of `changes` as JSON texts, for [`factor`] and [`holes`].
fn command_texts(changes: &[Change], slot: &mut impl FnMut(&Key) -> usize) -> Vec<String> {
    changes
        .iter()
        .flat_map(Command::of)
        .map(|command| command.json_text(slot))
        .collect()
}

/// What the turn's variants write, as texts in parts.
struct Texts<'a> {
    /// The JSON of the plan's own outputs, the same for every variant.
    shared: &'a [String],
    declare_users: &'a [Id],
    template: Option<(Notification, String)>,
}

impl Texts<'_> {
    /// `variant`'s commands and record, in parts.
    fn of(
        &mut self,
        variant: &Variant,
        slot: &mut impl FnMut(&Key) -> usize,
    ) -> (Vec<String>, Vec<String>) {
        let ops = json_array(command_texts(&variant.changes, slot));
        let mut outputs = self.shared.to_vec();
        outputs.extend(
            variant
                .outputs
                .iter()
                .map(|o| output_json(o, &mut self.template)),
        );
        (ops, record_parts(outputs, self.declare_users))
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

/// A template's commands and record as pieces whose slot 1 is the manager
/// and slot 2 his notification's id; `None` where the managers' ids would
/// need escaping, or the two fills differ elsewhere than in the marks. Only
/// what holds a slot is written twice.
fn template_pieces(
    texts: &mut Texts<'_>,
    variant: &Variant,
    managers: &[Id],
    slot: &mut impl FnMut(&Key) -> usize,
) -> Option<(Vec<Piece>, Vec<Piece>)> {
    if !managers.iter().all(plain) {
        return None;
    }
    let id = |s: &str| Id::parse(s).expect("a mark is a valid id");
    let (ma, mb) = (id(MANAGER_MARKS.0), id(MANAGER_MARKS.1));
    let (na, nb) = (id(NOTIFICATION_MARKS.0), id(NOTIFICATION_MARKS.1));
    let (mut ops_a, mut ops_b) = (Vec::new(), Vec::new());
    for change in &variant.changes {
        let mut a = change.clone();
        if fill_change(&mut a, &ma) {
            let mut b = change.clone();
            fill_change(&mut b, &mb);
            ops_a.extend(command_texts(std::slice::from_ref(&a), slot));
            ops_b.extend(command_texts(std::slice::from_ref(&b), slot));
        } else {
            let same = command_texts(std::slice::from_ref(change), slot);
            ops_b.extend(same.iter().cloned());
            ops_a.extend(same);
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
    let marks = [MANAGER_MARKS, NOTIFICATION_MARKS];
    Some((
        holes(&json_array(ops_a), &json_array(ops_b), &marks)?,
        holes(
            &record_parts(outputs_a, texts.declare_users),
            &record_parts(outputs_b, texts.declare_users),
            &marks,
        )?,
    ))
}

/// A turn for `apply.lua`, as JSON text: the pool and its counter, the
/// pieces of the commands and of the record, and the managers in order, each
/// with the texts of his slots (`s`, numbered from 1 in both pieces).
pub(super) fn turn_input(plan: &Plan, turn: &Turn, slot: &mut impl FnMut(&Key) -> usize) -> String {
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
    let mut out = String::new();
    out.push_str("{\"pool\":");
    out.push_str(&slot(&Key::Pool(turn.channel.clone())).to_string());
    out.push_str(",\"turn\":");
    out.push_str(&slot(&Key::Turn(turn.channel.clone())).to_string());

    let from_template = match &turn.adds {
        TurnAdds::Template {
            variant,
            notification_ids,
        } => template_pieces(&mut texts, variant, &turn.managers, slot)
            .map(|pieces| (pieces, notification_ids)),
        TurnAdds::Variants(_) => None,
    };
    // The pieces, and the texts of each manager's slots, in order.
    let factored_slots: Vec<Vec<String>>;
    let (ops, record, slots): (Vec<Piece>, Vec<Piece>, Vec<Vec<&str>>) = match from_template {
        Some(((ops, record), notification_ids)) => {
            let slots = turn
                .managers
                .iter()
                .zip(notification_ids)
                .map(|(m, n)| vec![m.as_str(), n.as_str()])
                .collect();
            (ops, record, slots)
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
            let (ops, records): (Vec<_>, Vec<_>) =
                variants.iter().map(|v| texts.of(v, slot)).unzip();
            let (ops, records) = (factor(&ops), factor(&records));
            // The record's slots follow the commands'.
            let offset = ops.slots.first().map_or(0, Vec::len);
            let record = records
                .pieces
                .into_iter()
                .map(|piece| match piece {
                    Piece::Slot(k) => Piece::Slot(k + offset),
                    shared => shared,
                })
                .collect();
            let mut all = ops.slots;
            for (each, own) in all.iter_mut().zip(records.slots) {
                each.extend(own);
            }
            factored_slots = all;
            let slots = factored_slots
                .iter()
                .map(|s| s.iter().map(String::as_str).collect())
                .collect();
            (ops.pieces, record, slots)
        }
    };
    out.push_str(",\"ops\":");
    write_pieces(&mut out, &ops);
    out.push_str(",\"record\":");
    write_pieces(&mut out, &record);
    out.push_str(",\"variants\":[");
    for (n, (manager, slots)) in turn.managers.iter().zip(&slots).enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"m\":");
        write_json_str(&mut out, manager.as_str());
        out.push_str(",\"s\":[");
        for (k, text) in slots.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            write_json_str(&mut out, text);
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out
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
