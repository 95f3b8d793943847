//! Replies end to end (`message.outbound`): the contract's permission table,
//! the claim of a new client, exactly-once effects of replies and the
//! removal of a manager. Real workers, real RabbitMQ and Redis.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use futures_util::future::join_all;
use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- helpers

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

/// A reply on any channel.
fn reply(
    account: &str,
    channel: &str,
    chat_type: &str,
    chat_id: &str,
    user: &str,
    text: &str,
) -> Value {
    event(
        "message.outbound",
        account,
        json!({ "messageId": eid(), "channelId": channel, "chatType": chat_type, "chatId": chat_id, "userId": user, "text": text }),
    )
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
async fn wait_contact(app: &TestApp, account: &str, user: &str, chat_type: &str, chat_id: &str) {
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let queue = app
        .channel
        .queue_declare("".into(), options, FieldTable::default())
        .await
        .unwrap();
    let queue = queue.name().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    'ask: loop {
        assert!(
            Instant::now() < deadline,
            "contact of {chat_type}/{chat_id} never applied"
        );
        let body = event(
            "suitcase.requested",
            account,
            json!({ "userId": user, "chatType": chat_type, "chatId": chat_id }),
        );
        let correlation = eid();
        let props = BasicProperties::default()
            .with_reply_to(queue.as_str().into())
            .with_correlation_id(correlation.as_str().into());
        app.publish_raw(&account_key(account), body.to_string().as_bytes(), props)
            .await;
        loop {
            assert!(
                Instant::now() < deadline,
                "no suitcase reply for {chat_type}/{chat_id}"
            );
            match app
                .channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                Some(m)
                    if m.delivery
                        .properties
                        .correlation_id()
                        .as_ref()
                        .map(|c| c.to_string())
                        == Some(correlation.clone()) =>
                {
                    let answer: Value =
                        serde_json::from_slice(&m.delivery.data).unwrap_or(Value::Null);
                    if answer["contactId"].is_string() {
                        break 'ask;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue 'ask;
                }
                Some(_) => {}
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    let _ = app
        .channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
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

fn by_type<'a>(crm: &'a [Got], kind: &str) -> Vec<&'a Got> {
    crm.iter().filter(|m| m.json["type"] == kind).collect()
}

async fn publish_all(app: &TestApp, events: &[Value]) {
    join_all(events.iter().map(|e| app.publish_chat(e))).await;
}

// ---------------------------------------------------------- the permission table

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// `message.rejected` with this reason to the author; nothing else.
    Rejected(&'static str),
    /// `message.send` on P.outbound; the channel's QC and supervisors get `chat.message`.
    Sent,
    /// As `Sent`, and the author claims the chat: contact, deal, `chat.assigned`,
    /// `chat.withdrawn` for the managers who were shown it.
    Claims,
}

struct Row {
    why: &'static str,
    user: &'static str,
    channel: &'static str,
    chat: &'static str,
    expect: Expect,
}

/// One seat: (channelId, role, receivesNewClients).
type Seat = (&'static str, &'static str, bool);

/// Each user's access.
const ACCESS: &[(&str, &[Seat])] = &[
    (
        "m1",
        &[("wa", "manager", true), ("tg", "quality_control", false)],
    ),
    ("m2", &[("wa", "manager", true)]),
    ("m3", &[("wa", "manager", false)]),
    ("q", &[("wa", "quality_control", false)]),
    (
        "s",
        &[("wa", "supervisor", false), ("tg", "supervisor", false)],
    ),
    (
        "t",
        &[("wa", "quality_control", false), ("tg", "manager", true)],
    ),
    ("x", &[("tg", "manager", false)]),
    ("z", &[]),
    ("r", &[("wa", "manager", true)]), // removed before the replies
];

fn chat_type_of(channel: &str) -> &'static str {
    if channel == "wa" {
        "whatsapp"
    } else {
        "telegram"
    }
}

/// Quality control and supervisors of a channel.
fn observers(channel: &str) -> Vec<&'static str> {
    ACCESS
        .iter()
        .filter(|(user, seats)| {
            *user != "r"
                && seats.iter().any(|(c, role, _)| {
                    *c == channel && (*role == "quality_control" || *role == "supervisor")
                })
        })
        .map(|(user, _)| *user)
        .collect()
}

