//! Graceful shutdown and scale-in: a worker that stops in the middle of a
//! stream finishes or hands back what it holds; nothing is lost or doubled.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_stopping_mid_stream_loses_nothing() {
    // No grace: the worker abandons what it holds, which goes back to the queue.
    let prefix = format!("sbt-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut app = TestApp::spawn_with(1, &prefix, |c| c.shutdown_grace_secs = 0).await;
    let crm = app.bind_crm().await;
    setup_account(
        &app,
        "acc",
        &[("m1", "manager", true), ("m2", "manager", true)],
        Some("round_robin"),
    )
    .await;
    let survivor = switchboard::Config::with_prefix(&app.prefix);

    let n = 60;
    let sends = (0..n).map(|i| {
        let app = &app;
        async move {
            app.publish_chat(&inbound("acc", &format!("client-{i}"), "hello"))
                .await
        }
    });
    futures_util::future::join_all(sends).await;
    // Stop the only worker while it works through the stream, then start another.
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.stop_workers().await;
    app.start_worker(survivor).await;

    app.assert_each_client_once(&crm, n, &["m1", "m2"]).await;
    app.cleanup().await;
}
