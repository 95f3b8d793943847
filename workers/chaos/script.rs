//! The events of one chat, made from a seed: a client's messages and the
//! users' replies, each with its sequence number in the text and the rule of
//! the [`Model`] it falls under; a first-reply chat's claim race is one group
//! of replies published back to back.

use serde_json::{Value, json};

use crate::model::{Allowed, Distribution, Expect, MANAGERS, QC, Rule};

/// splitmix64: a seeded generator, so a run can be repeated.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
    pub fn manager(&mut self) -> &'static str {
        MANAGERS[self.below(MANAGERS.len())]
    }
}

/// A chat event with its rule, or a set-up event (no rule).
pub struct Ev {
    pub account: String,
    pub body: Value,
    pub expect: Option<Expect>,
}

pub struct Maker {
    pub rng: Rng,
    pub next: u64,
}

impl Maker {
    pub fn event(&mut self, kind: &str, account: &str, fields: Value) -> Value {
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
    pub fn chat_event(
        &mut self,
        account: &str,
        chat: &str,
        seq: usize,
        user: Option<&str>,
    ) -> Value {
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

    pub fn setup(&mut self, account: &str, distribution: Distribution) -> Vec<Value> {
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
pub enum Kind {
    Known(&'static str),
    New(Distribution),
}

/// One chat's events as groups published back to back (a race is one group).
pub fn script(m: &mut Maker, account: &str, chat: &str, kind: Kind, len: usize) -> Vec<Vec<Ev>> {
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
