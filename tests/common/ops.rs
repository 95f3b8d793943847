//! Helpers of the operator-command tests: the commands' target for a test's
//! prefix, queue depths, events published as the `publish` command does, and
//! a cleanup that runs even when the test body panics.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use serde_json::Value;
use switchboard::ops::{self, Target, publish, teardown};

use super::{AMQP, REDIS, TestApp};

/// How long one request of a cleanup may take.
const WAIT: Duration = Duration::from_secs(15);

/// The commands' connection settings for the test's prefix.
pub fn target(app: &TestApp) -> Target {
    Target {
        amqp_url: AMQP.into(),
        redis_url: REDIS.into(),
        prefix: app.prefix.clone(),
    }
}

/// Runs `body` on a fresh app with `workers` workers, then removes everything
/// of the prefix, also when `body` panics (the panic is passed on).
pub async fn with_app(workers: usize, body: impl AsyncFnOnce(&mut TestApp)) {
    let mut app = TestApp::spawn(workers).await;
    let target = target(&app);
    // Nothing but the cleanup uses the app after a panic.
    let result = AssertUnwindSafe(body(&mut app)).catch_unwind().await;
    // The harness's cleanup stops the workers and uses the app's connection,
    // which a failed test may have broken; the teardown command then removes
    // whatever is left of the prefix on connections of its own.
    let cleaned = AssertUnwindSafe(app.cleanup()).catch_unwind().await;
    if let (Ok(conn), Ok(mut redis)) = (ops::amqp(&target).await, ops::redis(&target).await) {
        let force = teardown::Options {
            yes: false,
            force: true,
        };
        let _ = teardown::teardown(&conn, &mut redis, &target.names(), force).await;
        // The queue some tests put in place of the workers (`{prefix}.capture`).
        if let Ok(Ok(channel)) = tokio::time::timeout(WAIT, conn.create_channel()).await {
            let capture = format!("{}.capture", target.prefix);
            let options = QueueDeleteOptions::default();
            let _ =
                tokio::time::timeout(WAIT, channel.queue_delete(capture.as_str().into(), options))
                    .await;
        }
        ops::close(&conn).await;
    }
    for outcome in [result, cleaned] {
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

/// `fut`, which must not take longer than 20 s (a request to the broker or Redis).
pub async fn timed<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("the broker or Redis answered within 20 s")
}

/// Messages ready in `queue` (0 when it does not exist).
pub async fn depth(app: &TestApp, queue: &str) -> u32 {
    let probe = timed(app.conn.create_channel()).await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    match timed(probe.queue_declare(queue.into(), passive, FieldTable::default())).await {
        Ok(q) => {
            let _ = timed(probe.close(200, "probe".into())).await;
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
    let conn = ops::amqp(&target(app)).await.expect("broker");
    let sent = publish::publish(&conn, &app.names, &outgoing).await;
    ops::close(&conn).await;
    assert_eq!(sent.expect("published"), events.len());
}
