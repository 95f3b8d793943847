//! The check must fail on each kind of fault it claims to find: one
//! first-reply chat with a race, its perfect arrivals, then each one spoiled.

use serde_json::{Value, json};

use crate::check::check;
use crate::collect::Received;
use crate::model::{Distribution, Expect, MANAGERS, Model, NewChat, QC, Rule};

const A: &str = "acc";

fn model() -> Model {
    let expect = |message_id: &str, rule| Expect {
        account: A.into(),
        chat: "c1".into(),
        message_id: message_id.into(),
        rule,
    };
    Model {
        expects: vec![
            expect(
                "a",
                Rule::Inbound {
                    to: [MANAGERS.as_slice(), &[QC]].concat(),
                    owner: false,
                },
            ),
            expect(
                "r1",
                Rule::Race {
                    replies: vec![("m1", "r1".into()), ("m2", "r2".into())],
                },
            ),
            expect(
                "b",
                Rule::Inbound {
                    to: vec![QC],
                    owner: true,
                },
            ),
        ],
        new_chats: vec![NewChat {
            account: A.into(),
            chat: "c1".into(),
            distribution: Distribution::FirstReply,
        }],
        known_chats: vec![],
        bad: vec!["ev-bad".into()],
    }
}

fn note(user: &str, kind: &str, message: &str, seq: u64) -> (String, String, Value, bool) {
    let id = format!("{user}-{kind}-{message}");
    let n = json!({ "notificationId": id, "type": kind, "accountId": A, "userId": user, "chatId": "c1",
                    "messageId": message, "text": format!("c1 #{seq}"), "reason": "claimed_by_other" });
    (A.into(), user.into(), n, false)
}

fn perfect() -> Received {
    let mut notes: Vec<_> = MANAGERS
        .iter()
        .chain([&QC])
        .map(|u| note(u, "chat.new", "a", 0))
        .collect();
    notes.push(note("m1", "chat.assigned", "", 0));
    notes.push(note(QC, "chat.message", "r1", 1));
    notes.push(note("m2", "message.rejected", "r2", 2));
    for m in ["m2", "m3", "m4"] {
        notes.push(note(m, "chat.withdrawn", "", 0));
    }
    notes.push(note("m1", "chat.message", "b", 3));
    notes.push(note(QC, "chat.message", "b", 3));
    Received {
        notes,
        crm: vec![
            json!({ "eventId": "e1", "type": "contact.created", "accountId": A, "contactId": "k1",
                    "responsibleUserId": "m1", "contactData": [{ "chatId": "c1" }] }),
            json!({ "eventId": "e2", "type": "deal.created", "accountId": A, "contactIds": ["k1"], "dealId": "d1" }),
        ],
        sends: vec![json!({ "accountId": A, "messageId": "r1" })],
        dead: vec![(br#"{"eventId":"ev-bad"}"#.to_vec(), "unknown_type".into())],
        stalled: false,
    }
}

#[test]
fn perfect_arrivals_pass_and_repeats_are_only_counted() {
    let mut r = perfect();
    r.notes.push(r.notes[0].clone());
    let f = check(&model(), &r);
    assert_eq!(f.expected_notes, 13);
    assert_eq!((f.distinct_notes, f.duplicated_by_id), (13, 1));
    let failures = [
        f.lost,
        f.unexpected,
        f.same_cause_new_id,
        f.wrong_reason,
        f.lost_sends,
        f.unexpected_sends,
        f.lost_crm,
        f.duplicate_contacts,
        f.duplicate_deals,
        f.multi_winner_claims,
        f.winner_not_replier,
        f.out_of_order,
        f.lost_dead,
        f.good_dead,
    ];
    assert_eq!(failures, [0; 14], "{:?}", f.examples);
}

#[test]
fn each_fault_is_counted() {
    let mut r = perfect();
    r.notes
        .retain(|n| n.2["notificationId"] != "m3-chat.withdrawn-");
    assert_eq!(check(&model(), &r).lost, 1);

    let mut r = perfect();
    r.crm.push(
        json!({ "eventId": "e3", "type": "contact.created", "accountId": A, "contactId": "k2",
                       "responsibleUserId": "m2", "contactData": [{ "chatId": "c1" }] }),
    );
    let f = check(&model(), &r);
    assert_eq!((f.duplicate_contacts, f.multi_winner_claims), (1, 1));

    let mut r = perfect();
    r.notes.push(note("m2", "chat.assigned", "", 0));
    assert_eq!(check(&model(), &r).multi_winner_claims, 1);

    let mut r = perfect();
    r.notes.swap(6, 12); // quality control: "b" (#3) before the reply (#1)
    assert_eq!(check(&model(), &r).out_of_order, 1);

    let mut r = perfect();
    r.sends.push(json!({ "accountId": A, "messageId": "r2" }));
    assert_eq!(check(&model(), &r).unexpected_sends, 1);

    let mut r = perfect();
    r.dead
        .push((br#"{"eventId":"ev-good"}"#.to_vec(), "invalid".into()));
    r.dead.remove(0);
    let f = check(&model(), &r);
    assert_eq!((f.good_dead, f.lost_dead), (1, 1));

    let mut r = perfect();
    let mut again = note("m1", "chat.message", "b", 3);
    again.2["notificationId"] = json!("another-id");
    r.notes.push(again);
    assert_eq!(check(&model(), &r).same_cause_new_id, 1);
}
