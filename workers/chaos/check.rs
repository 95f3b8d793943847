//! The check: what arrived, against the model. Owners of new chats come from
//! the CRM's `contact.created`; every rule then says exactly which
//! notifications (by user, kind and message or chat) and which sends must
//! exist. Repeats with the same `notificationId` are allowed and counted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;

use crate::collect::Received;
use crate::model::{Allowed, MANAGERS, Model, QC, Rule};

/// (account, user, kind, message id or chat id)
type NoteKey = (String, String, &'static str, String);

#[derive(Debug, Default)]
pub struct Figures {
    pub expected_notes: usize,
    pub received_notes: usize,
    pub distinct_notes: usize,
    pub lost: usize,
    pub duplicated_by_id: usize,
    pub reader_redeliveries: usize,
    pub same_cause_new_id: usize,
    pub unexpected: usize,
    pub wrong_reason: usize,
    pub expected_sends: usize,
    pub distinct_sends: usize,
    pub lost_sends: usize,
    pub unexpected_sends: usize,
    pub expected_crm: usize,
    pub distinct_crm: usize,
    pub lost_crm: usize,
    pub unexpected_crm: usize,
    pub duplicate_contacts: usize,
    pub duplicate_deals: usize,
    pub multi_winner_claims: usize,
    pub winner_not_replier: usize,
    /// Per round-robin account: new clients per manager.
    pub round_robin: BTreeMap<String, Vec<usize>>,
    pub out_of_order: usize,
    pub expected_dead: usize,
    pub distinct_dead: usize,
    pub dead_copies: usize,
    pub lost_dead: usize,
    pub good_dead: usize,
    /// Up to a few examples of each failure, for the report.
    pub examples: Vec<String>,
}

impl Figures {
    pub fn spread(&self) -> usize {
        let spread = |v: &Vec<usize>| v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0);
        self.round_robin.values().map(spread).max().unwrap_or(0)
    }

    pub fn example(&mut self, what: String) {
        if self.examples.len() < 12 {
            self.examples.push(what);
        }
    }
}

pub fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

