//! Helpers of the operator-command tests: the commands' target for a test's
//! prefix, queue depths, and events published as the `publish` command does.

use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::Value;
use switchboard::ops::{self, Target, publish};

use super::{AMQP, REDIS, TestApp, timed};

/// The commands' connection settings for the test's prefix.
pub fn target(app: &TestApp) -> Target {
    Target {
        amqp_url: AMQP.into(),
        redis_url: REDIS.into(),
        redis_mode: switchboard::RedisMode::Standalone,
        prefix: app.prefix.clone(),
    }
}

/// The commands' connection to the broker, for the test's prefix.
pub async fn amqp(target: &Target) -> lapin::Connection {
    timed("connecting to RabbitMQ", ops::amqp(target))
        .await
        .expect("the broker")
}

/// Messages ready in `queue` (0 when it does not exist).
pub async fn depth(app: &TestApp, queue: &str) -> u32 {
    let probe = timed("channel.open", app.conn.create_channel())
        .await
        .unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let declare = probe.queue_declare(queue.into(), passive, FieldTable::default());
    match timed("queue.declare (passive)", declare).await {
        Ok(q) => {
            let _ = timed("channel.close", probe.close(200, "probe".into())).await;
            q.message_count()
        }
        Err(_) => 0,
    }
}

/// Waits until `queue` holds `n` messages.
pub async fn wait_depth(app: &TestApp, queue: &str, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = depth(app, queue).await;
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{queue} holds {now}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes events with the `publish` command's library function.
pub async fn send(app: &TestApp, events: &[Value]) {
    let text = events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let outgoing = publish::parse(&text).expect("valid events");
    let conn = amqp(&target(app)).await;
    let sent = timed("publish", publish::publish(&conn, &app.names, &outgoing)).await;
    timed("connection.close", ops::close(&conn)).await;
    assert_eq!(sent.expect("published"), events.len());
}
