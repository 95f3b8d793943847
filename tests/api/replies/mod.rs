//! Replies end to end (`message.outbound`): the contract's permission table,
//! the claim of a new client, exactly-once effects of replies and the
//! removal of a manager. Real workers, real RabbitMQ and Redis.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::helpers::*;
use futures_util::future::join_all;
use lapin::types::FieldTable;
use serde_json::{Value, json};

mod claims;
mod once;
mod permissions;

const WAIT: Duration = Duration::from_secs(30);

/// Two eligible managers and quality control, on "wa".
const TEAM: [Staff; 3] = [
    ("m1", "manager", true),
    ("m2", "manager", true),
    ("q", "quality_control", false),
];

/// The same and a supervisor.
const TEAM_AND_SUPERVISOR: [Staff; 4] = [TEAM[0], TEAM[1], TEAM[2], ("s", "supervisor", false)];

/// What a user finds in his queue, reduced to what the tests compare:
/// (user, type, chatId, messageId of the message it is about, reason).
/// `messageId` is compared only where the notification is about one message
/// (`chat.message`, `message.rejected`).
type NoteKey = (String, String, String, String, String);

fn note_key(account: &str, user: &str, note: &Value) -> NoteKey {
    assert_eq!(
        note["userId"], user,
        "a notification in {user}'s queue is addressed to him: {note}"
    );
    assert_eq!(note["accountId"], account, "{note}");
    assert!(
        note["notificationId"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "notificationId: {note}"
    );
    let kind = note["type"].as_str().unwrap_or("?");
    let message = match kind {
        "chat.message" | "message.rejected" => note["messageId"].as_str().unwrap_or("<none>"),
        _ => "",
    };
    key(
        user,
        kind,
        note["chatId"].as_str().unwrap_or("?"),
        message,
        note["reason"].as_str().unwrap_or(""),
    )
}

fn key(user: &str, kind: &str, chat: &str, message: &str, reason: &str) -> NoteKey {
    (
        user.into(),
        kind.into(),
        chat.into(),
        message.into(),
        reason.into(),
    )
}

/// Takes every listed user's queue at once, each until at least its count arrived
/// (then [`SETTLE`] more to catch extras).
async fn gather(
    app: &TestApp,
    account: &str,
    want: &[(String, usize)],
) -> BTreeMap<String, Vec<Value>> {
    let takes = want.iter().map(|(user, min)| async move {
        let queue = app.user_queue(account, user);
        let got = app.take(&queue, *min, WAIT).await;
        (
            user.clone(),
            got.into_iter().map(|g| g.json).collect::<Vec<_>>(),
        )
    });
    join_all(takes).await.into_iter().collect()
}

/// Gathers the queues of `users` and checks that together they hold exactly
/// `expected` (as a multiset). Returns what was taken.
async fn expect_notes(
    app: &TestApp,
    account: &str,
    users: &[&str],
    expected: &[NoteKey],
) -> BTreeMap<String, Vec<Value>> {
    let want: Vec<(String, usize)> = users
        .iter()
        .map(|u| (u.to_string(), expected.iter().filter(|k| k.0 == *u).count()))
        .collect();
    let got = gather(app, account, &want).await;
    let actual: Vec<NoteKey> = got
        .iter()
        .flat_map(|(user, notes)| notes.iter().map(move |n| note_key(account, user, n)))
        .collect();
    let expected = expected.to_vec();
    assert_same(actual, expected);
    got
}

/// Compares two multisets of notifications and names what is missing and what is extra.
fn assert_same(mut actual: Vec<NoteKey>, mut expected: Vec<NoteKey>) {
    actual.sort();
    expected.sort();
    if actual == expected {
        return;
    }
    let (mut missing, mut extra) = (expected.clone(), Vec::new());
    for note in actual {
        match missing.iter().position(|m| *m == note) {
            Some(i) => {
                missing.remove(i);
            }
            None => extra.push(note),
        }
    }
    panic!("notifications differ:\n missing {missing:#?}\n extra {extra:#?}");
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Checks a `message.send` against the reply it answers.
fn assert_send(got: &Got, request: &Value, contact_id: &str) {
    let body = &got.json;
    let account = s(&request["accountId"]);
    assert_eq!(
        got.routing_key,
        format!("{account}.{}", s(&request["channelId"])),
        "routing key of {body}"
    );
    assert_eq!(body["type"], "message.send", "{body}");
    for field in [
        "accountId",
        "messageId",
        "channelId",
        "chatType",
        "chatId",
        "userId",
        "text",
    ] {
        assert_eq!(body[field], request[field], "{field} of {body}");
    }
    assert_eq!(body["contactId"], contact_id, "{body}");
}

/// Asks the suitcase of `user` until the chat has a contact (the CRM's
/// `contact.upserted` is an account event, which travels apart from chat events).
async fn wait_contact(app: &TestApp, account: &str, user: &str, chat: (&str, &str)) {
    let queue = reply_queue(app, FieldTable::default()).await;
    let has_contact = |reply: &Value| reply["contactId"].is_string();
    let reply = ask_until(app, &queue, account, user, chat, has_contact).await;
    assert!(has_contact(&reply), "contact of {chat:?} never applied");
}

/// Takes from `queue` until `done` holds for everything taken (then [`SETTLE`] more).
async fn take_until(app: &TestApp, queue: &str, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while !done(&got) {
        assert!(
            Instant::now() < deadline,
            "{queue}: still waiting; got {got:?}"
        );
        got.extend(app.take(queue, 1, Duration::from_secs(2)).await);
    }
    got
}

async fn publish_all(app: &TestApp, events: &[Value]) {
    join_all(events.iter().map(|e| app.publish_event(e))).await;
}

/// The first message of a new client on "wa", and its `chat.new` to every
/// one of `everyone` (all of them are shown it).
async fn show_new_chat(app: &TestApp, account: &str, everyone: &[&str], chat: &str) {
    app.publish_event(&inbound(account, chat, "hello")).await;
    let shown: Vec<NoteKey> = everyone
        .iter()
        .map(|u| key(u, "chat.new", chat, "", ""))
        .collect();
    expect_notes(app, account, everyone, &shown).await;
}

/// As [`expect_notes`], but a `chat.message` of `author`'s own reply in his
/// own queue is left out: a supervisor who writes may or may not be echoed his
/// own reply; the contract does not say.
async fn expect_notes_but_echo(
    app: &TestApp,
    account: &str,
    users: &[&str],
    expected: &[NoteKey],
    own: impl Fn(&str, &Value) -> bool,
) -> BTreeMap<String, Vec<Value>> {
    let want: Vec<(String, usize)> = users
        .iter()
        .map(|u| (u.to_string(), expected.iter().filter(|k| k.0 == *u).count()))
        .collect();
    let got = gather(app, account, &want).await;
    let actual: Vec<NoteKey> = got
        .iter()
        .flat_map(|(user, list)| {
            list.iter()
                .filter(|n| !own(user, n))
                .map(move |n| note_key(account, user, n))
        })
        .collect();
    assert_same(actual, expected.to_vec());
    got
}
