//! What several tests check the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use super::{Got, TestApp};

/// Types of notifications, in order.
pub fn kinds(notes: &[Value]) -> Vec<&str> {
    notes
        .iter()
        .map(|n| n["type"].as_str().unwrap_or("?"))
        .collect()
}

/// The texts of `notes` (numbers, as the order tests send them), chat by
/// chat, in the order they arrived.
pub fn texts_by_chat(notes: &[Value]) -> BTreeMap<String, Vec<u32>> {
    let mut by_chat: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for n in notes {
        by_chat
            .entry(n["chatId"].as_str().unwrap().to_owned())
            .or_default()
            .push(n["text"].as_str().unwrap().parse().unwrap());
    }
    by_chat
}

/// How many of `notes` are of type `kind`.
pub fn count(notes: &[Value], kind: &str) -> usize {
    notes.iter().filter(|n| n["type"] == kind).count()
}

/// The messages of type `kind` (CRM events, say).
pub fn by_type<'a>(got: &'a [Got], kind: &str) -> Vec<&'a Got> {
    got.iter().filter(|m| m.json["type"] == kind).collect()
}

/// The distinct values of `field` in the messages of type `kind`.
pub fn ids(got: &[Got], kind: &str, field: &str) -> BTreeSet<String> {
    by_type(got, kind)
        .iter()
        .map(|m| m.json[field].to_string())
        .collect()
}

impl TestApp {
    /// Asserts that `n` new clients of account `acc` under round robin were each
    /// handled exactly once, whatever faults happened meanwhile: one contact and
    /// one deal per client on `crm`, each client given to exactly one of
    /// `managers`, and the round robin even. Repeats after a fault carry the same
    /// ids, so causes are counted, not copies.
    pub async fn assert_each_client_once(&self, crm: &str, n: usize, managers: &[&str]) {
        let crm = self.take(crm, 2 * n, Duration::from_secs(60)).await;
        let mut contacts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in by_type(&crm, "contact.created") {
            let chat = m.json["contactData"][0]["chatId"]
                .as_str()
                .unwrap()
                .to_owned();
            contacts
                .entry(chat)
                .or_default()
                .insert(m.json["contactId"].to_string());
        }
        assert_eq!(contacts.len(), n, "every client got a contact");
        assert!(
            contacts.values().all(|ids| ids.len() == 1),
            "no client got two contacts"
        );
        assert_eq!(
            ids(&crm, "deal.created", "dealId").len(),
            n,
            "one deal per client"
        );

        let mut owner: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut per_manager = Vec::new();
        for m in managers {
            let notes = self.notes("acc", m, n / managers.len()).await;
            let causes: BTreeSet<_> = notes
                .iter()
                .map(|n| n["notificationId"].to_string())
                .collect();
            for note in &notes {
                owner
                    .entry(note["chatId"].to_string())
                    .or_default()
                    .insert((*m).to_owned());
            }
            per_manager.push(causes.len());
        }
        assert_eq!(owner.len(), n, "every client reached a manager");
        assert!(
            owner.values().all(|ms| ms.len() == 1),
            "a client was given to two managers"
        );
        assert_eq!(
            per_manager,
            vec![n / managers.len(); managers.len()],
            "the round robin stayed even"
        );
    }

    /// Publishes the first message of new clients `client-{i}` of account
    /// "acc", `i` in `range`, all at once.
    pub async fn new_clients(&self, range: std::ops::Range<usize>) {
        let sends = range.map(|i| async move {
            self.publish_event(&super::inbound("acc", &format!("client-{i}"), "hello"))
                .await
        });
        futures_util::future::join_all(sends).await;
    }
}
