//! Where a suitcase reply may go. `reply_to` must be the requester's own
//! queue: a server-named (`amq.gen-`) queue or direct reply-to. Another name,
//! such as another user's notification queue, is refused (`P.dead`, `invalid`)
//! and nothing arrives there. A reply the broker refuses (a full queue that
//! rejects publishes) or cannot route (the queue is gone) is dropped: the event
//! is acked, its lane goes on, and later events of the chat and of other
//! accounts are served. (Before, the reply went into the other user's queue,
//! and a refused reply was retried forever, blocking its lane.)

use std::time::Duration;

use crate::helpers::*;
use lapin::BasicProperties;
use lapin::options::BasicGetOptions;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn request(user: &str, chat_id: &str) -> Value {
    event(
        "suitcase.requested",
        "acc",
        json!({ "userId": user, "chatType": "whatsapp", "chatId": chat_id }),
    )
}

async fn ask(app: &TestApp, body: &Value, reply_to: &str, correlation_id: &str) {
    let props = BasicProperties::default()
        .with_reply_to(ShortString::from(reply_to))
        .with_correlation_id(ShortString::from(correlation_id));
    let key = account_key(body["accountId"].as_str().unwrap());
    app.publish_raw(&key, body.to_string().as_bytes(), props)
        .await;
}

/// The account: managers m1 and m2 under round robin; client c1 went to m1.
async fn settled_chat(app: &TestApp) {
    let managers = [("m1", "manager", true), ("m2", "manager", true)];
    setup_account(app, "acc", &managers, Some("round_robin")).await;
    setup_account(
        app,
        "other",
        &[("o1", "manager", true)],
        Some("round_robin"),
    )
    .await;
    app.publish_event(&inbound("acc", "c1", "hello")).await;
    let m1 = app.notes("acc", "m1", 1).await;
    assert_eq!(kinds(&m1), ["chat.new"], "{m1:?}");
}

/// Another account is still served.
async fn other_account_served(app: &TestApp, chat_id: &str) {
    app.publish_event(&inbound("other", chat_id, "hi")).await;
    let notes = app.notes("other", "o1", 1).await;
    assert_eq!(kinds(&notes), ["chat.new"], "{notes:?}");
    assert_eq!(notes[0]["chatId"], chat_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_another_users_queue_is_refused() {
    let app = TestApp::spawn(1).await;
    within(Duration::from_secs(120), another_users_queue(&app)).await;
    app.cleanup().await;
}

async fn another_users_queue(app: &TestApp) {
    settled_chat(app).await;
    assert!(app.notes("acc", "m2", 0).await.is_empty());
    let victim = app.user_queue("acc", "m2");
    let body = request("m1", "c1");
    ask(app, &body, &victim, "corr-steal").await;

    let dead = app.dead(1).await;
    assert_eq!(dead.len(), 1, "the request is dead-lettered");
    assert_eq!(dead[0].json, body);
    let reason = dead[0].header("x-switchboard-error").unwrap();
    assert!(
        reason.starts_with("invalid: ") && reason.contains("reply_to"),
        "{reason}"
    );
    let stolen = app.notes("acc", "m2", 0).await;
    assert!(
        stolen.is_empty(),
        "nothing arrived in m2's queue: {stolen:?}"
    );
    // The same request with the requester's own queue is answered.
    let own = reply_queue(app, FieldTable::default()).await;
    ask(app, &request("m1", "c1"), &own, "corr-own").await;
    let answers = app.take(&own, 1, WAIT).await;
    assert_eq!(answers.len(), 1, "answered on the requester's own queue");
    assert!(
        answers[0].json.get("contactId").is_some(),
        "{:?}",
        answers[0].json
    );
    other_account_served(app, "o-c1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_the_broker_refuses_or_cannot_route_is_dropped() {
    let app = TestApp::spawn(1).await;
    within(Duration::from_secs(120), refused_replies(&app)).await;
    app.cleanup().await;
}

async fn refused_replies(app: &TestApp) {
    settled_chat(app).await;
    let mut full = FieldTable::default();
    full.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
    full.insert(
        "x-overflow".into(),
        AMQPValue::LongString(LongString::from("reject-publish")),
    );
    let rejecting = reply_queue(app, full).await;
    let own = reply_queue(app, FieldTable::default()).await;

    // Refused (nacked) by the full queue, then unroutable (no such queue):
    // both dropped. Each is followed by a request of the same chat, which
    // shares its lane: answered only if the lane went on.
    for (n, reply_to) in [rejecting.clone(), "amq.gen-no-such-queue".to_owned()]
        .iter()
        .enumerate()
    {
        ask(
            app,
            &request("m1", "c1"),
            reply_to,
            &format!("corr-lost-{n}"),
        )
        .await;
        let corr = format!("corr-next-{n}");
        ask(app, &request("m1", "c1"), &own, &corr).await;
        let answers = app.take(&own, 1, WAIT).await;
        assert_eq!(
            answers.len(),
            1,
            "case {n}: the next request of the chat is answered"
        );
        assert_eq!(answers[0].correlation_id(), Some(corr));
    }
    let get = app
        .channel
        .basic_get(rejecting.as_str().into(), BasicGetOptions { no_ack: true });
    let kept = timed("basic.get", get).await.unwrap();
    assert!(kept.is_none(), "the full queue took nothing");
    assert!(
        app.dead(0).await.is_empty(),
        "a dropped reply is not a dead letter"
    );
    other_account_served(app, "o-c2").await;
    // And the chat itself goes on.
    app.publish_event(&inbound("acc", "c1", "again")).await;
    let m1 = app.notes("acc", "m1", 1).await;
    assert_eq!(kinds(&m1), ["chat.message"], "{m1:?}");
}
