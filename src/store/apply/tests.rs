//! What `apply.lua` is sent: plain tokens, read here as the script reads
//! them. For a round-robin turn, each variant put together from the shared
//! texts and its slots is that variant's own record and commands, and the
//! message text goes once.

use super::*;
use crate::handlers::{ChatSnapshot, Decision, ReplyTo, decide_chat};
use crate::model::{Channel, ChatType, Distribution, Links, NewClients, Role, Settings};
use crate::state::{Guard, Item, TurnAdds, Version};
use crate::store::turn::fill_marked;

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

/// `apply.lua`'s arguments as the script reads them.
#[derive(Debug)]
struct Input {
    ttl: String,
    /// k, f, o, whether a value is expected, the value.
    guards: Vec<[String; 5]>,
    ops: Vec<String>,
    /// The record, or what each manager of the turn would get.
    record: Option<String>,
    turn: Option<TurnInput>,
}

#[derive(Debug)]
struct TurnInput {
    pool: usize,
    counter: usize,
    /// Each manager, with his op tokens (the shared ones filled, then his
    /// own) and his record.
    variants: Vec<(String, Vec<String>, String)>,
}

fn read(args: &[String]) -> Input {
    let mut at = args.iter();
    let mut next = || at.next().expect("a token").clone();
    let number = |s: String| -> usize { s.parse().unwrap() };
    let ttl = next();
    let guards = (0..number(next()))
        .map(|_| [next(), next(), next(), next(), next()])
        .collect();
    let ops = (0..number(next())).map(|_| next()).collect();
    let mut input = Input {
        ttl,
        guards,
        ops,
        record: None,
        turn: None,
    };
    match next().as_str() {
        "r" => input.record = Some(next()),
        "t" => {
            let (pool, counter) = (number(next()), number(next()));
            let shared: Vec<String> = (0..number(next())).map(|_| next()).collect();
            let record = next();
            let managers: Vec<String> = (0..number(next())).map(|_| next()).collect();
            let width = number(next());
            let mut variants = Vec::new();
            for manager in managers {
                let mut slots = vec![manager.clone()];
                let mut own = Vec::new();
                if width > 0 {
                    slots.extend((0..width).map(|_| next()));
                } else {
                    slots.extend((0..number(next())).map(|_| next()).collect::<Vec<_>>());
                    own.extend((0..number(next())).map(|_| next()).collect::<Vec<_>>());
                }
                let mut ops: Vec<String> = shared.iter().map(|t| fill_marked(t, &slots)).collect();
                ops.extend(own);
                variants.push((manager, ops, fill_marked(&record, &slots)));
            }
            input.turn = Some(TurnInput {
                pool,
                counter,
                variants,
            });
        }
        other => panic!("neither a record nor a turn: {other:?}"),
    }
    assert_eq!(at.next(), None, "tokens left over");
    input
}

/// Checks that each manager of `plan`'s turn gets, from `args`, exactly the
/// record and commands of the plan as applied with the turn his.
fn each_manager_gets_his_plan(plan: &Plan, keys: &AccountKeys, names: &[String], args: &[String]) {
    let input = read(args);
    let turn = input.turn.as_ref().expect("a turn");
    assert!(input.record.is_none(), "the record comes from the turn");
    assert_eq!(names[turn.pool - 1], "sb:{acc}:pool:wa");
    assert_eq!(names[turn.counter - 1], "sb:{acc}:turn:wa");
    let managers = &plan.turn.as_ref().unwrap().managers;
    assert_eq!(turn.variants.len(), managers.len());
    // The chat was absent and the contact and deal are new, so their older
    // keys are neither read nor removed.
    let gone = absent_older_keys(plan);
    assert_eq!(gone.len(), 4, "{gone:?}");
    let mut slot = |key: &Key| names.iter().position(|n| *n == keys.key(key)).unwrap() + 1;
    for ((manager, ops, record), expected) in turn.variants.iter().zip(managers) {
        assert_eq!(manager, expected.as_str());
        let chosen = plan.with_turn_to(Some(expected)).unwrap();
        assert_eq!(*record, Record::of(&chosen).to_json(), "byte for byte");
        let mut all = input.ops.clone();
        all.extend(ops.iter().cloned());
        assert_eq!(all, change_tokens(&chosen.changes, &gone, &mut slot));
        for key in &gone {
            assert!(!names.contains(&keys.key(key)), "{key:?} is not touched");
        }
    }
}

