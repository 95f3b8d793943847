//! The stream a chaos run publishes, made up front from a seed: each account's
//! set-up and its known contacts, then the chats' events interleaved at
//! random (a claim race published back to back), with bad input mixed in.
//! Each good chat event is written into the [`Model`] as it is made.

use serde_json::{Value, json};
use switchboard::ids::Id;

use crate::model::{Allowed, Distribution, Expect, MANAGERS, Model, NewChat, QC, Rule};

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

/// splitmix64: a seeded generator, so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
    fn manager(&mut self) -> &'static str {
        MANAGERS[self.below(MANAGERS.len())]
    }
}

fn key(account: &str) -> String {
    switchboard::names::inbound_key(&Id::parse(account).expect("a valid account id"))
}

/// A chat event with its rule, or a set-up event (no rule).
struct Ev {
    account: String,
    body: Value,
    expect: Option<Expect>,
}

struct Maker {
    rng: Rng,
    next: u64,
}

impl Maker {
    fn event(&mut self, kind: &str, account: &str, fields: Value) -> Value {
        self.next += 1;
        let mut body = json!({ "eventId": format!("ev-{}", self.next), "type": kind,
                               "accountId": account, "occurredAt": "2026-11-25T10:00:00Z" });
        for (k, v) in fields.as_object().expect("an object") {
            body[k] = v.clone();
        }
        body
    }

    /// A client's message or a user's reply in `chat`, its text carrying the
    /// chat's sequence number (the order check reads it back).
    fn chat_event(&mut self, account: &str, chat: &str, seq: usize, user: Option<&str>) -> Value {
        let message_id = format!("msg-{}", self.next + 1);
        let text = format!("{chat} #{seq}");
        let mut fields = json!({ "messageId": message_id, "channelId": "wa", "chatType": "whatsapp",
                                 "chatId": chat, "text": text });
        match user {
            Some(user) => fields["userId"] = json!(user),
            None => fields["contact"] = json!({ "name": format!("Client {chat}") }),
        }
        let kind = if user.is_some() {
            "message.outbound"
        } else {
            "message.inbound"
        };
        self.event(kind, account, fields)
    }

    fn setup(&mut self, account: &str, distribution: Distribution) -> Vec<Value> {
        let mut users: Vec<Value> = MANAGERS
            .iter()
            .map(|m| json!({ "userId": m, "name": format!("Manager {m}"),
                             "access": [{ "channelId": "wa", "role": "manager", "receivesNewClients": true }] }))
            .collect();
        users.push(json!({ "userId": QC, "name": "Quality", "access": [{ "channelId": "wa", "role": "quality_control", "receivesNewClients": false }] }));
        vec![
            self.event("channels.upserted", account, json!({ "channels": [{ "channelId": "wa", "chatType": "whatsapp", "name": "Support" }] })),
            self.event("users.upserted", account, json!({ "users": users })),
            self.event("pipelines.loaded", account, json!({ "pipelines": [{ "pipelineId": "p", "name": "Sales", "stages": [{ "stageId": "s1", "name": "New" }] }] })),
            self.event("settings.updated", account, json!({ "newClients": { "pipelineId": "p", "stageId": "s1", "distribution": distribution.wire() },
                "links": { "deal": "https://crm.example/deals/{dealId}", "newDeal": "https://crm.example/deals/new?contact={contactId}" } })),
        ]
    }
}

/// What kind of chat a script is for.
#[derive(Clone, Copy)]
enum Kind {
    Known(&'static str),
    New(Distribution),
}

/// One chat's events as groups published back to back (a race is one group).
fn script(m: &mut Maker, account: &str, chat: &str, kind: Kind, len: usize) -> Vec<Vec<Ev>> {
    let mut groups = Vec::new();
    let mut seq = 0;
    let mut claimed = false;
    while seq < len || (!claimed && matches!(kind, Kind::New(Distribution::FirstReply))) {
        let first_reply = matches!(kind, Kind::New(Distribution::FirstReply));
        if first_reply && !claimed && seq >= 1 && (seq >= 2 || m.rng.percent(50)) {
            // The claim race: 2 to 4 managers answer at once.
            let mut who: Vec<&'static str> = MANAGERS.to_vec();
            let k = 2 + m.rng.below(3);
            let mut replies = Vec::new();
            let mut group = Vec::new();
            for _ in 0..k {
                let user = who.remove(m.rng.below(who.len()));
                let body = m.chat_event(account, chat, seq, Some(user));
                seq += 1;
                replies.push((
                    user,
                    body["messageId"].as_str().unwrap_or_default().to_owned(),
                ));
                group.push(Ev {
                    account: account.into(),
                    body,
                    expect: None,
                });
            }
            let message_id = replies[0].1.clone();
            group[0].expect = Some(Expect {
                account: account.into(),
                chat: chat.into(),
                message_id,
                rule: Rule::Race { replies },
            });
            groups.push(group);
            claimed = true;
            continue;
        }
        // Before its race a first-reply chat only hears from the client.
        let reply = seq > 0 && (claimed || !first_reply) && m.rng.percent(30);
        let (user, rule) = if !reply {
            let rule = match kind {
                Kind::Known(r) => Rule::Inbound {
                    to: vec![r, QC],
                    owner: false,
                },
                Kind::New(_) if first_reply && !claimed => Rule::Inbound {
                    to: [MANAGERS.as_slice(), &[QC]].concat(),
                    owner: false,
                },
                Kind::New(_) => Rule::Inbound {
                    to: vec![QC],
                    owner: true,
                },
            };
            (None, rule)
        } else if m.rng.percent(10) {
            (
                Some(QC),
                Rule::Reply {
                    user: QC,
                    allowed: Allowed::Never,
                    reasons: &["read_only"],
                },
            )
        } else {
            let user = match kind {
                Kind::Known(r) if m.rng.percent(65) => r,
                _ => m.rng.manager(),
            };
            let rule = match kind {
                Kind::Known(r) if user == r => Rule::Reply {
                    user,
                    allowed: Allowed::Always,
                    reasons: &[],
                },
                Kind::Known(_) => Rule::Reply {
                    user,
                    allowed: Allowed::Never,
                    reasons: &["not_responsible"],
                },
                Kind::New(Distribution::RoundRobin) => Rule::Reply {
                    user,
                    allowed: Allowed::IfOwner,
                    reasons: &["not_responsible"],
                },
                Kind::New(Distribution::FirstReply) => Rule::Reply {
                    user,
                    allowed: Allowed::IfOwner,
                    reasons: &["claimed_by_other", "not_responsible"],
                },
            };
            (Some(user), rule)
        };
        let body = m.chat_event(account, chat, seq, user);
        seq += 1;
        let message_id = body["messageId"].as_str().unwrap_or_default().to_owned();
        let expect = Some(Expect {
            account: account.into(),
            chat: chat.into(),
            message_id,
            rule,
        });
        groups.push(vec![Ev {
            account: account.into(),
            body,
            expect,
        }]);
    }
    groups
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
