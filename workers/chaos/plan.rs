//! The stream a chaos run publishes, made up front from a seed: each account's
//! set-up and its known contacts, then the chats' events interleaved at
//! random (a claim race published back to back), with bad input mixed in.
//! Each good chat event is written into the [`Model`] as it is made.

use serde_json::json;
use switchboard::ids::Id;

use crate::model::{Distribution, MANAGERS, Model, NewChat};
use crate::script::{Ev, Kind, Maker, Rng, script};

/// One message for `P.inbound`.
pub struct Event {
    pub key: String,
    pub body: Vec<u8>,
}

pub struct Plan {
    pub events: Vec<Event>,
    pub model: Model,
    pub chats: usize,
    pub accounts: Vec<(String, Distribution)>,
}

fn key(account: &str) -> String {
    switchboard::names::inbound_key(&Id::parse(account).expect("a valid account id"))
}

/// Makes a stream of at least `events` events over `chats` chats (split over
/// two round-robin and two first-reply accounts, a third of them known), 5% bad.
pub fn make(seed: u64, events: usize, chats: usize) -> Plan {
    let mut m = Maker {
        rng: Rng(seed),
        next: 0,
    };
    let accounts: Vec<(String, Distribution)> = (0..2)
        .flat_map(|i| {
            [
                (format!("chaos-rr-{i}"), Distribution::RoundRobin),
                (format!("chaos-fr-{i}"), Distribution::FirstReply),
            ]
        })
        .collect();
    let mut model = Model::default();
    let mut setup = Vec::new();
    let mut chat_list = Vec::new();
    for (n, (account, distribution)) in accounts.iter().enumerate() {
        for body in m.setup(account, *distribution) {
            setup.push(Ev {
                account: account.clone(),
                body,
                expect: None,
            });
        }
        for i in (n..chats).step_by(accounts.len()) {
            let chat = format!("{account}-c{i:05}");
            let kind = if i % 3 == 0 {
                let r = MANAGERS[i / 3 % MANAGERS.len()];
                let fields = json!({ "contactId": format!("known-{i}"), "name": format!("Client {i}"), "responsibleUserId": r,
                                     "contactData": [{ "chatType": "whatsapp", "chatId": chat }] });
                let body = m.event("contact.upserted", account, fields);
                setup.push(Ev {
                    account: account.clone(),
                    body,
                    expect: None,
                });
                model.known_chats.push((account.clone(), chat.clone()));
                Kind::Known(r)
            } else {
                model.new_chats.push(NewChat {
                    account: account.clone(),
                    chat: chat.clone(),
                    distribution: *distribution,
                });
                Kind::New(*distribution)
            };
            chat_list.push((account.clone(), chat, kind));
        }
    }
    // Chat events: a length per chat so that with 5% bad input the total reaches `events`.
    let good = events * 95 / 100 + 1;
    let per_chat = good
        .saturating_sub(setup.len())
        .div_ceil(chats.max(1))
        .max(2);
    let mut scripts: Vec<std::collections::VecDeque<Vec<Ev>>> = chat_list
        .iter()
        .map(|(account, chat, kind)| {
            let len = per_chat - 1 + m.rng.below(3);
            script(&mut m, account, chat, *kind, len).into()
        })
        .collect();
    let mut stream: Vec<Ev> = setup;
    while !scripts.is_empty() {
        let i = m.rng.below(scripts.len());
        let group = scripts[i].pop_front().unwrap_or_default();
        stream.extend(group);
        if scripts[i].is_empty() {
            scripts.swap_remove(i);
        }
    }
    // Bad input: 5% of the total, at random places after the set-up.
    let bad_count = (stream.len() * 5).div_ceil(95).max(4);
    let mut events_out: Vec<Event> = Vec::with_capacity(stream.len() + bad_count);
    let mut bad_at: Vec<usize> = (0..bad_count)
        .map(|_| 4 * accounts.len() + m.rng.below(stream.len()))
        .collect();
    bad_at.sort_unstable();
    let mut bad_iter = bad_at.into_iter().peekable();
    for (pos, ev) in stream.into_iter().enumerate() {
        while bad_iter.next_if(|at| *at <= pos).is_some() {
            let kind = model.bad.len() % 4;
            let (bad, id) = bad_input(&mut m, &accounts, kind);
            model.bad.push(id);
            events_out.push(bad);
        }
        if let Some(expect) = ev.expect {
            model.expects.push(expect);
        }
        events_out.push(Event {
            key: key(&ev.account),
            body: ev.body.to_string().into_bytes(),
        });
    }
    for _ in bad_iter {
        let (bad, id) = bad_input(&mut m, &accounts, model.bad.len() % 4);
        model.bad.push(id);
        events_out.push(bad);
    }
    Plan {
        events: events_out,
        model,
        chats,
        accounts,
    }
}

/// One bad input of `kind` (not JSON, unknown type, another account's routing
/// key, an invalid id) and the id the dead letter is known by.
fn bad_input(m: &mut Maker, accounts: &[(String, Distribution)], kind: usize) -> (Event, String) {
    let a = m.rng.below(accounts.len());
    let account = &accounts[a].0;
    let other = &accounts[(a + 1) % accounts.len()].0;
    let chat = format!("{account}-c{:05}", m.rng.below(50));
    let (key, body) = match kind {
        0 => {
            m.next += 1;
            let body = format!("not json {}", m.next);
            return (
                Event {
                    key: self::key(account),
                    body: body.clone().into_bytes(),
                },
                body,
            );
        }
        1 => (
            key(account),
            m.event("message.teleported", account, json!({ "chatId": chat })),
        ),
        2 => (key(other), m.chat_event(account, &chat, 9999, None)),
        _ if m.rng.percent(50) => (
            key(account),
            m.chat_event(account, &"x".repeat(200), 9999, None),
        ),
        _ => (
            key(account),
            m.chat_event(account, &chat, 9999, Some("m1\u{200b}")),
        ),
    };
    let id = body["eventId"].as_str().unwrap_or_default().to_owned();
    (
        Event {
            key,
            body: body.to_string().into_bytes(),
        },
        id,
    )
}
