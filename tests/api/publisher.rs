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

/// What came of [`replies_beside_messages`].
struct Verdict {
    /// Sends that failed, each named.
    failed: Vec<String>,
    /// The publisher's count of dropped replies.
    dropped: u64,
    /// Messages the gateway's queue holds.
    got: usize,
}

/// Through one publisher, `TASKS` tasks on the test's threads each send,
/// `EACH` times and at once, a suitcase reply to `reply_to` and a message to
/// the gateway of channel `open`, whose queue takes everything.
async fn replies_beside_messages(app: &mut TestApp, reply_to: &str) -> Verdict {
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

    let (failed, dropped) = within(Duration::from_secs(120), async {
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
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (publisher, account) = (publisher.clone(), account.clone());
                let reply_to = reply_to.to_owned();
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
                        let to_requester = suitcase_reply(&reply_to, &id);
                        let to_gateway = reply("open", &id);
                        let (answered, approved) =
                            tokio::join!(send(&to_requester), send(&to_gateway));
                        if let Err(e) = answered {
                            failed.push(format!("{id} (the reply): {e}"));
                        }
                        if let Err(e) = approved {
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
    Verdict {
        failed,
        dropped,
        got: got.len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_message_is_never_confirmed_when_many_threads_publish() {
    let mut app = TestApp::spawn_with(0, |_| {}).await;
    // A requester's reply queue of at most 0 messages that rejects publishes
    // refuses every suitcase reply: the publisher counts each as dropped and
    // goes on (no new channel, so nothing else on the channel fails). A nack
    // that went to the gateway's message fails it; an ack that went to the
    // reply leaves it uncounted.
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
    let verdict = replies_beside_messages(&mut app, &full).await;
    app.cleanup().await;
    assert!(
        verdict.failed.is_empty(),
        "messages the broker took, failed: {:?}",
        verdict.failed
    );
    assert_eq!(
        verdict.dropped,
        (TASKS * EACH) as u64,
        "every refused reply counted as refused, not confirmed"
    );
    assert_eq!(
        verdict.got,
        TASKS * EACH,
        "every message in its queue, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_that_comes_back_never_fails_another_message() {
    let mut app = TestApp::spawn_with(0, |_| {}).await;
    // No queue takes these replies: the broker returns each, then confirms
    // it. Neither send fails: a returned reply is done, and the return is no
    // answer to the other message.
    let gone = format!("{}.no-such-queue", app.prefix);
    let verdict = replies_beside_messages(&mut app, &gone).await;
    app.cleanup().await;
    assert!(
        verdict.failed.is_empty(),
        "messages failed: {:?}",
        verdict.failed
    );
    assert_eq!(
        verdict.dropped,
        (TASKS * EACH) as u64,
        "every reply counted as dropped"
    );
    assert_eq!(
        verdict.got,
        TASKS * EACH,
        "every message in its queue, once"
    );
}
