//! A dead letter is always publishable and replays exactly: an event whose
//! `type`, an id or `chatType` is a 200 KB string goes to `P.dead` with a short
//! reason, its body and every AMQP property kept, and the worker goes on
//! serving another account. (Before, the reason quoted the value whole, the
//! dead letter exceeded the broker's frame size, the broker closed the
//! connection and the event came back forever.)

use std::time::Duration;

use crate::helpers::*;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use serde_json::Value;

const HUGE: usize = 200 * 1024;

/// Every property a gateway may set (but `expiration`, which would expire the
/// dead letter, and `user_id`, which the broker checks against the login).
fn props(n: usize) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        "x-trace".into(),
        AMQPValue::LongString(LongString::from(format!("trace-{n}"))),
    );
    BasicProperties::default()
        .with_reply_to(ShortString::from(format!("amq.gen-reply-{n}")))
        .with_correlation_id(ShortString::from(format!("corr-{n}")))
        .with_message_id(ShortString::from(format!("msg-{n}")))
        .with_app_id(ShortString::from("gateway"))
        .with_type(ShortString::from("event"))
        .with_content_encoding(ShortString::from("identity"))
        .with_timestamp(1_700_000_000 + n as u64)
        .with_priority(3)
        .with_headers(headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_values_are_dead_lettered_short_and_exact() {
    let app = TestApp::spawn(1).await;
    within(Duration::from_secs(120), scenario(&app)).await;
    app.cleanup().await;
}

async fn scenario(app: &TestApp) {
    setup_account(
        app,
        "other",
        &[("m1", "manager", true)],
        Some("round_robin"),
    )
    .await;
    let huge = "z".repeat(HUGE);
    let mut bad_type = inbound("acc", "c1", "hi");
    bad_type["type"] = Value::String(huge.clone());
    let mut bad_id = inbound("acc", "c1", "hi");
    bad_id["chatId"] = Value::String(huge.clone());
    let mut bad_chat_type = inbound("acc", "c1", "hi");
    bad_chat_type["chatType"] = Value::String(huge.clone());
    let cases = [
        (bad_type, "unknown_type"),
        (bad_id, "invalid_field"),
        (bad_chat_type, "invalid_field"),
    ];
    for (n, (body, _)) in cases.iter().enumerate() {
        let bytes = serde_json::to_vec(body).unwrap();
        assert!(bytes.len() > HUGE, "the body carries the huge value");
        app.publish_raw("acc", &bytes, props(n)).await;
    }

    let dead = app.dead(cases.len()).await;
    assert_eq!(dead.len(), cases.len(), "one dead letter per bad event");
    for (n, (body, code)) in cases.iter().enumerate() {
        let want = serde_json::to_vec(body).unwrap();
        let letter = dead
            .iter()
            .find(|d| d.body == want)
            .unwrap_or_else(|| panic!("case {n}: its body came back byte for byte"));
        let reason = letter.header("x-switchboard-error").expect("a reason");
        assert!(
            reason.starts_with(&format!("{code}: ")),
            "case {n}: {reason:.120}"
        );
        assert!(
            reason.len() <= 1024,
            "case {n}: reason of {} bytes",
            reason.len()
        );
        assert!(
            reason.contains('…'),
            "case {n}: the value is cut: {reason:.300}"
        );
        assert_eq!(
            letter.header("x-switchboard-routing-key").as_deref(),
            Some("acc")
        );
        let (got, sent) = (&letter.properties, props(n));
        assert_eq!(got.reply_to(), sent.reply_to(), "case {n}");
        assert_eq!(got.correlation_id(), sent.correlation_id(), "case {n}");
        assert_eq!(got.message_id(), sent.message_id(), "case {n}");
        assert_eq!(got.app_id(), sent.app_id(), "case {n}");
        assert_eq!(got.kind(), sent.kind(), "case {n}");
        assert_eq!(got.content_encoding(), sent.content_encoding(), "case {n}");
        assert_eq!(got.timestamp(), sent.timestamp(), "case {n}");
        assert_eq!(got.priority(), sent.priority(), "case {n}");
        assert_eq!(
            got.content_type()
                .as_ref()
                .map(|c| c.to_string())
                .as_deref(),
            Some("application/json"),
            "case {n}"
        );
        assert_eq!(
            letter.header("x-trace"),
            Some(format!("trace-{n}")),
            "case {n}"
        );
    }

    // The worker is still up and serves another account.
    app.publish_event(&inbound("other", "c9", "hello")).await;
    let notes = app.notes("other", "m1", 1).await;
    assert_eq!(kinds(&notes), ["chat.new"], "{notes:?}");
    assert!(
        app.dead(0).await.is_empty(),
        "nothing else was dead-lettered"
    );
}
