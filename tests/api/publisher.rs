//! The publisher's confirms under many threads: each message gets the broker's
//! answer to that message, while many tasks on several threads publish on the
//! publisher's channel and the broker refuses some of what they send.
//!
//! lapin numbers a publish for its confirm, then queues its frames; two
//! threads could be numbered in one order and reach the broker in the other,
//! and the broker's answer for one message then went to the other: a refused
//! message counted as confirmed and was lost (`amqp::publisher`, `Numbered`).

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::json;
use switchboard::amqp::Publisher;
use switchboard::ids::Id;
use switchboard::names;
use switchboard::output::{Output, Outputs, SuitcaseError, SuitcaseReply};

use crate::helpers::*;

const TASKS: usize = 32;
const EACH: usize = 60;

/// An approved reply to the gateway of `channel` (of account `acc`), its ids `id`.
fn reply(channel: &str, id: &str) -> Outputs {
    let send = json!({
        "type": "message.send", "eventId": id, "accountId": "acc", "messageId": id,
        "channelId": channel, "chatType": "telegram", "chatId": "c1", "userId": "m1",
        "contactId": "k1", "text": id, "occurredAt": TS,
    });
    Outputs(vec![Output::Send(serde_json::from_value(send).unwrap())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_message_is_never_confirmed_when_many_threads_publish() {
    let mut app = TestApp::spawn_with(0, |_| {}).await;
    let account = Id::parse("acc").unwrap();
    let exchange = app.names.outbound();
    let declare = app.channel.exchange_declare(
        exchange.as_str().into(),
        lapin::ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    );
    timed("exchange.declare", declare).await.unwrap();
    // The gateway of channel `open` takes everything. A requester's reply
    // queue of at most 0 messages that rejects publishes refuses every
    // suitcase reply: the publisher counts each as dropped and goes on (no
    // new channel, so nothing else on the channel fails).
    let open = app
        .bind(
            &exchange,
            &names::outbound_key(&account, &Id::parse("open").unwrap()),
        )
        .await;
    let full = format!("{}.full", app.prefix);
    app.track_queue(&full);
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let declare = app
        .channel
        .queue_declare(full.as_str().into(), options, arguments);
    timed("queue.declare", declare).await.unwrap();

    let verdict = within(Duration::from_secs(120), async {
        let connection = timed(
            "connection.open",
            lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default()),
        )
        .await
        .unwrap();
        let connection = Arc::new(connection);
        let publisher = timed("publisher", Publisher::open(&connection, app.names.clone()))
            .await
            .unwrap();
        // Each task sends, at once, a reply the broker refuses and a message
        // to the gateway it takes. A nack that went to the gateway's message
        // fails it; an ack that went to the reply leaves it uncounted.
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (publisher, account, full) = (publisher.clone(), account.clone(), full.clone());
                tokio::spawn(async move {
                    let mut failed = Vec::new();
                    for i in 0..EACH {
                        let id = format!("t{t}-{i}");
                        let send = |outputs| {
                            let (publisher, account) = (&publisher, &account);
                            async move {
                                let sent = timed("basic.publish", publisher.send(account, outputs));
                                timed("the confirm", sent.await.unwrap().confirmed()).await
                            }
                        };
                        let (refused, taken) = (suitcase_reply(&full, &id), reply("open", &id));
                        let (refused, taken) = tokio::join!(send(&refused), send(&taken));
                        if let Err(e) = refused {
                            failed.push(format!("{id} (the reply): {e}"));
                        }
                        if let Err(e) = taken {
                            failed.push(format!("{id}: {e}"));
                        }
                    }
                    failed
                })
            })
            .collect();
        let mut failed = Vec::new();
        for task in tasks {
            failed.extend(task.await.unwrap());
        }
        let dropped = publisher.dropped_replies();
        publisher.close().await;
        let _ = timed("connection.close", connection.close(200, "done".into())).await;
        (failed, dropped)
    })
    .await;
    let got = app.take(&open, TASKS * EACH, Duration::from_secs(10)).await;
    app.cleanup().await;
    let (failed, dropped) = verdict;
    assert!(
        failed.is_empty(),
        "messages the broker took, failed: {failed:?}"
    );
    assert_eq!(
        dropped,
        (TASKS * EACH) as u64,
        "every refused reply counted as refused, not confirmed"
    );
    assert_eq!(got.len(), TASKS * EACH, "every message in its queue, once");
}

/// A suitcase reply to `queue`, its correlation id `id`.
fn suitcase_reply(queue: &str, id: &str) -> Outputs {
    Outputs(vec![Output::Reply {
        reply_to: queue.to_owned(),
        correlation_id: id.to_owned(),
        reply: SuitcaseReply::Error {
            error: SuitcaseError::NoAccess,
        },
    }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_that_comes_back_never_fails_another_message() {
    let mut app = TestApp::spawn_with(0, |_| {}).await;
    let account = Id::parse("acc").unwrap();
    let exchange = app.names.outbound();
    let declare = app.channel.exchange_declare(
        exchange.as_str().into(),
        lapin::ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    );
    timed("exchange.declare", declare).await.unwrap();
    let open = app
        .bind(
            &exchange,
            &names::outbound_key(&account, &Id::parse("open").unwrap()),
        )
        .await;
    let gone = format!("{}.no-such-queue", app.prefix);

    let verdict = within(Duration::from_secs(120), async {
        let connection = timed(
            "connection.open",
            lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default()),
        )
        .await
        .unwrap();
        let connection = Arc::new(connection);
        let publisher = timed("publisher", Publisher::open(&connection, app.names.clone()))
            .await
            .unwrap();
        // Each task sends, at once, a reply no queue takes (the broker
        // returns it, then confirms it) and a message to the gateway, once.
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (publisher, account, gone) = (publisher.clone(), account.clone(), gone.clone());
                tokio::spawn(async move {
                    let mut failed = Vec::new();
                    for i in 0..EACH {
                        let id = format!("t{t}-{i}");
                        let (back, on) = (suitcase_reply(&gone, &id), reply("open", &id));
                        let send = |outputs| {
                            let (publisher, account) = (&publisher, &account);
                            async move {
                                let sent = timed("basic.publish", publisher.send(account, outputs));
                                timed("the confirm", sent.await.unwrap().confirmed()).await
                            }
                        };
                        let (back, on) = tokio::join!(send(&back), send(&on));
                        // Neither fails: a returned reply is done, and the
                        // return is no answer to the other message.
                        if let Err(e) = back {
                            failed.push(format!("{id} (the reply): {e}"));
                        }
                        if let Err(e) = on {
                            failed.push(format!("{id}: {e}"));
                        }
                    }
                    failed
                })
            })
            .collect();
        let mut failed = Vec::new();
        for task in tasks {
            failed.extend(task.await.unwrap());
        }
        let dropped = publisher.dropped_replies();
        publisher.close().await;
        let _ = timed("connection.close", connection.close(200, "done".into())).await;
        (failed, dropped)
    })
    .await;
    let got = app.take(&open, TASKS * EACH, Duration::from_secs(10)).await;
    app.cleanup().await;
    let (failed, dropped) = verdict;
    assert!(failed.is_empty(), "messages failed: {failed:?}");
    assert_eq!(
        dropped,
        (TASKS * EACH) as u64,
        "every reply counted as dropped"
    );
    assert_eq!(got.len(), TASKS * EACH, "every message in its queue, once");
}
