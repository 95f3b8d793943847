//! Asking for a suitcase as a user's client does: `suitcase.requested` with
//! `reply_to` (a server-named queue of the test's own) and a fresh
//! `correlation_id`, the answer taken from that queue.

use std::time::{Duration, Instant};

use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};

use super::{Got, TestApp, account_key, eid, event, timed};

const WAIT: Duration = Duration::from_secs(20);

/// A server-named (`amq.gen-…`) exclusive queue with `args`, gone with the
/// test's connection.
pub async fn reply_queue(app: &TestApp, args: FieldTable) -> String {
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    timed(
        "queue.declare (server-named)",
        app.channel.queue_declare("".into(), options, args),
    )
    .await
    .unwrap()
    .name()
    .to_string()
}

/// Asks for `user`'s suitcase of the chat and returns the reply, checking
/// that it carries the request's `correlation_id`.
pub async fn ask(
    app: &TestApp,
    reply_to: &str,
    account: &str,
    user: &str,
    chat: (&str, &str),
) -> Value {
    let (chat_type, chat_id) = chat;
    let body = event(
        "suitcase.requested",
        account,
        json!({ "userId": user, "chatType": chat_type, "chatId": chat_id }),
    );
    let correlation_id = eid();
    let props = BasicProperties::default()
        .with_reply_to(reply_to.into())
        .with_correlation_id(correlation_id.as_str().into());
    app.publish_raw(&account_key(account), body.to_string().as_bytes(), props)
        .await;
    let deadline = Instant::now() + WAIT;
    loop {
        let get = app
            .channel
            .basic_get(reply_to.into(), BasicGetOptions { no_ack: true });
        if let Some(message) = timed("basic.get", get).await.unwrap() {
            let got = Got::from(message.delivery);
            // A reply to an earlier request (a timed-out one) is not ours; anything else must match.
            let correlation = got.correlation_id();
            assert!(
                correlation.is_some(),
                "reply without correlation_id: {:?}",
                String::from_utf8_lossy(&got.body)
            );
            if correlation.as_deref() == Some(correlation_id.as_str()) {
                return serde_json::from_slice(&got.body).expect("the reply is JSON");
            }
            continue;
        }
        assert!(
            Instant::now() < deadline,
            "no suitcase reply for {user} on {chat_type}/{chat_id}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks until `done` holds for the reply (account events such as
/// `deal.upserted` travel apart from the chat's events) or time is up, and
/// returns the last reply.
pub async fn ask_until(
    app: &TestApp,
    reply_to: &str,
    account: &str,
    user: &str,
    chat: (&str, &str),
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = ask(app, reply_to, account, user, chat).await;
        if done(&reply) || Instant::now() >= deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
