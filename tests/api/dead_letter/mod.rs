//! The contract's bad-input rule end to end, with real workers, RabbitMQ and Redis:
//! input the worker cannot accept goes to `P.dead` byte for byte, with
//! `x-switchboard-error` saying why; it changes no state and never stops the worker.
//!
//! Every test runs on the same small account: channel "wa", two eligible
//! managers under round robin (m1 is first in turn, then m2) and a quality
//! control user "q" who sees every chat. Each test publishes one bad input and
//! checks
//! 1. exactly one dead letter, its body identical to what was published, its
//!    header starting with the expected code;
//! 2. Redis (every key of the test's prefix) is exactly as before;
//! 3. the worker still works and the bad input left no trace: the next new
//!    client goes to the manager whose turn it was, and nobody else heard of
//!    anything (no notification, no CRM event, no reply to send).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use lapin::BasicProperties;
use lapin::types::{FieldTable, ShortString};
use serde_json::{Value, json};

use crate::helpers::*;

mod burst;
mod parse;
mod references;

const ACC: &str = "acc";

/// The contract's limit: a body over 256 KiB is refused.
const LIMIT: usize = 256 * 1024;

const WAIT: Duration = Duration::from_secs(20);

/// Two eligible managers (m1 first in turn) and quality control.
const STAFF: [Staff; 3] = [
    ("m1", "manager", true),
    ("m2", "manager", true),
    ("q", "quality_control", false),
];