/// Eligible managers of a channel.
fn eligible(channel: &str) -> Vec<&'static str> {
    ACCESS
        .iter()
        .filter(|(user, seats)| {
            *user != "r"
                && seats
                    .iter()
                    .any(|(c, role, rnc)| *c == channel && *role == "manager" && *rnc)
        })
        .map(|(user, _)| *user)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permission_table() {
    let mut app = TestApp::spawn(2).await;
    let crm_queue = app.bind_crm().await;
    let outbound_queue = app.bind_outbound().await;
    let acc = "acc";

    // Two channels; users with per-channel roles; first_reply; r removed.
    app.publish_account(&event(
        "channels.upserted",
        acc,
        json!({ "channels": [{ "channelId": "wa", "chatType": "whatsapp", "name": "Support" },
                             { "channelId": "tg", "chatType": "telegram", "name": "Sales" }] }),
    ))
    .await;
    app.wait_config(acc, 1).await;
    let users: Vec<Value> = ACCESS
        .iter()
        .map(|(user, seats)| {
            let access: Vec<Value> = seats
                .iter()
                .map(|(channel, role, rnc)| json!({ "channelId": channel, "role": role, "receivesNewClients": rnc }))
                .collect();
            json!({ "userId": user, "name": format!("User {user}"), "access": access })
        })
        .collect();
    app.publish_account(&event("users.upserted", acc, json!({ "users": users })))
        .await;
    app.publish_account(&event(
        "pipelines.loaded",
        acc,
        json!({ "pipelines": [{ "pipelineId": "p", "name": "Sales", "stages": [{ "stageId": "s1", "name": "New" }] }] }),
    ))
    .await;
    app.wait_config(acc, 3).await;
    app.publish_account(&event(
        "settings.updated",
        acc,
        json!({ "newClients": { "pipelineId": "p", "stageId": "s1", "distribution": "first_reply" },
                "links": { "deal": "https://crm.example/deals/{dealId}", "newDeal": "https://crm.example/deals/new?contact={contactId}" } }),
    ))
    .await;
    app.wait_config(acc, 4).await;
    app.publish_account(&event("users.removed", acc, json!({ "userIds": ["r"] })))
        .await;
    app.wait_config(acc, 5).await;
    let everyone: Vec<&str> = ACCESS.iter().map(|(u, _)| *u).collect();

    // Contacts the CRM has: w-m1 (whatsapp) is m1's, t-t (telegram) is t's.
    for (contact, responsible, chat_type, chat) in [
        ("c-m1", "m1", "whatsapp", "w-m1"),
        ("c-t", "t", "telegram", "t-t"),
    ] {
        app.publish_account(&event(
            "contact.upserted",
            acc,
            json!({ "contactId": contact, "name": format!("Contact {contact}"), "responsibleUserId": responsible,
                    "contactData": [{ "chatType": chat_type, "chatId": chat }] }),
        ))
        .await;
    }
    wait_contact(&app, acc, "m1", "whatsapp", "w-m1").await;
    wait_contact(&app, acc, "t", "telegram", "t-t").await;

    // Three new clients on wa, waiting to be claimed.
    let new_chats = ["w-new-1", "w-new-2", "w-new-3"];
    publish_all(&app, &new_chats.map(|c| inbound(acc, c, "hello"))).await;
    let mut shown = Vec::new();
    for user in eligible("wa").into_iter().chain(observers("wa")) {
        for chat in new_chats {
            shown.push(key(user, "chat.new", chat, "", ""));
        }
    }
    expect_notes(&app, acc, &everyone, &shown).await;

    use Expect::*;
    let rows = [
        Row {
            why: "no seat on the channel (access elsewhere only)",
            user: "x",
            channel: "wa",
            chat: "w-m1",
            expect: Rejected("no_access"),
        },
        Row {
            why: "no access to any channel",
            user: "z",
            channel: "wa",
            chat: "w-m1",
            expect: Rejected("no_access"),
        },
        Row {
            why: "removed user",
            user: "r",
            channel: "wa",
            chat: "w-m1",
            expect: Rejected("no_access"),
        },
        Row {
            why: "removed user on an unclaimed chat",
            user: "r",
            channel: "wa",
            chat: "w-new-2",
            expect: Rejected("no_access"),
        },
        Row {
            why: "quality control",
            user: "q",
            channel: "wa",
            chat: "w-m1",
            expect: Rejected("read_only"),
        },
        Row {
            why: "quality control on an unclaimed chat",
            user: "q",
            channel: "wa",
            chat: "w-new-2",
            expect: Rejected("read_only"),
        },
        Row {
            why: "manager on his own contact",
            user: "m1",
            channel: "wa",
            chat: "w-m1",
            expect: Sent,
        },
        Row {
            why: "manager on another manager's contact",
            user: "m2",
            channel: "wa",
            chat: "w-m1",
            expect: Rejected("not_responsible"),
        },
        Row {
            why: "non-eligible manager on another's contact",
            user: "m3",
            channel: "wa",
            chat: "w-m1",
            expect: Rejected("not_responsible"),
        },
        Row {
            why: "eligible manager on an unclaimed chat",
            user: "m2",
            channel: "wa",
            chat: "w-new-1",
            expect: Claims,
        },
        Row {
            why: "non-eligible manager on an unclaimed chat",
            user: "m3",
            channel: "wa",
            chat: "w-new-2",
            expect: Rejected("not_responsible"),
        },
        Row {
            why: "supervisor on a manager's contact",
            user: "s",
            channel: "wa",
            chat: "w-m1",
            expect: Sent,
        },
        Row {
            why: "supervisor on an unclaimed chat",
            user: "s",
            channel: "wa",
            chat: "w-new-3",
            expect: Claims,
        },
        Row {
            why: "manager on wa, quality control on tg: writes on tg",
            user: "m1",
            channel: "tg",
            chat: "t-t",
            expect: Rejected("read_only"),
        },
        Row {
            why: "quality control on wa, manager on tg: his tg contact",
            user: "t",
            channel: "tg",
            chat: "t-t",
            expect: Sent,
        },
        Row {
            why: "quality control on wa, manager on tg: writes on wa",
            user: "t",
            channel: "wa",
            chat: "w-m1",
            expect: Rejected("read_only"),
        },
        Row {
            why: "manager on tg only: another's tg contact",
            user: "x",
            channel: "tg",
            chat: "t-t",
            expect: Rejected("not_responsible"),
        },
        Row {
            why: "supervisor on the other channel",
            user: "s",
            channel: "tg",
            chat: "t-t",
            expect: Sent,
        },
    ];
    let requests: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            reply(
                acc,
                row.channel,
                chat_type_of(row.channel),
                row.chat,
                row.user,
                &format!("row {i}: {}", row.why),
            )
        })
        .collect();
    publish_all(&app, &requests).await;

    // What the table promises.
    let mut notes = Vec::new();
    let (mut sends, mut claims) = (0, 0);
    for (row, request) in rows.iter().zip(&requests) {
        let message = s(&request["messageId"]);
        match row.expect {
            Rejected(reason) => {
                notes.push(key(row.user, "message.rejected", row.chat, message, reason))
            }
            Sent | Claims => {
                sends += 1;
                for observer in observers(row.channel)
                    .into_iter()
                    .filter(|o| *o != row.user)
                {
                    notes.push(key(observer, "chat.message", row.chat, message, ""));
                }
            }
        }
        if row.expect == Claims {
            claims += 1;
            notes.push(key(row.user, "chat.assigned", row.chat, "", ""));
            for manager in eligible(row.channel).into_iter().filter(|m| *m != row.user) {
                notes.push(key(manager, "chat.withdrawn", row.chat, "", ""));
            }
        }
    }

    let outbound = app.take(&outbound_queue, sends, WAIT).await;
    let crm = app.take(&crm_queue, 2 * claims, WAIT).await;
    let want: Vec<(String, usize)> = everyone
        .iter()
        .map(|u| (u.to_string(), notes.iter().filter(|k| k.0 == *u).count()))
        .collect();
    let got = gather(&app, acc, &want).await;
    // A supervisor who writes may or may not be echoed his own reply as chat.message; the contract does not say.
    let own = |user: &str, note: &Value| {
        note["type"] == "chat.message"
            && requests
                .iter()
                .any(|r| r["userId"] == user && r["messageId"] == note["messageId"])
    };
    let actual: Vec<NoteKey> = got
        .iter()
        .flat_map(|(user, list)| {
            list.iter()
                .filter(|n| !own(user, n))
                .map(move |n| note_key(acc, user, n))
        })
        .collect();
    assert_same(actual, notes);

    // Row by row: the replies to send, and the claims.
    let mut contact_of: BTreeMap<&str, String> =
        BTreeMap::from([("w-m1", "c-m1".into()), ("t-t", "c-t".into())]);
    for (row, request) in rows.iter().zip(&requests) {
        let message = s(&request["messageId"]);
        let sent: Vec<&Got> = outbound
            .iter()
            .filter(|m| m.json["messageId"] == message)
            .collect();
        if let Rejected(_) = row.expect {
            assert!(
                sent.is_empty(),
                "{}: a rejected reply was sent: {sent:?}",
                row.why
            );
            continue;
        }
        assert_eq!(sent.len(), 1, "{}: exactly one message.send", row.why);
        if row.expect == Claims {
            let created: Vec<&Got> = by_type(&crm, "contact.created")
                .into_iter()
                .filter(|c| c.json["contactData"][0]["chatId"] == row.chat)
                .collect();
            assert_eq!(
                created.len(),
                1,
                "{}: one contact.created: {crm:?}",
                row.why
            );
            let contact = &created[0].json;
            assert_eq!(
                contact["responsibleUserId"], row.user,
                "{}: {contact}",
                row.why
            );
            assert_eq!(
                contact["contactData"],
                json!([{ "chatType": "whatsapp", "chatId": row.chat }]),
                "{}",
                row.why
            );
            assert_eq!(
                contact["name"],
                format!("Client {}", row.chat),
                "{}: the client's name from the gateway",
                row.why
            );
            assert_eq!(created[0].routing_key, format!("{acc}.contact.created"));
            let contact_id = s(&contact["contactId"]).to_owned();
            let deals: Vec<&Got> = by_type(&crm, "deal.created")
                .into_iter()
                .filter(|d| d.json["contactIds"] == json!([contact_id]))
                .collect();
            assert_eq!(deals.len(), 1, "{}: one deal.created: {crm:?}", row.why);
            let deal = &deals[0].json;
            assert_eq!(
                (
                    &deal["responsibleUserId"],
                    &deal["pipelineId"],
                    &deal["stageId"]
                ),
                (&json!(row.user), &json!("p"), &json!("s1")),
                "{}: {deal}",
                row.why
            );
            let assigned = got[row.user]
                .iter()
                .find(|n| n["type"] == "chat.assigned" && n["chatId"] == row.chat)
                .unwrap();
            assert_eq!(assigned["contactId"], contact["contactId"], "{assigned}");
            assert_eq!(assigned["dealId"], deal["dealId"], "{assigned}");
            contact_of.insert(row.chat, contact_id);
        }
        assert_send(sent[0], request, &contact_of[row.chat]);
    }
    assert_eq!(outbound.len(), sends, "nothing else was sent: {outbound:?}");
    assert_eq!(
        crm.len(),
        2 * claims,
        "nothing else went to the CRM: {crm:?}"
    );
    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
    app.cleanup().await;
}