pub fn check(model: &Model, r: &Received) -> Figures {
    let mut f = Figures {
        expected_notes: model.notifications(),
        expected_crm: model.crm_events(),
        ..Figures::default()
    };

    let contacts = crate::crm::crm(model, r, &mut f);
    let owner = |account: &str, chat: &str| crate::crm::owner_of(&contacts, account, chat);

    // What the rules call for, now that the owners are known.
    let mut want: HashMap<NoteKey, &'static [&'static str]> = HashMap::new();
    let mut sends: HashSet<(String, String)> = HashSet::new();
    for e in &model.expects {
        let a = &e.account;
        let note = |user: &str, kind: &'static str, id: &str| {
            (a.clone(), user.to_owned(), kind, id.to_owned())
        };
        let own = owner(a, &e.chat);
        match &e.rule {
            Rule::Inbound { to, owner } => {
                for u in to.iter().copied().chain(owner.then_some(own.as_str())) {
                    want.insert(note(u, "msg", &e.message_id), &[]);
                }
            }
            Rule::Reply {
                user,
                allowed,
                reasons,
            } => {
                let sent =
                    *allowed == Allowed::Always || (*allowed == Allowed::IfOwner && *user == own);
                if sent {
                    sends.insert((a.clone(), e.message_id.clone()));
                    want.insert(note(QC, "msg", &e.message_id), &[]);
                } else {
                    want.insert(note(user, "rejected", &e.message_id), reasons);
                }
            }
            Rule::Race { replies } => {
                if !replies.iter().any(|(u, _)| *u == own) {
                    f.winner_not_replier += 1;
                    f.example(format!("{a}/{}: won by {own}, who did not answer", e.chat));
                }
                for (u, id) in replies {
                    if *u == own {
                        sends.insert((a.clone(), id.clone()));
                        want.insert(note(QC, "msg", id), &[]);
                        want.insert(note(u, "assigned", &e.chat), &[]);
                    } else {
                        want.insert(note(u, "rejected", id), &["claimed_by_other"]);
                    }
                }
                for m in MANAGERS.iter().filter(|m| **m != own) {
                    want.insert(note(m, "withdrawn", &e.chat), &[]);
                }
            }
        }
    }
    f.expected_sends = sends.len();

    // What arrived.
    let mut ids = HashSet::new();
    let mut got: HashMap<NoteKey, String> = HashMap::new();
    let mut last_seq: HashMap<(String, String, String), u64> = HashMap::new();
    let mut winners: HashMap<(String, String), BTreeSet<String>> = HashMap::new();
    f.received_notes = r.notes.len();
    for (account, user, n, redelivered) in &r.notes {
        let id = s(&n["notificationId"]);
        if !ids.insert(id.clone()) {
            f.duplicated_by_id += 1;
            f.reader_redeliveries += usize::from(*redelivered);
            continue;
        }
        let chat = s(&n["chatId"]);
        let (kind, about) = match n["type"].as_str().unwrap_or_default() {
            "chat.new" | "chat.message" => ("msg", s(&n["messageId"])),
            "message.rejected" => ("rejected", s(&n["messageId"])),
            "chat.assigned" => ("assigned", chat.clone()),
            "chat.withdrawn" => ("withdrawn", chat.clone()),
            _ => ("other", id.clone()),
        };
        if kind == "assigned" {
            winners
                .entry((account.clone(), chat.clone()))
                .or_default()
                .insert(user.clone());
        }
        if s(&n["userId"]) != *user || s(&n["accountId"]) != *account {
            f.unexpected += 1;
            f.example(format!(
                "{account}/{user}: a notification for {}/{}",
                n["accountId"], n["userId"]
            ));
        }
        let key = (account.clone(), user.clone(), kind, about);
        match want.get(&key) {
            None => {
                f.unexpected += 1;
                f.example(format!(
                    "unexpected {} {}/{user} {chat} {}",
                    n["type"], account, n["text"]
                ));
            }
            Some(reasons)
                if !reasons.is_empty()
                    && !reasons.contains(&n["reason"].as_str().unwrap_or_default()) =>
            {
                f.wrong_reason += 1;
                f.example(format!(
                    "{account}/{user}: reason {} for {}",
                    n["reason"], key.3
                ));
            }
            Some(_) => {}
        }
        if let Some(first) = got.insert(key.clone(), id.clone()) {
            f.same_cause_new_id += 1;
            f.example(format!(
                "{account}/{user}: {} {} under ids {first} and {id}",
                key.2, key.3
            ));
        }
        if kind == "msg" {
            let seq = n["text"]
                .as_str()
                .and_then(|t| t.rsplit('#').next())
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(seq) = seq {
                let last = last_seq
                    .entry((account.clone(), user.clone(), chat.clone()))
                    .or_insert(0);
                if seq < *last {
                    f.out_of_order += 1;
                    f.example(format!("{account}/{user} {chat}: #{seq} after #{last}"));
                }
                *last = (*last).max(seq);
            }
        }
    }
    f.distinct_notes = ids.len();
    for key in want.keys().filter(|k| !got.contains_key(*k)) {
        f.lost += 1;
        f.example(format!("lost: {}/{} {} {}", key.0, key.1, key.2, key.3));
    }
    f.multi_winner_claims += winners.values().filter(|w| w.len() > 1).count();

    let received_sends: HashSet<(String, String)> = r
        .sends
        .iter()
        .map(|m| (s(&m["accountId"]), s(&m["messageId"])))
        .collect();
    f.distinct_sends = received_sends.len();
    f.lost_sends = sends.difference(&received_sends).count();
    f.unexpected_sends = received_sends.difference(&sends).count();

    // Dead letters: exactly the bad input, each at least once.
    let bad: HashSet<&String> = model.bad.iter().collect();
    let dead: HashSet<String> = r
        .dead
        .iter()
        .map(|(body, _)| match serde_json::from_slice::<Value>(body) {
            Ok(v) if v["eventId"].is_string() => s(&v["eventId"]),
            _ => String::from_utf8_lossy(body).into_owned(),
        })
        .collect();
    f.expected_dead = bad.len();
    f.distinct_dead = dead.len();
    f.dead_copies = r.dead.len();
    f.lost_dead = bad.iter().filter(|b| !dead.contains(**b)).count();
    for d in dead.iter().filter(|d| !bad.contains(d)) {
        f.good_dead += 1;
        let reason = r
            .dead
            .iter()
            .find(|(b, _)| String::from_utf8_lossy(b).contains(d.as_str()))
            .map(|x| x.1.clone());
        f.example(format!("good event dead-lettered: {d} ({reason:?})"));
    }
    f
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
