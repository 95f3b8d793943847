//! Waiting chats offered to users who gain access to their channel.

use super::*;
use crate::handlers::{ChannelState, WaitingChat};
use crate::model::WaitingEntry;

/// Reads of a `users.upserted` on `wa1`: the channel exists, the users are new,
/// `seats` sit there already, and `chats` wait there.
fn reads_with(
    seats: &[(&str, Role, bool)],
    chats: Vec<(&str, Chat)>,
    distribution: Option<Distribution>,
) -> Reads {
    let mut b = ReadsBuilder::new().channel(WA1);
    if let Some(d) = distribution {
        b = b.with(Item::Settings, ItemValue::Settings(settings(d)));
    }
    let mut reads = b.build();
    let waiting = chats
        .into_iter()
        .map(|(chat_id, chat)| WaitingChat {
            entry: WaitingEntry {
                chat_type: ChatType::Whatsapp,
                chat_id: id(chat_id),
                since: "2026-01-01T09:00:00Z".into(),
            },
            chat: stored(chat),
            contact: Stored::default(),
        })
        .collect();
    let seats = seats
        .iter()
        .map(|(u, role, rnc)| {
            let seat = Seat {
                role: *role,
                receives_new_clients: *rnc,
            };
            (id(u), seat)
        })
        .collect();
    reads.channels.insert(
        id(WA1),
        ChannelState {
            seats,
            round_robin: Stored::default(),
            waiting,
        },
    );
    reads
}

/// Reads of `wa1` under first reply: one user with `seat`, and chat `c1`
/// waiting, shown to him as new.
fn one_waiting(seat: (&str, Role, bool)) -> Reads {
    let chats = vec![("c1", pending(&[seat.0]))];
    reads_with(&[seat], chats, Some(Distribution::FirstReply))
}

fn manager_added() -> Event {
    users_upserted(vec![upsert("m9", &[(WA1, Role::Manager, true)])])
}

#[test]
fn round_robin_hands_waiting_chats_out_to_a_manager_who_became_eligible() {
    let reads = reads_with(
        &[("s1", Role::Supervisor, false)],
        vec![("c1", pending(&["s1"])), ("c2", pending(&["s1"]))],
        Some(Distribution::RoundRobin),
    );
    let p = plan(decide_account(&manager_added(), &reads));
    assert_eq!(who(&p, "chat.new"), s(&["m9", "m9"]));
    assert!(
        notifications(&p)
            .iter()
            .all(|n| n.deal_id.is_some() && n.contact_id.is_some())
    );
    assert_eq!(crm_of(&p, "contact.created").len(), 2);
    assert_eq!(crm_of(&p, "deal.created").len(), 2);
    // Supervisors keep the chat: nothing withdrawn.
    assert!(who(&p, "chat.withdrawn").is_empty());
    for chat in ["c1", "c2"] {
        let chat_ref = whatsapp(chat);
        assert!(p.changes.contains(&Change::UnmarkWaiting {
            channel: id(WA1),
            chat: chat_ref.clone()
        }));
        let settled: Chat = written(&p, &Item::Chat(chat_ref.clone())).unwrap();
        assert!(settled.pending.is_none() && settled.contact_id.is_some());
        assert!(has_guard_on(&p, &Item::Chat(chat_ref)));
    }
    let pool: RoundRobin = written(&p, &Item::RoundRobin(id(WA1))).unwrap();
    assert_eq!(pool.turn, 2);
    assert!(has_guard_on(&p, &Item::RoundRobin(id(WA1))));
    // Each chat has ids of its own.
    let contacts: BTreeSet<_> = crm_of(&p, "contact.created")
        .iter()
        .map(|c| c["contactId"].to_string())
        .collect();
    assert_eq!(contacts.len(), 2);
}

#[test]
fn first_reply_shows_waiting_chats_to_a_new_manager_without_creating_anything() {
    let reads = one_waiting(("s1", Role::Supervisor, false));
    let p = plan(decide_account(&manager_added(), &reads));
    assert_eq!(who(&p, "chat.new"), s(&["m9"]));
    assert!(crm_types(&p).is_empty());
    let offered: Chat = written(&p, &Item::Chat(whatsapp("c1"))).unwrap();
    assert_eq!(offered.pending.unwrap().shown, ids(&["s1", "m9"]));
}

#[test]
fn a_supervisor_added_later_is_shown_waiting_chats() {
    let reads = one_waiting(("m1", Role::Manager, true));
    let e = users_upserted(vec![upsert("s9", &[(WA1, Role::Supervisor, false)])]);
    let p = plan(decide_account(&e, &reads));
    assert_eq!(who(&p, "chat.new"), s(&["s9"]));
}

#[test]
fn nothing_is_offered_to_quality_control_or_managers_without_new_clients() {
    let reads = reads_with(&[], vec![("c1", pending(&[]))], None);
    let e = users_upserted(vec![
        upsert("q9", &[(WA1, Role::QualityControl, false)]),
        upsert("m8", &[(WA1, Role::Manager, false)]),
    ]);
    let p = plan(decide_account(&e, &reads));
    assert!(p.outputs.is_empty(), "{:?}", told(&p));
}

#[test]
fn a_user_who_could_claim_already_is_not_offered_again() {
    let reads = one_waiting(("m9", Role::Manager, true));
    let p = plan(decide_account(&manager_added(), &reads));
    assert!(p.outputs.is_empty(), "{:?}", told(&p));
}

#[test]
fn a_stale_index_entry_is_dropped() {
    let reads = reads_with(
        &[],
        vec![("c1", known("ct-1"))],
        Some(Distribution::RoundRobin),
    );
    let p = plan(decide_account(&manager_added(), &reads));
    assert!(p.outputs.is_empty());
    assert!(p.changes.contains(&Change::UnmarkWaiting {
        channel: id(WA1),
        chat: whatsapp("c1")
    }));
}

#[test]
fn a_chat_enters_its_channels_index_when_it_starts_waiting_and_leaves_it_when_claimed() {
    let p = plan(Snap::first_reply().client_writes());
    let entry = p.changes.iter().find_map(|op| match op {
        Change::MarkWaiting { channel, entry } if *channel == id(WA1) => Some(entry.clone()),
        _ => None,
    });
    let entry = entry.expect("indexed as waiting");
    assert_eq!(entry.chat(), chat_ref());

    let snap = Snap::first_reply().waiting().asker("m1").build();
    let p = plan(decide_out(&outbound("ev-2", "m1"), &snap));
    assert!(p.changes.contains(&Change::UnmarkWaiting {
        channel: id(WA1),
        chat: chat_ref()
    }));
}