// ---------------------------------------------------------------- the claim

const MANAGERS: [&str; 10] = [
    "m00", "m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08", "m09",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn first_reply_claim_has_exactly_one_winner_across_three_workers() {
    let mut app = TestApp::spawn(3).await;
    let crm_queue = app.bind_crm().await;
    let outbound_queue = app.bind_outbound().await;
    let acc = "acc";
    let mut users: Vec<(&str, &str, bool)> =
        MANAGERS.iter().map(|m| (*m, "manager", true)).collect();
    users.extend([("q", "quality_control", false), ("s", "supervisor", false)]);
    setup_account(&app, acc, &users, Some("first_reply")).await;
    let everyone: Vec<&str> = users.iter().map(|u| u.0).collect();

    // 20 new clients.
    let chats: Vec<String> = (0..20).map(|i| format!("race-{i:02}")).collect();
    let first: Vec<Value> = chats.iter().map(|c| inbound(acc, c, "hello")).collect();
    publish_all(&app, &first).await;
    let shown: Vec<NoteKey> = everyone
        .iter()
        .flat_map(|u| chats.iter().map(move |c| key(u, "chat.new", c, "", "")))
        .collect();
    expect_notes(&app, acc, &everyone, &shown).await;

    // Every manager answers every chat at once.
    // (Each chat's answers in a different order, so different managers get a chance.)
    let answers: Vec<Value> = chats
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            MANAGERS
                .iter()
                .cycle()
                .skip(i % MANAGERS.len())
                .take(MANAGERS.len())
                .map(move |m| outbound(acc, c, m, &format!("{m} takes {c}")))
        })
        .collect();
    publish_all(&app, &answers).await;

    let outbound = app.take(&outbound_queue, chats.len(), WAIT).await;
    let crm = app.take(&crm_queue, 2 * chats.len(), WAIT).await;
    assert_eq!(
        outbound.len(),
        chats.len(),
        "exactly one message.send per chat: {outbound:?}"
    );
    assert_eq!(
        crm.len(),
        2 * chats.len(),
        "one contact and one deal per chat: {crm:?}"
    );

    let mut winner_of: BTreeMap<&str, (String, Value)> = BTreeMap::new();
    let mut expected = Vec::new();
    for chat in &chats {
        let sent: Vec<&Got> = outbound
            .iter()
            .filter(|m| m.json["chatId"] == chat.as_str())
            .collect();
        assert_eq!(sent.len(), 1, "{chat}: one message.send");
        let winner = s(&sent[0].json["userId"]).to_owned();
        let request = answers
            .iter()
            .find(|a| a["chatId"] == chat.as_str() && a["userId"] == winner.as_str())
            .unwrap();
        let created: Vec<&Got> = by_type(&crm, "contact.created")
            .into_iter()
            .filter(|c| c.json["contactData"][0]["chatId"] == chat.as_str())
            .collect();
        assert_eq!(created.len(), 1, "{chat}: one contact.created");
        let contact = &created[0].json;
        assert_eq!(
            contact["responsibleUserId"],
            winner.as_str(),
            "{chat}: {contact}"
        );
        let deals: Vec<&Got> = by_type(&crm, "deal.created")
            .into_iter()
            .filter(|d| d.json["contactIds"] == json!([contact["contactId"]]))
            .collect();
        assert_eq!(deals.len(), 1, "{chat}: one deal.created");
        let deal = &deals[0].json;
        assert_eq!(
            (
                &deal["responsibleUserId"],
                &deal["pipelineId"],
                &deal["stageId"]
            ),
            (&json!(winner), &json!("p"), &json!("s1")),
            "{deal}"
        );
        assert_send(sent[0], request, s(&contact["contactId"]));

        expected.push(key(&winner, "chat.assigned", chat, "", ""));
        for observer in ["q", "s"] {
            expected.push(key(
                observer,
                "chat.message",
                chat,
                s(&request["messageId"]),
                "",
            ));
        }
        for loser in MANAGERS.iter().filter(|m| **m != winner) {
            let theirs = answers
                .iter()
                .find(|a| a["chatId"] == chat.as_str() && a["userId"] == *loser)
                .unwrap();
            expected.push(key(
                loser,
                "message.rejected",
                chat,
                s(&theirs["messageId"]),
                "claimed_by_other",
            ));
            expected.push(key(loser, "chat.withdrawn", chat, "", ""));
        }
        winner_of.insert(
            chat,
            (
                winner,
                json!({ "contactId": contact["contactId"], "dealId": deal["dealId"] }),
            ),
        );
    }
    let got = expect_notes(&app, acc, &everyone, &expected).await;
    for (chat, (winner, ids)) in &winner_of {
        let assigned = got[winner]
            .iter()
            .find(|n| n["type"] == "chat.assigned" && n["chatId"] == *chat)
            .unwrap();
        assert_eq!(
            (&assigned["contactId"], &assigned["dealId"]),
            (&ids["contactId"], &ids["dealId"]),
            "{assigned}"
        );
    }
    let wins: BTreeSet<&str> = winner_of.values().map(|(w, _)| w.as_str()).collect();
    eprintln!(
        "{} different winners over {} chats",
        wins.len(),
        chats.len()
    );

    // Later messages of each client reach only the winner, plus QC and supervisors.
    let later: Vec<Value> = chats
        .iter()
        .map(|c| inbound(acc, c, "are you there?"))
        .collect();
    publish_all(&app, &later).await;
    let mut expected = Vec::new();
    for message in &later {
        let chat = s(&message["chatId"]);
        for user in [winner_of[chat].0.as_str(), "q", "s"] {
            expected.push(key(
                user,
                "chat.message",
                chat,
                s(&message["messageId"]),
                "",
            ));
        }
    }
    expect_notes(&app, acc, &everyone, &expected).await;
    assert!(
        app.take(&crm_queue, 0, WAIT).await.is_empty(),
        "a known client's message creates nothing"
    );
    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_supervisors_answer_claims_the_chat_for_him() {
    let mut app = TestApp::spawn(3).await;
    let crm_queue = app.bind_crm().await;
    let outbound_queue = app.bind_outbound().await;
    let acc = "acc";
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("q", "quality_control", false),
        ("s", "supervisor", false),
    ];
    setup_account(&app, acc, &users, Some("first_reply")).await;
    let everyone = ["m1", "m2", "q", "s"];

    app.publish_chat(&inbound(acc, "new", "hello")).await;
    let shown: Vec<NoteKey> = everyone
        .iter()
        .map(|u| key(u, "chat.new", "new", "", ""))
        .collect();
    expect_notes(&app, acc, &everyone, &shown).await;

    let answer = outbound(acc, "new", "s", "supervisor here");
    app.publish_chat(&answer).await;
    let crm = app.take(&crm_queue, 2, WAIT).await;
    let created = by_type(&crm, "contact.created");
    let deals = by_type(&crm, "deal.created");
    assert_eq!(
        (created.len(), deals.len(), crm.len()),
        (1, 1, 2),
        "{crm:?}"
    );
    let (contact, deal) = (&created[0].json, &deals[0].json);
    assert_eq!(contact["responsibleUserId"], "s", "{contact}");
    assert_eq!(
        (&deal["responsibleUserId"], &deal["contactIds"]),
        (&json!("s"), &json!([contact["contactId"]])),
        "{deal}"
    );
    let sent = app.take(&outbound_queue, 1, WAIT).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_send(&sent[0], &answer, s(&contact["contactId"]));
    let expected = [
        key("s", "chat.assigned", "new", "", ""),
        key("m1", "chat.withdrawn", "new", "", ""),
        key("m2", "chat.withdrawn", "new", "", ""),
        key("q", "chat.message", "new", s(&answer["messageId"]), ""),
    ];
    let got = gather(
        &app,
        acc,
        &everyone.map(|u| (u.to_string(), expected.iter().filter(|k| k.0 == u).count())),
    )
    .await;
    // The supervisor may or may not get his own reply back as chat.message.
    let actual: Vec<NoteKey> = got
        .iter()
        .flat_map(|(u, l)| {
            l.iter()
                .filter(move |n| !(u == "s" && n["type"] == "chat.message"))
                .map(move |n| note_key(acc, u, n))
        })
        .collect();
    assert_same(actual, expected.to_vec());

    // A manager's late answer loses; the client's next message goes to the supervisor (once) and QC.
    let late = outbound(acc, "new", "m1", "me too");
    app.publish_chat(&late).await;
    expect_notes(
        &app,
        acc,
        &everyone,
        &[key(
            "m1",
            "message.rejected",
            "new",
            s(&late["messageId"]),
            "claimed_by_other",
        )],
    )
    .await;
    let next = inbound(acc, "new", "thanks");
    app.publish_chat(&next).await;
    let expected = [
        key("s", "chat.message", "new", s(&next["messageId"]), ""),
        key("q", "chat.message", "new", s(&next["messageId"]), ""),
    ];
    expect_notes(&app, acc, &everyone, &expected).await;
    assert!(app.take(&outbound_queue, 0, WAIT).await.is_empty());
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_settings_the_claim_creates_the_contact_but_no_deal() {
    let mut app = TestApp::spawn(3).await;
    let crm_queue = app.bind_crm().await;
    let outbound_queue = app.bind_outbound().await;
    let acc = "acc";
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("q", "quality_control", false),
    ];
    setup_account(&app, acc, &users, None).await;
    let everyone = ["m1", "m2", "q"];

    app.publish_chat(&inbound(acc, "new", "hello")).await;
    let shown: Vec<NoteKey> = everyone
        .iter()
        .map(|u| key(u, "chat.new", "new", "", ""))
        .collect();
    expect_notes(&app, acc, &everyone, &shown).await;

    // Both managers answer at once: one wins.
    let answers = [
        outbound(acc, "new", "m1", "hi from m1"),
        outbound(acc, "new", "m2", "hi from m2"),
    ];
    publish_all(&app, &answers).await;
    let sent = app.take(&outbound_queue, 1, WAIT).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let winner = s(&sent[0].json["userId"]).to_owned();
    let loser = if winner == "m1" { "m2" } else { "m1" };
    let (won, lost) = if winner == "m1" {
        (&answers[0], &answers[1])
    } else {
        (&answers[1], &answers[0])
    };

    let crm = app.take(&crm_queue, 1, WAIT).await;
    assert_eq!(
        kinds(&crm.iter().map(|g| g.json.clone()).collect::<Vec<_>>()),
        ["contact.created"],
        "no deal without settings: {crm:?}"
    );
    let contact = &crm[0].json;
    assert_eq!(contact["responsibleUserId"], winner.as_str(), "{contact}");
    assert_send(&sent[0], won, s(&contact["contactId"]));
    let expected = [
        key(&winner, "chat.assigned", "new", "", ""),
        key(loser, "chat.withdrawn", "new", "", ""),
        key(
            loser,
            "message.rejected",
            "new",
            s(&lost["messageId"]),
            "claimed_by_other",
        ),
        key("q", "chat.message", "new", s(&won["messageId"]), ""),
    ];
    let got = expect_notes(&app, acc, &everyone, &expected).await;
    let assigned = got[&winner]
        .iter()
        .find(|n| n["type"] == "chat.assigned")
        .unwrap();
    assert_eq!(assigned["contactId"], contact["contactId"], "{assigned}");
    assert!(
        assigned.get("dealId").is_none_or(Value::is_null),
        "no deal: {assigned}"
    );
    app.cleanup().await;
}

