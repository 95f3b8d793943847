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

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use common::*;
use lapin::BasicProperties;
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{FieldTable, ShortString};
use serde_json::{Value, json};

const ACC: &str = "acc";

/// The contract's limit: a body over 256 KiB is refused.
const LIMIT: usize = 256 * 1024;

const WAIT: Duration = Duration::from_secs(20);

/// Two eligible managers (m1 first in turn) and quality control.
const STAFF: [(&str, &str, bool); 3] = [
    ("m1", "manager", true),
    ("m2", "manager", true),
    ("q", "quality_control", false),
];

struct Fixture {
    app: TestApp,
    /// Bound to `P.crm` with `#`.
    crm: String,
    /// Bound to `P.outbound` with `#`.
    outbound: String,
}

async fn fixture(workers: usize) -> Fixture {
    let mut app = TestApp::spawn(workers).await;
    let crm = app.bind_crm().await;
    let outbound = app.bind_outbound().await;
    setup_account(&app, ACC, &STAFF, Some("round_robin")).await;
    Fixture { app, crm, outbound }
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// The routing key a gateway uses for every event of the account (the chat
/// does not matter: all of an account's events are one stream).
fn chat_key(_chat_id: &str) -> String {
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
    let mut conn = app.redis.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", app.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let value = match kind.as_str() {
            "string" => {
                let v: Option<String> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                format!("{v:?}")
            }
            "hash" => {
                let v: BTreeMap<String, String> = redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                format!("{v:?}")
            }
            "set" => {
                let v: BTreeSet<String> = redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
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
    let key = chat_key(chat_id);
    let body = inbound(ACC, chat_id, "hello after the bad one");
    f.app
        .publish_raw(&key, &bytes(&body), BasicProperties::default())
        .await;
    assert_new_client_went_to(f, chat_id, manager).await;
}

// ---------------------------------------------------------------------------
// Not an event at all.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_json_is_dead_lettered() {
    let f = fixture(1).await;
    // Not JSON, and not even UTF-8: the dead letter must still be byte-identical.
    let body = b"{\"type\": \"message.inbound\", \"eventId\": \xff\xfe oops";
    expect_dead(
        &f,
        &chat_key("c-bad"),
        body,
        BasicProperties::default(),
        "not_json",
    )
    .await;
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_that_is_not_an_object_is_dead_lettered() {
    let f = fixture(1).await;
    // Valid JSON, but no event: there is no `type` to read (the worker says invalid_field).
    expect_dead(
        &f,
        ACC,
        b"[1,2]",
        BasicProperties::default(),
        "invalid_field",
    )
    .await;
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_type_is_dead_lettered() {
    let f = fixture(1).await;
    let mut body = inbound(ACC, "c-bad", "hi");
    body["type"] = json!("message.deleted");
    let header = expect_dead_json(&f, &chat_key("c-bad"), &body, "unknown_type").await;
    assert!(header.contains("message.deleted"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_type_is_dead_lettered() {
    let f = fixture(1).await;
    let mut body = inbound(ACC, "c-bad", "hi");
    body.as_object_mut().unwrap().remove("type");
    let header = expect_dead_json(&f, &chat_key("c-bad"), &body, "invalid_field").await;
    assert!(header.contains("type"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

// ---------------------------------------------------------------------------
// A missing or invalid field.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_chat_id_is_dead_lettered() {
    let f = fixture(1).await;
    let mut body = inbound(ACC, "c-bad", "hi");
    body.as_object_mut().unwrap().remove("chatId");
    let header = expect_dead_json(&f, &chat_key("c-bad"), &body, "invalid_field").await;
    assert!(
        header.contains("chatId"),
        "the header names the field: {header}"
    );
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_chat_type_is_dead_lettered() {
    let f = fixture(1).await;
    let mut body = inbound(ACC, "c-bad", "hi");
    body["chatType"] = json!("icq");
    expect_dead_json(&f, &format!("{ACC}.icq.c-bad"), &body, "invalid_field").await;
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_id_is_dead_lettered() {
    let f = fixture(1).await;
    let body = inbound(ACC, "", "hi");
    expect_dead_json(&f, &chat_key(""), &body, "invalid_field").await;
    // The shortest id is fine.
    expect_next_client(&f, "x", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_of_129_characters_is_dead_lettered() {
    let f = fixture(1).await;
    let long = "é".repeat(129);
    let body = inbound(ACC, &long, "hi");
    expect_dead_json(&f, &chat_key("long"), &body, "invalid_field").await;
    // 128 characters are allowed, even when they are 256 bytes of UTF-8.
    expect_next_client(&f, &"é".repeat(128), "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_with_a_control_character_is_dead_lettered() {
    let f = fixture(1).await;
    let body = inbound(ACC, "c-\u{7}bell", "hi");
    expect_dead_json(&f, &chat_key("c-bell"), &body, "invalid_field").await;
    // Any printable character is allowed, separators and braces included.
    expect_next_client(&f, "c {x}:*.é", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occurred_at_not_rfc3339_is_dead_lettered() {
    let f = fixture(1).await;
    let mut body = inbound(ACC, "c-bad", "hi");
    body["occurredAt"] = json!("25.11.2026 10:00");
    expect_dead_json(&f, &chat_key("c-bad"), &body, "invalid_field").await;
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

// ---------------------------------------------------------------------------
// Too large.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_256_kib_is_dead_lettered_and_one_at_the_limit_is_accepted() {
    let f = fixture(1).await;
    let over = inbound_of_size("c-big", LIMIT + 1);
    expect_dead(
        &f,
        &chat_key("c-big"),
        &over,
        BasicProperties::default(),
        "too_large",
    )
    .await;

    // Exactly 256 KiB is not over the limit: accepted, and it gets m1's turn,
    // which the refused one did not take.
    let at_limit = inbound_of_size("c-limit", LIMIT);
    f.app
        .publish_raw(&chat_key("c-limit"), &at_limit, BasicProperties::default())
        .await;
    let got = f.app.notes(ACC, "m1", 1).await;
    assert_eq!(kinds(&got), ["chat.new"]);
    assert_eq!(got[0]["chatId"], "c-limit");
    let text_len = serde_json::from_slice::<Value>(&at_limit).unwrap()["text"]
        .as_str()
        .unwrap()
        .len();
    assert_eq!(
        got[0]["text"].as_str().map(str::len),
        Some(text_len),
        "the whole text arrived"
    );
    let (m2, qc, crm) = tokio::join!(
        f.app.notes(ACC, "m2", 0),
        f.app.notes(ACC, "q", 1),
        f.app.take(&f.crm, 2, WAIT)
    );
    assert!(m2.is_empty(), "{m2:?}");
    assert_eq!(kinds(&qc), ["chat.new"]);
    assert_eq!(qc[0]["chatId"], "c-limit");
    assert_eq!(crm.len(), 2);
    assert!(crm.iter().all(|m| m.json["responsibleUserId"] == "m1"));
    let dead = f.app.dead(0).await;
    assert!(dead.is_empty(), "{:?}", describe(&dead));

    expect_next_client(&f, "c-next", "m2").await;
    f.app.cleanup().await;
}

// ---------------------------------------------------------------------------
// A reference to an unknown channel or user.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_to_an_unknown_channel_is_dead_lettered() {
    let f = fixture(1).await;
    let mut body = inbound(ACC, "c-bad", "hi");
    body["channelId"] = json!("ghost-channel");
    let header = expect_dead_json(&f, &chat_key("c-bad"), &body, "unknown_channel").await;
    assert!(header.contains("ghost-channel"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

/// A client m1 serves, so a reply to it could be sent.
async fn served_client(f: &Fixture) {
    f.app.publish_chat(&inbound(ACC, "c-1", "hi")).await;
    assert_new_client_went_to(f, "c-1", "m1").await;
}

/// m1's reply to c-1 is sent exactly once, and q sees it; nothing else went out.
async fn expect_reply_sent(f: &Fixture) {
    let good = outbound(ACC, "c-1", "m1", "hello");
    f.app.publish_chat(&good).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_from_an_unknown_user_is_dead_lettered() {
    let f = fixture(1).await;
    served_client(&f).await;
    let bad = outbound(ACC, "c-1", "ghost", "let me in");
    let header = expect_dead_json(&f, &chat_key("c-1"), &bad, "unknown_user").await;
    assert!(header.contains("ghost"), "{header}");
    assert!(
        !f.app.queue_exists(&f.app.user_queue(ACC, "ghost")).await,
        "no queue for an unknown user"
    );
    expect_reply_sent(&f).await;
    expect_next_client(&f, "c-next", "m2").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_to_an_unknown_channel_is_dead_lettered() {
    let f = fixture(1).await;
    served_client(&f).await;
    let mut bad = outbound(ACC, "c-1", "m1", "via nowhere");
    bad["channelId"] = json!("ghost-channel");
    expect_dead_json(&f, &chat_key("c-1"), &bad, "unknown_channel").await;
    expect_reply_sent(&f).await;
    expect_next_client(&f, "c-next", "m2").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_upserted_with_an_unknown_channel_is_refused_whole() {
    let f = fixture(1).await;
    // "a0" alone is valid and would sort before m1, so had he been created he
    // would get the next client; "a1" has one good and one unknown channel.
    let body = event(
        "users.upserted",
        ACC,
        json!({ "users": [
            { "userId": "a0", "name": "Valid", "access": [{ "channelId": "wa", "role": "manager", "receivesNewClients": true }] },
            { "userId": "a1", "name": "Half valid", "access": [
                { "channelId": "wa", "role": "manager", "receivesNewClients": true },
                { "channelId": "ghost-channel", "role": "supervisor", "receivesNewClients": false } ] },
        ] }),
    );
    let header = expect_dead_json(&f, ACC, &body, "unknown_channel").await;
    assert!(header.contains("ghost-channel"), "{header}");
    for user in ["a0", "a1"] {
        assert!(
            !f.app.queue_exists(&f.app.user_queue(ACC, user)).await,
            "queue of {user} was declared"
        );
    }
    expect_next_client(&f, "c-next", "m1").await;
    for user in ["a0", "a1"] {
        assert!(
            !f.app.queue_exists(&f.app.user_queue(ACC, user)).await,
            "queue of {user} was declared"
        );
    }
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_removed_of_an_unknown_user_is_refused_whole() {
    let f = fixture(1).await;
    // Had m1 been removed (the known one of the two), the next client would go to m2.
    let body = event("users.removed", ACC, json!({ "userIds": ["m1", "ghost"] }));
    let header = expect_dead_json(&f, ACC, &body, "unknown_user").await;
    assert!(header.contains("ghost"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_upserted_with_an_unknown_responsible_is_dead_lettered() {
    let f = fixture(1).await;
    // Had it been taken, c-next would be a known contact, not a new client.
    let body = event(
        "contact.upserted",
        ACC,
        json!({ "contactId": "crm-1", "name": "Known client", "responsibleUserId": "ghost",
                "contactData": [{ "chatType": "whatsapp", "chatId": "c-next" }] }),
    );
    expect_dead_json(&f, ACC, &body, "unknown_user").await;
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deal_upserted_with_an_unknown_responsible_is_dead_lettered() {
    let f = fixture(1).await;
    let body = event(
        "deal.upserted",
        ACC,
        json!({ "dealId": "d-1", "name": "Doors", "contactIds": ["crm-1"], "responsibleUserId": "ghost",
                "pipelineId": "p", "stageId": "s1", "closed": false }),
    );
    expect_dead_json(&f, ACC, &body, "unknown_user").await;
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

/// `settings.updated` switching to first_reply (which would show the next
/// client to both managers and create nothing) with the given pipeline and stage.
fn settings(pipeline: &str, stage: &str) -> Value {
    event(
        "settings.updated",
        ACC,
        json!({ "newClients": { "pipelineId": pipeline, "stageId": stage, "distribution": "first_reply" },
                "links": { "deal": "https://crm.example/deals/{dealId}", "newDeal": "https://crm.example/deals/new?contact={contactId}" } }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_with_an_unknown_pipeline_are_dead_lettered() {
    let f = fixture(1).await;
    let header = expect_dead_json(&f, ACC, &settings("ghost-pipeline", "s1"), "invalid").await;
    assert!(header.contains("ghost-pipeline"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_with_an_unknown_stage_are_dead_lettered() {
    let f = fixture(1).await;
    let header = expect_dead_json(&f, ACC, &settings("p", "ghost-stage"), "invalid").await;
    assert!(header.contains("ghost-stage"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

fn suitcase(chat_id: &str) -> Value {
    event(
        "suitcase.requested",
        ACC,
        json!({ "userId": "m1", "chatType": "whatsapp", "chatId": chat_id }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suitcase_without_reply_to_is_dead_lettered() {
    let f = fixture(1).await;
    let props = BasicProperties::default().with_correlation_id(ShortString::from("corr-1"));
    expect_dead(
        &f,
        &chat_key("c-none"),
        &bytes(&suitcase("c-none")),
        props,
        "invalid",
    )
    .await;

    // The same request with somewhere to answer is answered.
    let reply = f
        .app
        .channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .name()
        .to_string();
    let props = BasicProperties::default()
        .with_correlation_id(ShortString::from("corr-2"))
        .with_reply_to(ShortString::from(reply.as_str()));
    f.app
        .publish_raw(&chat_key("c-none"), &bytes(&suitcase("c-none")), props)
        .await;
    let answers = f.app.take(&reply, 1, WAIT).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].json, json!({ "error": "unknown_chat" }));
    assert_eq!(
        answers[0]
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.to_string()),
        Some("corr-2".to_owned())
    );
    let _ = f
        .app
        .channel
        .queue_delete(reply.as_str().into(), QueueDeleteOptions::default())
        .await;

    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

// ---------------------------------------------------------------------------
// Many at once.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bad_and_good_inputs_over_two_workers() {
    let f = fixture(2).await;
    let corr = || BasicProperties::default().with_correlation_id(ShortString::from("corr"));
    // (routing key, body, properties, code)
    let bad = |i: usize| -> (String, Vec<u8>, BasicProperties, &'static str) {
        let chat = format!("bad-{i}");
        let key = chat_key(&chat);
        let plain = BasicProperties::default;
        match i % 10 {
            0 => (
                key,
                format!("not json {i} {{").into_bytes(),
                plain(),
                "not_json",
            ),
            1 => (
                ACC.to_owned(),
                format!("[{i}, 2]").into_bytes(),
                plain(),
                "invalid_field",
            ),
            2 => {
                let mut b = inbound(ACC, &chat, "hi");
                b["type"] = json!("message.deleted");
                (key, bytes(&b), plain(), "unknown_type")
            }
            3 => {
                let mut b = inbound(ACC, &chat, "hi");
                b["chatType"] = json!("icq");
                (key, bytes(&b), plain(), "invalid_field")
            }
            4 => {
                let mut b = inbound(ACC, &chat, "hi");
                b["channelId"] = json!("ghost-channel");
                (key, bytes(&b), plain(), "unknown_channel")
            }
            5 => (key, inbound_of_size(&chat, LIMIT + 1), plain(), "too_large"),
            6 => (
                key,
                bytes(&outbound(ACC, &chat, "ghost", "hi")),
                plain(),
                "unknown_user",
            ),
            7 => {
                let b = event(
                    "users.upserted",
                    ACC,
                    json!({ "users": [{ "userId": "a0", "name": "A", "access": [
                        { "channelId": "wa", "role": "manager", "receivesNewClients": true },
                        { "channelId": "ghost-channel", "role": "manager", "receivesNewClients": true } ] }] }),
                );
                (ACC.to_owned(), bytes(&b), plain(), "unknown_channel")
            }
            8 => (
                ACC.to_owned(),
                bytes(&settings("p", "ghost-stage")),
                plain(),
                "invalid",
            ),
            _ => (key, bytes(&suitcase(&chat)), corr(), "invalid"),
        }
    };

    let mut expected: HashMap<Vec<u8>, &str> = HashMap::new();
    let mut good = Vec::new();
    let (mut b, mut g) = (0, 0);
    for n in 0..30 {
        if n % 3 == 2 {
            let chat = format!("good-{g}");
            f.app.publish_chat(&inbound(ACC, &chat, "hello")).await;
            good.push(chat);
            g += 1;
        } else {
            let (key, body, props, code) = bad(b);
            f.app.publish_raw(&key, &body, props).await;
            assert!(
                expected.insert(body, code).is_none(),
                "bad bodies are distinct"
            );
            b += 1;
        }
    }
    assert_eq!((expected.len(), good.len()), (20, 10));

    let dead = f.app.dead(20).await;
    assert_eq!(dead.len(), 20, "{:?}", describe(&dead));
    for letter in &dead {
        let code = expected.remove(&letter.body).unwrap_or_else(|| {
            panic!(
                "unexpected dead letter {:?}",
                describe(std::slice::from_ref(letter))
            )
        });
        let header = letter.header("x-switchboard-error").unwrap_or_default();
        assert!(
            header.starts_with(&format!("{code}:")),
            "expected {code}, got {header:?}"
        );
    }
    assert!(expected.is_empty());

    // The ten good clients, evenly over the two managers, each exactly once.
    let (m1, m2, qc, crm, sent) = tokio::join!(
        f.app.notes(ACC, "m1", 5),
        f.app.notes(ACC, "m2", 5),
        f.app.notes(ACC, "q", 10),
        f.app.take(&f.crm, 20, WAIT),
        f.app.take(&f.outbound, 0, WAIT),
    );
    assert!(
        m1.iter()
            .chain(&m2)
            .chain(&qc)
            .all(|n| n["type"] == "chat.new"),
        "{m1:?} {m2:?} {qc:?}"
    );
    assert_eq!(
        (m1.len(), m2.len()),
        (5, 5),
        "round robin stays even: {m1:?} {m2:?}"
    );
    let chats = |notes: &[Value]| {
        notes
            .iter()
            .map(|n| n["chatId"].as_str().unwrap().to_owned())
            .collect::<BTreeSet<_>>()
    };
    let all: BTreeSet<String> = good.iter().cloned().collect();
    assert_eq!(
        chats(&m1)
            .union(&chats(&m2))
            .cloned()
            .collect::<BTreeSet<_>>(),
        all
    );
    assert_eq!(chats(&qc), all);
    assert_eq!(qc.len(), 10);
    let count = |t: &str| crm.iter().filter(|m| m.json["type"] == t).count();
    assert_eq!(
        (crm.len(), count("contact.created"), count("deal.created")),
        (20, 10, 10)
    );
    assert!(sent.is_empty());
    assert!(!f.app.queue_exists(&f.app.user_queue(ACC, "a0")).await);
    f.app.cleanup().await;
}