async fn fixture(workers: usize) -> Fixture {
    Fixture::new(workers, &STAFF, Some("round_robin")).await
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// The routing key a gateway uses for every event of the account (all of an
/// account's events are one stream).
fn key() -> String {
    account_key(ACC)
}

/// A client's `message.inbound` whose serialized body is exactly `size` bytes.
fn inbound_of_size(chat_id: &str, size: usize) -> Vec<u8> {
    let mut body = inbound(ACC, chat_id, "");
    let base = bytes(&body).len();
    body["text"] = Value::String("x".repeat(size - base));
    let out = bytes(&body);
    assert_eq!(out.len(), size);
    out
}

/// Every key of the test's prefix with its value: the whole state of the worker.
async fn state(app: &TestApp) -> BTreeMap<String, String> {
    let keys: Vec<String> = app
        .redis_cmd(redis::cmd("KEYS").arg(format!("{}:*", app.prefix)))
        .await;
    let mut out = BTreeMap::new();
    for key in keys {
        let kind: String = app.redis_cmd(redis::cmd("TYPE").arg(&key)).await;
        let value = match kind.as_str() {
            "string" => {
                let v: Option<String> = app.redis_cmd(redis::cmd("GET").arg(&key)).await;
                format!("{v:?}")
            }
            "hash" => {
                let v: BTreeMap<String, String> =
                    app.redis_cmd(redis::cmd("HGETALL").arg(&key)).await;
                format!("{v:?}")
            }
            "set" => {
                let v: BTreeSet<String> = app.redis_cmd(redis::cmd("SMEMBERS").arg(&key)).await;
                format!("{v:?}")
            }
            other => format!("<{other}>"),
        };
        out.insert(key, value);
    }
    out
}

/// A short description of dead letters for assertion messages (bodies may be 256 KiB).
fn describe(dead: &[Got]) -> Vec<String> {
    dead.iter()
        .map(|d| {
            let head: String = String::from_utf8_lossy(&d.body).chars().take(120).collect();
            format!("{:?} <- {head}", d.header("x-switchboard-error"))
        })
        .collect()
}

/// Publishes one bad input and checks the rule: exactly one dead letter, the
/// same bytes, the expected code, and Redis untouched. Returns the header.
async fn expect_dead(
    f: &Fixture,
    key: &str,
    body: &[u8],
    props: BasicProperties,
    code: &str,
) -> String {
    let before = state(&f.app).await;
    assert!(
        before.keys().any(|k| k.ends_with(":users")),
        "the account is set up: {before:?}"
    );
    f.app.publish_raw(key, body, props).await;
    let dead = f.app.dead(1).await;
    assert_eq!(
        dead.len(),
        1,
        "exactly one dead letter: {:?}",
        describe(&dead)
    );
    let letter = &dead[0];
    assert!(
        letter.body == body,
        "the dead letter's body differs from the published one: {:?}",
        describe(&dead)
    );
    let header = letter
        .header("x-switchboard-error")
        .expect("the dead letter has x-switchboard-error");
    assert!(
        header.starts_with(&format!("{code}:")),
        "expected code {code:?}, got {header:?}"
    );
    assert_eq!(
        state(&f.app).await,
        before,
        "the refused input changed the state in Redis"
    );
    header
}

async fn expect_dead_json(f: &Fixture, key: &str, body: &Value, code: &str) -> String {
    expect_dead(f, key, &bytes(body), BasicProperties::default(), code).await
}

/// The effect of a new client's first message under round robin, and nothing
/// else anywhere: `manager` alone got `chat.new`, q saw it, the CRM got the
/// contact and the deal, no reply was sent.
async fn assert_new_client_went_to(f: &Fixture, chat_id: &str, manager: &str) {
    let got = f.app.notes(ACC, manager, 1).await;
    assert_eq!(kinds(&got), ["chat.new"], "{manager}: {got:?}");
    assert_eq!(got[0]["chatId"], chat_id, "{got:?}");
    let other = if manager == "m1" { "m2" } else { "m1" };
    let (other_notes, qc, crm, sent) = tokio::join!(
        f.app.notes(ACC, other, 0),
        f.app.notes(ACC, "q", 1),
        f.app.take(&f.crm, 2, WAIT),
        f.app.take(&f.outbound, 0, WAIT),
    );
    assert!(other_notes.is_empty(), "{other} got {other_notes:?}");
    assert_eq!(kinds(&qc), ["chat.new"], "q: {qc:?}");
    assert_eq!(qc[0]["chatId"], chat_id, "{qc:?}");
    let crm: Vec<&Value> = crm.iter().map(|m| &m.json).collect();
    let types: BTreeSet<&str> = crm
        .iter()
        .map(|m| m["type"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        (crm.len(), types),
        (2, BTreeSet::from(["contact.created", "deal.created"])),
        "{crm:?}"
    );
    assert!(
        crm.iter().all(|m| m["responsibleUserId"] == manager),
        "{crm:?}"
    );
    let contact = crm.iter().find(|m| m["type"] == "contact.created").unwrap();
    assert_eq!(
        contact["contactData"],
        json!([{ "chatType": "whatsapp", "chatId": chat_id }])
    );
    assert!(
        sent.is_empty(),
        "nothing was to be sent: {:?}",
        sent.iter().map(|m| &m.json).collect::<Vec<_>>()
    );
}

/// The worker keeps going and the bad input took no turn: a new client now goes to `manager`.
async fn expect_next_client(f: &Fixture, chat_id: &str, manager: &str) {
    let key = key();
    let body = inbound(ACC, chat_id, "hello after the bad one");
    f.app
        .publish_raw(&key, &bytes(&body), BasicProperties::default())
        .await;
    assert_new_client_went_to(f, chat_id, manager).await;
}

async fn served_client(f: &Fixture) {
    f.app.publish_event(&inbound(ACC, "c-1", "hi")).await;
    assert_new_client_went_to(f, "c-1", "m1").await;
}

/// m1's reply to c-1 is sent exactly once, and q sees it; nothing else went out.
async fn expect_reply_sent(f: &Fixture) {
    let good = outbound(ACC, "c-1", "m1", "hello");
    f.app.publish_event(&good).await;
    let sent = f.app.take(&f.outbound, 1, WAIT).await;
    let sent: Vec<&Value> = sent.iter().map(|m| &m.json).collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (&sent[0]["type"], &sent[0]["messageId"]),
        (&json!("message.send"), &good["messageId"])
    );
    let (m1, m2, qc) = tokio::join!(
        f.app.notes(ACC, "m1", 0),
        f.app.notes(ACC, "m2", 0),
        f.app.notes(ACC, "q", 1)
    );
    assert!(m1.is_empty() && m2.is_empty(), "{m1:?} {m2:?}");
    assert_eq!(kinds(&qc), ["chat.message"], "{qc:?}");
    assert_eq!(qc[0]["messageId"], good["messageId"]);
}

/// `settings.updated` switching to first_reply (which would show the next
/// client to both managers and create nothing) with the given pipeline and stage.
fn first_reply_settings(pipeline: &str, stage: &str) -> Value {
    settings(ACC, pipeline, stage, "first_reply")
}

fn suitcase(chat_id: &str) -> Value {
    event(
        "suitcase.requested",
        ACC,
        json!({ "userId": "m1", "chatType": "whatsapp", "chatId": chat_id }),
    )
}