// ---------------------------------------------------------------- exactly once

/// The distinct bodies among `got`.
fn distinct(got: &[Got]) -> BTreeSet<Vec<u8>> {
    got.iter().map(|g| g.body.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_republished_reply_claims_sends_and_notifies_once() {
    let mut app = TestApp::spawn(3).await;
    let crm_queue = app.bind_crm().await;
    let outbound_queue = app.bind_outbound().await;
    let acc = "acc";
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("q", "quality_control", false),
    ];
    setup_account(&app, acc, &users, Some("first_reply")).await;
    let everyone = ["m1", "m2", "q"];
    app.publish_chat(&inbound(acc, "new", "hello")).await;
    let shown: Vec<NoteKey> = everyone
        .iter()
        .map(|u| key(u, "chat.new", "new", "", ""))
        .collect();
    expect_notes(&app, acc, &everyone, &shown).await;

    // The claiming reply, three times at once (same eventId), then twice more once it is applied.
    let claim = outbound(acc, "new", "m1", "hello, I am m1");
    publish_all(&app, &[claim.clone(), claim.clone(), claim.clone()]).await;
    let mut sent = take_until(&app, &outbound_queue, |got| !got.is_empty()).await;
    publish_all(&app, &[claim.clone(), claim.clone()]).await;
    // A losing reply, twice; a later reply of the winner, three times at once.
    let late = outbound(acc, "new", "m2", "me too");
    publish_all(&app, &[late.clone(), late.clone()]).await;
    let follow = outbound(acc, "new", "m1", "how can I help?");
    publish_all(&app, &[follow.clone(), follow.clone(), follow.clone()]).await;

    let has = |got: &[Got], kind: &str, message: Option<&Value>| {
        got.iter()
            .any(|g| g.json["type"] == kind && message.is_none_or(|m| g.json["messageId"] == *m))
    };
    sent.extend(
        take_until(&app, &outbound_queue, |got| {
            has(got, "message.send", Some(&follow["messageId"]))
        })
        .await,
    );
    let crm = take_until(&app, &crm_queue, |got| {
        has(got, "contact.created", None) && has(got, "deal.created", None)
    })
    .await;
    let m1 = take_until(&app, &app.user_queue(acc, "m1"), |got| {
        has(got, "chat.assigned", None)
    })
    .await;
    let m2 = take_until(&app, &app.user_queue(acc, "m2"), |got| {
        has(got, "chat.withdrawn", None) && has(got, "message.rejected", Some(&late["messageId"]))
    })
    .await;
    let q = take_until(&app, &app.user_queue(acc, "q"), |got| {
        has(got, "chat.message", Some(&claim["messageId"]))
            && has(got, "chat.message", Some(&follow["messageId"]))
    })
    .await;
    let queues = BTreeMap::from([("m1", m1), ("m2", m2), ("q", q)]);

    // Every copy of one output is byte-identical: distinct bodies = distinct causes.
    let kinds_of = |got: &[Got]| -> Vec<String> {
        let mut k: Vec<String> = distinct(got)
            .iter()
            .map(|b| {
                serde_json::from_slice::<Value>(b).unwrap()["type"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect();
        k.sort();
        k
    };
    assert_eq!(
        kinds_of(&crm),
        ["contact.created", "deal.created"],
        "one claim: {crm:?}"
    );
    let contact_id = by_type(&crm, "contact.created")[0].json["contactId"].clone();
    assert_eq!(
        distinct(&sent).len(),
        2,
        "one message.send per reply: {sent:?}"
    );
    for request in [&claim, &follow] {
        let sends: Vec<&Got> = sent
            .iter()
            .filter(|g| g.json["messageId"] == request["messageId"])
            .collect();
        assert!(!sends.is_empty(), "{request} was sent");
        assert_send(sends[0], request, s(&contact_id));
    }
    assert_eq!(
        kinds_of(&queues["m1"]),
        ["chat.assigned"],
        "{:?}",
        queues["m1"]
    );
    assert_eq!(
        kinds_of(&queues["m2"]),
        ["chat.withdrawn", "message.rejected"],
        "{:?}",
        queues["m2"]
    );
    assert_eq!(
        kinds_of(&queues["q"]),
        ["chat.message", "chat.message"],
        "{:?}",
        queues["q"]
    );
    let rejected = queues["m2"]
        .iter()
        .find(|g| g.json["type"] == "message.rejected")
        .unwrap();
    assert_eq!(
        (&rejected.json["messageId"], &rejected.json["reason"]),
        (&late["messageId"], &json!("claimed_by_other"))
    );
    let mut seen_ids = BTreeSet::new();
    for (user, got) in &queues {
        for body in distinct(got) {
            let note: Value = serde_json::from_slice(&body).unwrap();
            assert!(
                seen_ids.insert(note["notificationId"].to_string()),
                "{user}: a notificationId reused for another body: {note}"
            );
            assert_eq!(note["contactId"], contact_id, "{user}: {note}");
        }
    }
    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
    app.cleanup().await;
}

// ---------------------------------------------------------------- removal

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_manager_loses_his_replies_and_his_clients() {
    let mut app = TestApp::spawn(2).await;
    let crm_queue = app.bind_crm().await;
    let outbound_queue = app.bind_outbound().await;
    let acc = "acc";
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("q", "quality_control", false),
    ];
    setup_account(&app, acc, &users, Some("round_robin")).await;
    let everyone = ["m1", "m2", "q"];

    let hello = inbound(acc, "client", "hello");
    app.publish_chat(&hello).await;
    let crm = app.take(&crm_queue, 2, WAIT).await;
    let created = by_type(&crm, "contact.created");
    assert_eq!(created.len(), 1, "{crm:?}");
    let contact_id = created[0].json["contactId"].clone();
    let owner = s(&created[0].json["responsibleUserId"]).to_owned();
    let other = if owner == "m1" { "m2" } else { "m1" };
    expect_notes(
        &app,
        acc,
        &everyone,
        &[
            key(&owner, "chat.new", "client", "", ""),
            key("q", "chat.new", "client", "", ""),
        ],
    )
    .await;

    app.publish_account(&event("users.removed", acc, json!({ "userIds": [owner] })))
        .await;
    app.wait_config(acc, 5).await;

    // His reply: no_access, not sent, nobody told.
    let his = outbound(acc, "client", &owner, "still here");
    app.publish_chat(&his).await;
    expect_notes(
        &app,
        acc,
        &everyone,
        &[key(
            &owner,
            "message.rejected",
            "client",
            s(&his["messageId"]),
            "no_access",
        )],
    )
    .await;

    // His client's next message goes to the next manager in turn.
    let again = inbound(acc, "client", "hello?");
    app.publish_chat(&again).await;
    let crm = app.take(&crm_queue, 1, WAIT).await;
    let changed = by_type(&crm, "contact.responsibleChanged");
    assert_eq!(changed.len(), 1, "{crm:?}");
    let change = &changed[0].json;
    assert_eq!(
        (
            &change["contactId"],
            &change["responsibleUserId"],
            &change["previousUserId"]
        ),
        (&contact_id, &json!(other), &json!(owner)),
        "{change}"
    );
    assert_eq!(
        changed[0].routing_key,
        format!("{acc}.contact.responsibleChanged")
    );
    assert!(
        by_type(&crm, "contact.created").is_empty(),
        "no second contact: {crm:?}"
    );
    let got = expect_notes(
        &app,
        acc,
        &everyone,
        &[
            key(other, "chat.new", "client", "", ""),
            key("q", "chat.message", "client", s(&again["messageId"]), ""),
        ],
    )
    .await;
    assert_eq!(got[other][0]["contactId"], contact_id, "{:?}", got[other]);

    // The new responsible may answer.
    let answer = outbound(acc, "client", other, "I take over");
    app.publish_chat(&answer).await;
    let sent = app.take(&outbound_queue, 1, WAIT).await;
    assert_eq!(
        sent.len(),
        1,
        "only the new responsible's reply was sent: {sent:?}"
    );
    assert_send(&sent[0], &answer, s(&contact_id));
    expect_notes(
        &app,
        acc,
        &everyone,
        &[key(
            "q",
            "chat.message",
            "client",
            s(&answer["messageId"]),
            "",
        )],
    )
    .await;
    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
    app.cleanup().await;
}

// ------------------------------------------------------ a set-up race (contract gap)

/// "A per-user queue is declared (durable) as soon as the user becomes known, so
/// nothing sent to him is lost before his client connects." A client who writes
/// right after `users.upserted` was applied must reach every eligible manager.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_users_queue_exists_before_anything_is_routed_to_him() {
    let app = TestApp::spawn(1).await;
    let acc = "acc";
    app.publish_account(&event(
        "channels.upserted",
        acc,
        json!({ "channels": [{ "channelId": "wa", "chatType": "whatsapp", "name": "Support" }] }),
    ))
    .await;
    app.wait_config(acc, 1).await;
    let managers: Vec<String> = (0..40).map(|i| format!("m{i:02}")).collect();
    let users: Vec<Value> = managers
        .iter()
        .map(|m| json!({ "userId": m, "name": m, "access": [{ "channelId": "wa", "role": "manager", "receivesNewClients": true }] }))
        .collect();
    app.publish_account(&event("users.upserted", acc, json!({ "users": users })))
        .await;
    app.wait_config(acc, 2).await;
    // The users are known now (no settings: every eligible manager is shown the new chat).
    app.publish_chat(&inbound(acc, "new", "hello")).await;
    let everyone: Vec<&str> = managers.iter().map(String::as_str).collect();
    let shown: Vec<NoteKey> = everyone
        .iter()
        .map(|m| key(m, "chat.new", "new", "", ""))
        .collect();
    expect_notes(&app, acc, &everyone, &shown).await;
    app.cleanup().await;
}
