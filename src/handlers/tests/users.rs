//! `users.upserted` and `users.removed`.

use super::*;

/// `u1` loses his seat on `channel`.
fn unseated(channel: &str) -> Change {
    Change::RemoveSeat {
        channel: id(channel),
        user: id("u1"),
    }
}

/// `u1` gets this seat on `channel`.
fn seated(channel: &str, role: Role, receives_new_clients: bool) -> Change {
    Change::SaveSeat {
        channel: id(channel),
        user: id("u1"),
        seat: seat(role, receives_new_clients),
    }
}

fn seat_changes(plan: &Plan) -> Vec<&Change> {
    changes_where(plan, |op| {
        matches!(op, Change::SaveSeat { .. } | Change::RemoveSeat { .. })
    })
}

/// Manager on `wa1` and supervisor on `wa2`.
const TWO_SEATS: [(&str, Role, bool); 2] = [
    ("wa1", Role::Manager, true),
    ("wa2", Role::Supervisor, false),
];

/// Reads in which `u1` has [`TWO_SEATS`].
fn u1_on_two_channels() -> Reads {
    ReadsBuilder::new().user("u1", &TWO_SEATS).build()
}

#[test]
fn users_upserted_asks_for_the_user_and_his_channels() {
    let e = users_upserted(vec![upsert("u1", &TWO_SEATS)]);
    assert_eq!(
        super::super::reads(&e),
        Some(vec![
            Read::Item(Item::Settings),
            Read::Item(Item::User(id("u1"))),
            Read::Item(Item::Channel(id("wa1"))),
            Read::Item(Item::Channel(id("wa2"))),
            Read::ChannelState(id("wa1")),
            Read::ChannelState(id("wa2")),
        ])
    );
}

#[test]
fn users_upserted_with_an_unknown_channel_is_rejected() {
    let e = users_upserted(vec![upsert(
        "u1",
        &[("wa1", Role::Manager, true), ("wa9", Role::Manager, true)],
    )]);
    let reads = ReadsBuilder::new()
        .channel("wa1")
        .absent(Item::Channel(id("wa9")))
        .build();
    let r = rejection(decide_account(&e, &reads));
    assert_eq!(r.code(), "unknown_channel");
    assert!(r.to_string().contains("wa9"), "{r}");
}

#[test]
fn users_upserted_creates_a_new_user_and_declares_his_queue() {
    let e = users_upserted(vec![upsert("u1", &[("wa1", Role::Manager, true)])]);
    let reads = ReadsBuilder::new()
        .channel("wa1")
        .absent(Item::User(id("u1")))
        .build();
    let p = plan(decide_account(&e, &reads));
    assert_eq!(p.changes[0], seated("wa1", Role::Manager, true));
    assert!(matches!(&p.changes[1], Change::SaveUser(u) if u.user_id == id("u1")));
    assert_eq!(p.changes.last(), Some(&Change::ConfigChanged));
    assert_eq!(p.changes.len(), 3);
    assert_eq!(p.declare_users, ids(&["u1"]));
    assert!(p.outputs.is_empty());
    assert!(has_guard_on(&p, &Item::Config));
}

#[test]
fn users_upserted_replaces_the_access_list_whole() {
    // u1 was manager on wa1 and quality control on wa2; now supervisor on wa2 and manager on wa3.
    let e = users_upserted(vec![upsert(
        "u1",
        &[
            ("wa2", Role::Supervisor, false),
            ("wa3", Role::Manager, false),
        ],
    )]);
    let reads = ReadsBuilder::new()
        .channel("wa2")
        .channel("wa3")
        .user(
            "u1",
            &[
                ("wa1", Role::Manager, true),
                ("wa2", Role::QualityControl, false),
            ],
        )
        .build();
    let p = plan(decide_account(&e, &reads));
    assert_eq!(
        seat_changes(&p),
        vec![
            &unseated("wa1"),
            &seated("wa2", Role::Supervisor, false),
            &seated("wa3", Role::Manager, false),
        ]
    );
    let user = p
        .changes
        .iter()
        .find_map(|op| match op {
            Change::SaveUser(u) if u.user_id == id("u1") => Some(u.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        user.access
            .iter()
            .map(|a| a.channel_id.as_str())
            .collect::<Vec<_>>(),
        vec!["wa2", "wa3"]
    );
    assert!(!user.removed);
    assert_eq!(p.declare_users, ids(&["u1"]));
}

#[test]
fn users_upserted_with_an_empty_access_list_removes_every_seat() {
    let e = users_upserted(vec![upsert("u1", &[])]);
    let p = plan(decide_account(&e, &u1_on_two_channels()));
    assert_eq!(seat_changes(&p), vec![&unseated("wa1"), &unseated("wa2")]);
}

#[test]
fn users_removed() {
    let unknown = Event::UsersRemoved(UsersRemoved {
        envelope: env("ev-a2"),
        user_ids: ids(&["u1", "ghost"]),
    });
    let reads = ReadsBuilder::new()
        .user("u1", &[("wa1", Role::Manager, true)])
        .absent(Item::User(id("ghost")))
        .build();
    let r = rejection(decide_account(&unknown, &reads));
    assert_eq!(r.code(), "unknown_user");
    assert!(r.to_string().contains("ghost"), "{r}");

    let known = Event::UsersRemoved(UsersRemoved {
        envelope: env("ev-a2"),
        user_ids: ids(&["u1"]),
    });
    let p = plan(decide_account(&known, &u1_on_two_channels()));
    assert_eq!(p.changes[..2], [unseated("wa1"), unseated("wa2")]);
    let Change::SaveUser(user) = &p.changes[2] else {
        panic!("user kept: {:?}", p.changes)
    };
    assert!(user.removed && user.access.is_empty());
    assert_eq!(p.changes[3], Change::ConfigChanged);
}
