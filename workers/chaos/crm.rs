//! The CRM's side of the check: `contact.created` and `deal.created` per
//! chat, counted by distinct ids (a repeat has the same id), and the owner of
//! each new chat (the responsible of its first contact), which the rest of
//! the check resolves the model's rules with.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::check::{Figures, s};
use crate::collect::Received;
use crate::model::{Distribution, MANAGERS, Model};

/// (account, chat) -> the contacts created for it: (contactId, responsible).
pub type Contacts = HashMap<(String, String), Vec<(String, String)>>;

/// The owner of a chat, or `?` when no contact was created for it.
pub fn owner_of(contacts: &Contacts, account: &str, chat: &str) -> String {
    contacts
        .get(&(account.to_owned(), chat.to_owned()))
        .and_then(|c| c.first())
        .map(|c| c.1.clone())
        .unwrap_or_else(|| "?".into())
}

/// Counts lost, duplicate and unexpected CRM events and the round robin's
/// spread into `f`; returns the contacts created per chat.
pub fn crm(model: &Model, r: &Received, f: &mut Figures) -> Contacts {
    // The CRM: contacts and deals per chat; owners.
    let mut contacts: Contacts = HashMap::new();
    let mut chat_of: HashMap<String, (String, String)> = HashMap::new();
    let mut deals: HashMap<(String, String), BTreeSet<String>> = HashMap::new();
    let mut crm_ids = HashSet::new();
    for e in &r.crm {
        if !crm_ids.insert(s(&e["eventId"])) {
            continue;
        }
        let account = s(&e["accountId"]);
        match e["type"].as_str() {
            Some("contact.created") => {
                let chat = (account, s(&e["contactData"][0]["chatId"]));
                chat_of.insert(s(&e["contactId"]), chat.clone());
                let entry = contacts.entry(chat).or_default();
                let c = (s(&e["contactId"]), s(&e["responsibleUserId"]));
                if !entry.contains(&c) {
                    entry.push(c);
                }
            }
            Some("deal.created") => {
                let chat = chat_of
                    .get(&s(&e["contactIds"][0]))
                    .cloned()
                    .unwrap_or_default();
                deals.entry(chat).or_default().insert(s(&e["dealId"]));
            }
            _ => f.unexpected_crm += 1,
        }
    }
    f.distinct_crm = crm_ids.len();
    let owner = |account: &str, chat: &str| owner_of(&contacts, account, chat);
    for chat in &model.new_chats {
        let key = (chat.account.clone(), chat.chat.clone());
        let n_contacts = contacts
            .get(&key)
            .map_or(0, |c| c.iter().map(|c| &c.0).collect::<BTreeSet<_>>().len());
        let n_deals = deals.get(&key).map_or(0, BTreeSet::len);
        f.lost_crm += usize::from(n_contacts == 0) + usize::from(n_deals == 0);
        f.duplicate_contacts += usize::from(n_contacts > 1);
        f.duplicate_deals += usize::from(n_deals > 1);
        let owners: BTreeSet<_> = contacts
            .get(&key)
            .into_iter()
            .flatten()
            .map(|c| &c.1)
            .collect();
        if owners.len() > 1 {
            f.multi_winner_claims += 1;
            f.example(format!("{}/{}: owners {owners:?}", key.0, key.1));
        }
        if chat.distribution == Distribution::RoundRobin {
            let counts = f
                .round_robin
                .entry(chat.account.clone())
                .or_insert_with(|| vec![0; MANAGERS.len()]);
            if let Some(i) = MANAGERS
                .iter()
                .position(|m| *m == owner(&chat.account, &chat.chat))
            {
                counts[i] += 1;
            }
        }
    }
    for known in &model.known_chats {
        if contacts.contains_key(known) {
            f.duplicate_contacts += 1;
            f.example(format!(
                "{}/{}: a known client got a new contact",
                known.0, known.1
            ));
        }
    }
    contacts
}
