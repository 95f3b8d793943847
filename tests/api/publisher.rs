//! The publisher's confirms under many threads: each message gets the broker's
//! answer to that message, while many tasks on several threads publish on the
//! publisher's channel and the broker refuses some of what they send.
//!
//! lapin numbers a publish for its confirm, then queues its frames; two
//! threads could be numbered in one order and reach the broker in the other,
//! and the broker's answer for one message then went to the other: a refused
//! message counted as confirmed and was lost (`amqp::publisher`, `Numbered`).
//!
//! A refused notification gets the publishing channel renewed; the messages
//! already on the old channel keep their own answers (it drains before it
//! closes), so a queue that keeps refusing fails its own messages only.

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

/// Declares the gateways' exchange `P.outbound`; its name.
async fn outbound(app: &TestApp) -> String {
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
    exchange
}

/// Declares `<prefix>.full`, a queue of at most 0 messages that rejects
/// publishes: the broker refuses (nacks) every message to it.
async fn refusing_queue(app: &mut TestApp) -> String {
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
    full
}

/// What came of [`beside_messages`].
struct Verdict {
    /// Sends of the gateway's messages that failed, each named.
    failed: Vec<String>,
    /// Sends of the other batches that failed.
    others_failed: usize,
    /// The publisher's count of dropped replies.
    dropped: u64,
    /// Messages the gateway's queue holds.
    got: usize,
}

/// Through one publisher, `TASKS` tasks on the test's threads each send,
/// `EACH` times and at once, `other(id)` and a message to the gateway of
/// channel `open`, whose queue takes everything.
async fn beside_messages(
    app: &mut TestApp,
    other: impl Fn(&str) -> Outputs + Clone + Send + 'static,
) -> Verdict {
    let account = Id::parse("acc").unwrap();
    let exchange = outbound(app).await;
    let open = app
        .bind(
            &exchange,
            &names::outbound_key(&account, &Id::parse("open").unwrap()),
        )
        .await;

    let (failed, others_failed, dropped) = within(Duration::from_secs(120), async {
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
                let other = other.clone();
                tokio::spawn(async move {
                    let (mut failed, mut others_failed) = (Vec::new(), 0);
                    for i in 0..EACH {
                        let id = format!("t{t}-{i}");
                        let send = |outputs| {
                            let (publisher, account) = (&publisher, &account);
                            async move {
                                let sent = timed("basic.publish", publisher.send(account, outputs));
                                timed("the confirm", sent.await.unwrap().confirmed()).await
                            }
                        };
                        let (beside, to_gateway) = (other(&id), reply("open", &id));
                        let (answered, approved) = tokio::join!(send(&beside), send(&to_gateway));
                        others_failed += usize::from(answered.is_err());
                        if let Err(e) = approved {
                            failed.push(format!("{id}: {e}"));
                        }
                    }
                    (failed, others_failed)
                })
            })
            .collect();
        let (mut failed, mut others_failed) = (Vec::new(), 0);
        for task in tasks {
            let (f, o) = task.await.unwrap();
            failed.extend(f);
            others_failed += o;
        }
        let dropped = publisher.dropped_replies();
        publisher.close().await;
        let _ = timed("connection.close", connection.close(200, "done".into())).await;
        (failed, others_failed, dropped)
    })
    .await;
    let got = app.take(&open, TASKS * EACH, Duration::from_secs(10)).await;
    Verdict {
        failed,
        others_failed,
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
    let full = refusing_queue(&mut app).await;
    let verdict = beside_messages(&mut app, move |id| suitcase_reply(&full, id)).await;
    app.cleanup().await;
    assert!(
        verdict.failed.is_empty(),
        "messages the broker took, failed: {:?}",
        verdict.failed
    );
    assert_eq!(verdict.others_failed, 0, "a refused reply is done");
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
    let verdict = beside_messages(&mut app, move |id| suitcase_reply(&gone, id)).await;
    app.cleanup().await;
    assert!(
        verdict.failed.is_empty(),
        "messages failed: {:?}",
        verdict.failed
    );
    assert_eq!(verdict.others_failed, 0, "a returned reply is done");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_that_keeps_refusing_fails_only_its_own_messages() {
    let mut app = TestApp::spawn_with(0, |_| {}).await;
    // The gateway of channel `full` has a queue of at most 0 messages that
    // rejects publishes: every message to it is refused (nacked), and each
    // refusal has the publishing channel renewed. The messages to `open`, on
    // the same channel at the same time, must each get their own answer: the
    // old channel drains before it closes. Closing it at once failed them.
    let account = Id::parse("acc").unwrap();
    let exchange = outbound(&app).await;
    let full = refusing_queue(&mut app).await;
    let key = names::outbound_key(&account, &Id::parse("full").unwrap());
    let bind = app.channel.queue_bind(
        full.as_str().into(),
        exchange.as_str().into(),
        key.as_str().into(),
        Default::default(),
        FieldTable::default(),
    );
    timed("queue.bind", bind).await.unwrap();
    let verdict = beside_messages(&mut app, |id| reply("full", id)).await;
    app.cleanup().await;
    assert_eq!(
        verdict.others_failed,
        TASKS * EACH,
        "every message to the full queue refused"
    );
    assert!(
        verdict.failed.is_empty(),
        "{} messages the broker took failed, e.g. {:?}",
        verdict.failed.len(),
        verdict.failed.first()
    );
    assert_eq!(
        verdict.got,
        TASKS * EACH,
        "every message in its queue, once"
    );
}
