//! What `apply.lua` is sent for a round-robin turn: each variant put together
//! from the shared pieces is that variant's own record and commands, and the
//! message text goes once.

use super::*;
use crate::handlers::{ChatSnapshot, Decision, ReplyTo, decide_chat};
use crate::model::{Channel, ChatType, Distribution, Links, NewClients, Role, Settings};

fn id(s: &str) -> Id {
    Id::parse(s).unwrap()
}

/// A new client's plan on a channel with `managers` eligible managers and quality control.
fn new_client(text: &str, managers: usize) -> Plan {
    let body = serde_json::json!({
        "eventId": "ev-1", "type": "message.inbound", "accountId": "acc",
        "occurredAt": "2026-11-25T10:00:00Z", "messageId": "msg-1", "channelId": "wa",
        "chatType": "whatsapp", "chatId": "+7 900", "text": text,
        "contact": { "name": "Ivan" }
    });
    let event = crate::events::parse(body.to_string().as_bytes()).unwrap();
    let mut seats: Vec<(Id, Seat)> = (0..managers)
        .map(|i| {
            (
                id(&format!("m{i}")),
                Seat {
                    role: Role::Manager,
                    receives_new_clients: true,
                },
            )
        })
        .collect();
    seats.push((
        id("q"),
        Seat {
            role: Role::QualityControl,
            receives_new_clients: false,
        },
    ));
    seats.sort_by(|a, b| a.0.cmp(&b.0));
    let snapshot = ChatSnapshot {
        channel: Some(Channel {
            channel_id: id("wa"),
            chat_type: ChatType::Whatsapp,
            name: "WA".into(),
        }),
        settings: Some(Settings {
            new_clients: NewClients {
                pipeline_id: id("p"),
                stage_id: id("s1"),
                distribution: Distribution::RoundRobin,
            },
            links: Links {
                deal: "https://crm/{dealId}".into(),
                new_deal: "https://crm/new/{contactId}".into(),
            },
        }),
        seats,
        ..ChatSnapshot::default()
    };
    match decide_chat(&event, &snapshot, &ReplyTo::default()) {
        Decision::Apply(plan) => plan,
        other => panic!("not a plan: {other:?}"),
    }
}

/// A variant's text from the pieces and its slots, as `apply.lua` fills it.
fn fill(pieces: &serde_json::Value, slots: &serde_json::Value) -> String {
    pieces
        .as_array()
        .unwrap()
        .iter()
        .map(|piece| match piece {
            serde_json::Value::Number(n) => slots[n.as_u64().unwrap() as usize - 1]
                .as_str()
                .unwrap()
                .to_owned(),
            text => text.as_str().unwrap().to_owned(),
        })
        .collect()
}

#[test]
fn each_variant_is_its_own_plan_and_the_text_goes_once() {
    let text = "A long message from a new client that must be sent once, not once per manager.";
    let plan = new_client(text, 5);
    let keys = AccountKeys::new("sb", &id("acc"));
    let (names, arg) = script_input(&keys, &id("ev-1"), &plan, 60);
    assert_eq!(arg.matches(text).count(), 1, "{arg}");
    let arg: serde_json::Value = serde_json::from_str(&arg).unwrap();
    let turn = &arg["turn"];
    assert!(
        arg.get("record").is_none(),
        "the record comes from the turn"
    );
    assert_eq!(
        names[turn["pool"].as_u64().unwrap() as usize - 1],
        "sb:{acc}:pool:wa"
    );
    assert_eq!(
        names[turn["turn"].as_u64().unwrap() as usize - 1],
        "sb:{acc}:turn:wa"
    );
    let variants = turn["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 5);
    for (n, variant) in variants.iter().enumerate() {
        let manager = id(&format!("m{n}"));
        assert_eq!(variant["m"], manager.as_str());
        let chosen = plan.with_turn_to(Some(&manager)).unwrap();
        let text = fill(&turn["record"], &variant["s"]);
        assert_eq!(text, Record::of(&chosen).to_json(), "byte for byte");
        let record: Record = parse(&text).unwrap();
        assert_eq!(record, Record::of(&chosen));
        let ops: serde_json::Value =
            serde_json::from_str(&fill(&turn["ops"], &variant["s"])).unwrap();
        let mut slot = |key: &Key| names.iter().position(|n| *n == keys.key(key)).unwrap() + 1;
        let expected = commands(&chosen.changes, &mut slot);
        assert_eq!(ops, serde_json::Value::Array(expected));
    }
}

#[test]
fn a_variant_costs_ids_not_the_plan_again() {
    let plan = new_client(&"x".repeat(2000), 10);
    let keys = AccountKeys::new("sb", &id("acc"));
    let (_, arg) = script_input(&keys, &id("ev-1"), &plan, 60);
    let one = plan.with_turn_to(Some(&id("m0"))).unwrap();
    let single = Record::of(&one).to_json().len();
    // Ten variants: the shared record once, plus a few hundred bytes each.
    assert!(
        arg.len() < single + 10 * 600,
        "{} bytes for a record of {single}",
        arg.len()
    );
}

#[test]
fn a_command_as_text_is_its_json() {
    use crate::model::{ChatRef, RoundRobin, WaitingEntry};
    let chat = ChatRef {
        chat_type: ChatType::Whatsapp,
        chat_id: id("+7 \"900\""),
    };
    let seat = |role| Seat {
        role,
        receives_new_clients: true,
    };
    let changes = vec![
        Change::ConfigChanged,
        Change::SaveSeat {
            channel: id("wa"),
            user: id("m\\1"),
            seat: seat(Role::Manager),
        },
        Change::SaveSeat {
            channel: id("wa"),
            user: id("q"),
            seat: seat(Role::QualityControl),
        },
        Change::RemoveSeat {
            channel: id("wa"),
            user: id("m1"),
        },
        Change::SaveChat(chat.clone(), crate::model::Chat::default()),
        Change::LinkDeal {
            contact: id("c"),
            deal: id("d"),
        },
        Change::UnlinkDeal {
            contact: id("c"),
            deal: id("d"),
        },
        Change::SaveRoundRobin(
            id("wa"),
            RoundRobin {
                turn: 3,
                last: [(id("m1"), 3)].into_iter().collect(),
            },
        ),
        Change::UnmarkWaiting {
            channel: id("wa"),
            chat: chat.clone(),
        },
        Change::MarkWaiting {
            channel: id("wa"),
            entry: WaitingEntry {
                chat_type: chat.chat_type,
                chat_id: chat.chat_id.clone(),
                since: "2026-11-25T10:00:00Z".into(),
            },
        },
    ];
    let keys = AccountKeys::new("sb", &id("acc"));
    let mut names: Vec<String> = Vec::new();
    let mut slot = |key: &Key| {
        let name = keys.key(key);
        names.iter().position(|n| *n == name).unwrap_or_else(|| {
            names.push(name);
            names.len() - 1
        }) + 1
    };
    for command in changes.iter().flat_map(Command::of) {
        let text: serde_json::Value = serde_json::from_str(&command.json_text(&mut slot)).unwrap();
        assert_eq!(text, command.to_json(&mut slot));
    }
}