#[test]
fn each_variant_is_its_own_plan_and_the_text_goes_once() {
    let text = "A long message from a new client that must be sent once, not once per manager.";
    let plan = new_client(text, 5);
    assert!(matches!(
        plan.turn.as_ref().unwrap().adds,
        TurnAdds::Template { .. }
    ));
    let keys = AccountKeys::new("sb", &id("acc"));
    let (names, args) = script_input(&keys, &id("ev-1"), &plan, 60);
    assert_eq!(args.concat().matches(text).count(), 1, "{args:?}");
    assert_eq!(read(&args).ttl, "60");
    each_manager_gets_his_plan(&plan, &keys, &names, &args);
}

#[test]
fn a_turn_of_variants_gives_each_manager_his_plan() {
    let text = "A message \u{1} with \"quotes\" and a mark \u{2} of its own.";
    let mut plan = new_client(text, 4);
    let turn = plan.turn.as_mut().unwrap();
    let variants = turn
        .managers
        .iter()
        .map(|m| turn.variant(m).unwrap())
        .collect();
    turn.adds = TurnAdds::Variants(variants);
    let keys = AccountKeys::new("sb", &id("acc"));
    let (names, args) = script_input(&keys, &id("ev-1"), &plan, 60);
    // Once, as the record's JSON writes it.
    assert_eq!(args.concat().matches("with \\\"quotes\\\"").count(), 1);
    each_manager_gets_his_plan(&plan, &keys, &names, &args);
}

#[test]
fn an_older_key_is_read_and_removed_only_where_it_may_be() {
    let chat = crate::model::ChatRef {
        chat_type: ChatType::Whatsapp,
        chat_id: id("c1"),
    };
    let other = crate::model::ChatRef {
        chat_type: ChatType::Whatsapp,
        chat_id: id("c2"),
    };
    let plan = Plan {
        guards: vec![
            Guard {
                item: Item::Config,
                expect: Version::stored(Some("3".into())),
            },
            // Absent at the snapshot: in its bucket and at its older key.
            Guard {
                item: Item::Chat(chat.clone()),
                expect: Version::stored(None),
            },
            // Found (perhaps at its older key).
            Guard {
                item: Item::Chat(other.clone()),
                expect: Version::stored(Some("{}".into())),
            },
        ],
        changes: vec![
            Change::SaveChat(chat.clone(), crate::model::Chat::default()),
            Change::SaveChat(other.clone(), crate::model::Chat::default()),
        ],
        ..Plan::default()
    };
    let keys = AccountKeys::new("sb", &id("acc"));
    let (names, args) = script_input(&keys, &id("ev-1"), &plan, 60);
    let input = read(&args);
    let old = |c: &crate::model::ChatRef| keys.key(&Key::Chat(c.clone()));
    assert!(!names.contains(&old(&chat)), "{names:?}");
    let other_old = names.iter().position(|n| *n == old(&other)).unwrap() + 1;
    assert_eq!(input.guards[0][1..], ["", "0", "1", "3"].map(String::from));
    assert_eq!(
        input.guards[1][1..],
        ["whatsapp:c1", "0", "0", ""].map(String::from)
    );
    assert_eq!(
        input.guards[2][1..],
        [
            "whatsapp:c2".into(),
            other_old.to_string(),
            "1".into(),
            "{}".into()
        ]
    );
    let dels: Vec<&String> = input
        .ops
        .iter()
        .enumerate()
        .filter(|(i, t)| *t == "del" && input.ops.get(i + 1).is_some())
        .map(|(i, _)| &input.ops[i + 1])
        .collect();
    assert_eq!(dels, vec![&other_old.to_string()]);
    assert_eq!(
        input.record.as_deref(),
        Some(Record::of(&plan).to_json().as_str())
    );
}

#[test]
fn a_variant_costs_ids_not_the_plan_again() {
    let plan = new_client(&"x".repeat(2000), 10);
    let keys = AccountKeys::new("sb", &id("acc"));
    let (_, args) = script_input(&keys, &id("ev-1"), &plan, 60);
    let one = plan.with_turn_to(Some(&id("m0"))).unwrap();
    let single = Record::of(&one).to_json().len();
    // Ten variants: the shared record once, plus a few hundred bytes each.
    let sent: usize = args.iter().map(String::len).sum();
    assert!(
        sent < single + 10 * 600,
        "{sent} bytes for a record of {single}"
    );
}

#[test]
fn a_command_as_tokens_is_its_json_as_texts() {
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
        let mut tokens = Vec::new();
        command.tokens(&HashSet::new(), &mut slot, &mut tokens);
        let json: Vec<String> = command
            .to_json(&mut slot)
            .as_array()
            .unwrap()
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        assert_eq!(tokens, json);
    }
}
