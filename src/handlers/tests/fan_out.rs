//! A message fanned out to many users: its record (kept for redeliveries)
//! holds the text once, and expands into the same bodies after a round trip
//! through its stored form.

use super::*;
use crate::store::Record;

const TEXT_BYTES: usize = 256 * 1024;

/// A new client's 256 KiB first message on a channel with `managers`
/// eligible managers (plus `q1` and `s1`): everyone is shown it as new.
fn fan_out(managers: usize) -> Plan {
    let mut snap =
        Snap::wa1()
            .settings(Distribution::FirstReply)
            .seat("q1", Role::QualityControl, false);
    for n in 0..managers {
        snap = snap.seat(&format!("m{n}"), Role::Manager, true);
    }
    let mut e = inbound("ev-big");
    e.text = Some("x".repeat(TEXT_BYTES));
    plan(decide_in(&e, &snap.build()))
}

#[test]
fn the_record_of_a_fan_out_keeps_the_text_once() {
    for managers in [2, 29] {
        let p = fan_out(managers);
        let users = managers + 1;
        let stored = Record::of(&p).to_json();
        // Per user: its id, the type and the notification's id.
        let bound = TEXT_BYTES + 1024 + 100 * users;
        assert!(
            stored.len() < bound,
            "{users} users: a record of {} bytes (bound {bound})",
            stored.len()
        );
        let all = notifications(&p);
        assert_eq!(all.len(), users);
        assert!(
            all.iter()
                .all(|n| n.text.as_ref().unwrap().len() == TEXT_BYTES)
        );

        let back: Record = serde_json::from_str(&stored).unwrap();
        assert_eq!(
            back.outputs.messages(),
            p.outputs.messages(),
            "a redelivery publishes the same bytes"
        );
    }
}

#[test]
fn notifications_of_one_chat_share_a_template_and_keep_their_order() {
    let p = fan_out(2);
    let groups: Vec<usize> = p
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::Notify { to, .. } => Some(to.len()),
            _ => None,
        })
        .collect();
    assert_eq!(groups, vec![3], "one template for m0, m1 and q1");
    let order: Vec<String> = notifications(&p)
        .into_iter()
        .map(|n| n.user_id.to_string())
        .collect();
    assert_eq!(order, s(&["m0", "m1", "q1"]));
}
