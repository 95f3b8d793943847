//! `users.upserted` and `users.removed`.

use super::*;

#[test]
fn users_upserted_asks_for_the_user_and_his_channels() {
    let e = users_upserted(vec![upsert(
        "u1",
        &[
            ("wa1", Role::Manager, true),
            ("wa2", Role::Supervisor, false),
        ],
    )]);
    assert_eq!(
        super::super::reads(&e),
        Some(vec![
            Read::Get(Key::Settings),
            Read::HGet(Key::Users, id("u1")),
            Read::HGet(Key::Channels, id("wa1")),
            Read::HGet(Key::Channels, id("wa2")),
            Read::Channel(id("wa1")),
            Read::Channel(id("wa2")),
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
        .absent(Read::HGet(Key::Channels, id("wa9")))
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
        .absent(Read::HGet(Key::Users, id("u1")))
        .build();
    let p = plan(decide_account(&e, &reads));
    assert_eq!(
        p.ops[0],
        Op::HSet(
            Key::Seats(id("wa1")),
            id("u1"),
            seat_json(Role::Manager, true)
        )
    );
    assert!(matches!(&p.ops[1], Op::HSet(Key::Users, u, _) if *u == id("u1")));
    assert_eq!(p.ops.last(), Some(&Op::Incr(Key::Config)));
    assert_eq!(p.ops.len(), 3);
    assert_eq!(p.declare_users, ids(&["u1"]));
    assert!(p.outputs.is_empty());
    assert!(has_guard_on(&p, &Key::Config));
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
    let seat_ops: Vec<&Op> = p
        .ops
        .iter()
        .filter(|op| matches!(op, Op::HSet(Key::Seats(_), ..) | Op::HDel(..)))
        .collect();
    assert_eq!(
        seat_ops,
        vec![
            &Op::HDel(Key::Seats(id("wa1")), id("u1")),
            &Op::HSet(
                Key::Seats(id("wa2")),
                id("u1"),
                seat_json(Role::Supervisor, false)
            ),
            &Op::HSet(
                Key::Seats(id("wa3")),
                id("u1"),
                seat_json(Role::Manager, false)
            ),
        ]
    );
    let user = p
        .ops
        .iter()
        .find_map(|op| match op {
            Op::HSet(Key::Users, u, v) if *u == id("u1") => {
                Some(serde_json::from_str::<User>(v).unwrap())
            }
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
    let reads = ReadsBuilder::new()
        .user(
            "u1",
            &[
                ("wa1", Role::Manager, true),
                ("wa2", Role::Supervisor, false),
            ],
        )
        .build();
    let p = plan(decide_account(&e, &reads));
    assert!(p.ops.contains(&Op::HDel(Key::Seats(id("wa1")), id("u1"))));
    assert!(p.ops.contains(&Op::HDel(Key::Seats(id("wa2")), id("u1"))));
    assert!(
        !p.ops
            .iter()
            .any(|op| matches!(op, Op::HSet(Key::Seats(_), ..)))
    );
}

#[test]
fn users_removed() {
    let unknown = Event::UsersRemoved(UsersRemoved {
        envelope: env("ev-a2"),
        user_ids: ids(&["u1", "ghost"]),
    });
    let reads = ReadsBuilder::new()
        .user("u1", &[("wa1", Role::Manager, true)])
        .absent(Read::HGet(Key::Users, id("ghost")))
        .build();
    let r = rejection(decide_account(&unknown, &reads));
    assert_eq!(r.code(), "unknown_user");
    assert!(r.to_string().contains("ghost"), "{r}");

    let known = Event::UsersRemoved(UsersRemoved {
        envelope: env("ev-a2"),
        user_ids: ids(&["u1"]),
    });
    let reads = ReadsBuilder::new()
        .user(
            "u1",
            &[
                ("wa1", Role::Manager, true),
                ("wa2", Role::Supervisor, false),
            ],
        )
        .build();
    let p = plan(decide_account(&known, &reads));
    assert_eq!(p.ops[0], Op::HDel(Key::Seats(id("wa1")), id("u1")));
    assert_eq!(p.ops[1], Op::HDel(Key::Seats(id("wa2")), id("u1")));
    let Op::HSet(Key::Users, _, raw) = &p.ops[2] else {
        panic!("user kept: {:?}", p.ops)
    };
    let user: User = serde_json::from_str(raw).unwrap();
    assert!(user.removed && user.access.is_empty());
    assert_eq!(p.ops[3], Op::Incr(Key::Config));
}
