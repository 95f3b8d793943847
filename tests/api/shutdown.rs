//! Graceful shutdown and scale-in: a worker that stops in the middle of a
//! stream finishes or hands back what it holds; nothing is lost or doubled.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_stopping_mid_stream_loses_nothing() {
    // No grace: the worker abandons what it holds, which goes back to the queue.
    let Fixture { app, crm, .. } = Fixture::with(
        TestApp::spawn_with(1, |c| c.shutdown_grace_secs = 0).await,
        &[("m1", "manager", true), ("m2", "manager", true)],
        Some("round_robin"),
    )
    .await;
    let survivor = switchboard::Config::with_prefix(&app.prefix);

    let n = 60;
    app.new_clients(0..n).await;
    // Stop the only worker while it works through the stream, then start another.
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.stop_workers().await;
    app.start_worker(survivor).await;

    app.assert_each_client_once(&crm, n, &["m1", "m2"]).await;
    app.cleanup().await;
}
