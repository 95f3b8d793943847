//! Graceful shutdown and scale-in: a worker that stops in the middle of a
//! stream finishes or hands back what it holds; nothing is lost or doubled.

mod common;

use std::collections::BTreeSet;
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

    let crm = app.take(&crm, 2 * n, Duration::from_secs(30)).await;
    let contacts: BTreeSet<_> = crm
        .iter()
        .filter(|m| m.json["type"] == "contact.created")
        .map(|m| m.json["contactData"][0]["chatId"].to_string())
        .collect();
    assert_eq!(contacts.len(), n, "every client got a contact");
    let mut per_manager = Vec::new();
    for m in ["m1", "m2"] {
        let notes = app.notes("acc", m, n / 2).await;
        let distinct: BTreeSet<_> = notes.iter().map(|n| n["chatId"].to_string()).collect();
        assert_eq!(
            distinct.len(),
            notes
                .iter()
                .map(|n| n["notificationId"].to_string())
                .collect::<BTreeSet<_>>()
                .len()
        );
        per_manager.push(distinct.len());
    }
    assert_eq!(
        per_manager,
        vec![n / 2, n / 2],
        "even, and no client given twice"
    );
    app.cleanup().await;
}
