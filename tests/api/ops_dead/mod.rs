//! `switchboard dead list|show|replay` on dead letters a real worker made:
//! reading takes none away, a replay republishes each as it came, and a replay
//! the broker refuses or a connection cut mid-way loses none.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use crate::helpers::ops::{amqp, depth, send, target, wait_depth};
use crate::helpers::proxy::Proxy;
use crate::helpers::*;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, ExchangeKind};
use serde_json::json;
use switchboard::ops::dead::{self, Filter};
use switchboard::ops::{self, dead_text, replay};

mod replays;

fn unknown_type(n: usize) -> serde_json::Value {
    event("no.such.type", "acc", json!({ "n": n }))
}

/// An app with account "acc" (m1, first reply) to dead-letter events of.
async fn app_with_account() -> TestApp {
    let app = TestApp::spawn(1).await;
    setup_account(&app, "acc", &[("m1", "manager", true)], Some("first_reply")).await;
    app
}

/// Every dead letter of `events` is replayed or still in `P.dead`.
fn assert_each_replayed_or_left(
    events: &[serde_json::Value],
    replayed: &BTreeSet<String>,
    left: &BTreeSet<String>,
) {
    let all: BTreeSet<String> = events
        .iter()
        .map(|e| e["eventId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        replayed | left,
        all,
        "every dead letter is replayed or still there"
    );
}

/// The eventIds of what `peek` finds in `P.dead` now.
async fn dead_event_ids(app: &TestApp) -> BTreeSet<String> {
    let conn = amqp(&target(app)).await;
    let peek = dead::peek(&conn, &app.names, &Filter::default(), usize::MAX)
        .await
        .unwrap();
    ops::close(&conn).await;
    peek.letters.iter().filter_map(|l| l.event_id()).collect()
}

/// Stops the workers and makes `P.inbound` a fanout exchange into a queue of
/// the test's, so a replay's messages can be looked at as they arrived. With
/// `max`, the queue refuses (nacks) publishes beyond `max` messages.
async fn capture_inbound(app: &mut TestApp, max: Option<i64>) -> String {
    app.stop_workers().await;
    let inbound = app.names.inbound();
    let capture = format!("{}.capture", app.prefix);
    app.track_queue(&capture);
    let ch = &app.channel;
    timed(
        "exchange_delete",
        ch.exchange_delete(inbound.as_str().into(), ExchangeDeleteOptions::default()),
    )
    .await
    .unwrap();
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    timed(
        "exchange_declare",
        ch.exchange_declare(
            inbound.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    let mut args = FieldTable::default();
    if let Some(max) = max {
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(max));
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString(LongString::from("reject-publish")),
        );
    }
    timed(
        "queue_declare",
        ch.queue_declare(
            capture.as_str().into(),
            QueueDeclareOptions::default(),
            args,
        ),
    )
    .await
    .unwrap();
    timed(
        "queue_bind",
        ch.queue_bind(
            capture.as_str().into(),
            inbound.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .unwrap();
    capture
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_shown_and_none_is_taken() {
    let mut test_app = app_with_account().await;
    let app = &mut test_app;
    let mut headers = FieldTable::default();
    headers.insert("x-trace".into(), AMQPValue::LongString("42".into()));
    let props = BasicProperties::default()
        .with_message_id("m-1".into())
        .with_headers(headers);
    app.publish_raw("acc", b"not json", props).await;
    send(app, &[unknown_type(1)]).await;
    let stray = json!({ "messageId": "x", "channelId": "nope", "chatType": "whatsapp", "chatId": "c1", "text": "hi" });
    send(app, &[event("message.inbound", "acc", stray)]).await;
    let queue = app.names.dead();
    wait_depth(app, &queue, 3).await;

    let conn = amqp(&target(app)).await;
    let all = dead::peek(&conn, &app.names, &Filter::default(), 50)
        .await
        .unwrap();
    assert_eq!(all.total, 3);
    let reasons: Vec<String> = all.letters.iter().map(|l| l.reason().unwrap()).collect();
    assert!(reasons[0].starts_with("not_json"), "{reasons:?}");
    assert!(reasons[1].starts_with("unknown_type"), "{reasons:?}");
    assert!(reasons[2].starts_with("unknown_channel"), "{reasons:?}");

    let table = dead_text::list(&all, &queue, SystemTime::now());
    assert!(
        table.contains("not_json") && table.contains("unknown_channel"),
        "{table}"
    );
    assert!(table.contains("(body is not JSON)"), "{table}");
    assert!(table.contains("3 of 3 dead letters"), "{table}");
    // Fresh dead letters are seconds old.
    assert!(table.lines().nth(1).unwrap().contains('s'), "{table}");

    let unknown = Filter {
        reason: Some("unknown_".into()),
        account: None,
    };
    assert_eq!(
        dead::peek(&conn, &app.names, &unknown, 50)
            .await
            .unwrap()
            .letters
            .len(),
        2
    );
    let acc = Filter {
        reason: None,
        account: Some("acc".into()),
    };
    assert_eq!(
        dead::peek(&conn, &app.names, &acc, 50)
            .await
            .unwrap()
            .letters
            .len(),
        3
    );
    let other = Filter {
        reason: None,
        account: Some("other".into()),
    };
    assert!(
        dead::peek(&conn, &app.names, &other, 50)
            .await
            .unwrap()
            .letters
            .is_empty()
    );

    let shown = dead_text::show(&all.letters[0], all.total, SystemTime::now());
    for part in [
        "Dead letter 1 of 3",
        "routing key:  acc",
        "m-1",
        "x-trace: 42",
        "not json",
    ] {
        assert!(shown.contains(part), "{part:?} in {shown}");
    }
    ops::close(&conn).await;
    // Everything read went back.
    wait_depth(app, &queue, 3).await;
    test_app.cleanup().await;
}
