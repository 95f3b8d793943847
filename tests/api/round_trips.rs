//! Redis round trips per event, counted by the workers themselves
//! (`switchboard_redis_round_trips_total`): at most two (a snapshot and an
//! apply) for new clients by round robin with two workers at once, for
//! first-reply offers and for their claims. Each worker is a process of its
//! own (one on one thread, the default, one on two) with its own metrics (the recorder is process-wide), and the figures
//! are differences between two scrapes; nothing here is timed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::helpers::process::Process;
use crate::helpers::*;
use crate::monitor::{get, metrics_addr, samples, wait_ready};

/// The operations of an event (not the heartbeat), and taking a Redis
/// connection from the pool (its check is a round trip of its own; the
/// worker shares one connection, so this happens only after a failure).
const EVENT_OPS: [&str; 6] = [
    "snapshot",
    "read",
    "channel",
    "apply",
    "replicate",
    "connection",
];

/// Chat events handled and Redis round trips they took, over every worker.
async fn tally(workers: &[SocketAddr]) -> (f64, f64) {
    let (mut events, mut trips) = (0.0, 0.0);
    for addr in workers {
        let scrape: BTreeMap<String, f64> = samples(&get(*addr, "/metrics").await.1);
        for (name, value) in &scrape {
            if name.starts_with("switchboard_events_total{")
                && (name.contains("message.inbound") || name.contains("message.outbound"))
            {
                events += value;
            }
            if EVENT_OPS
                .iter()
                .any(|op| *name == format!("switchboard_redis_round_trips_total{{op=\"{op}\"}}"))
            {
                trips += value;
            }
        }
    }
    (events, trips)
}

/// Round trips per event between two tallies.
fn per_event(before: (f64, f64), after: (f64, f64), events: f64) -> f64 {
    assert_eq!(after.0 - before.0, events, "every event was counted");
    (after.1 - before.1) / events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_clients_offers_and_claims_take_at_most_two_round_trips() {
    let mut app = TestApp::spawn(0).await;
    let addrs = [metrics_addr(), metrics_addr()];
    let mut workers = Vec::new();
    // One worker on the default single-threaded runtime, one on two threads.
    for (addr, threads) in addrs.iter().zip(["1", "2"]) {
        let metrics = addr.to_string();
        workers.push(Process::worker(
            &app.prefix,
            &["--metrics-addr", &metrics, "--threads", threads],
        ));
    }
    app.wait_queue(&app.names.dead()).await;
    for addr in &addrs {
        wait_ready(*addr, 200).await;
    }
    let crm = app.bind_crm().await;
    let gateway = app.bind_outbound().await;
    let mut staff = vec![
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("m3", "manager", true),
        ("q", "quality_control", false),
    ];
    // Users who are never told of these chats: their seats are not read.
    let idle: Vec<String> = (0..20).map(|i| format!("idle{i}")).collect();
    staff.extend(idle.iter().map(|u| (u.as_str(), "manager", false)));
    setup_account(&app, "acc", &staff, Some("round_robin")).await;

    // 30 new clients at once, handed out by round robin.
    let start = tally(&addrs).await;
    app.new_clients(0..30).await;
    assert_eq!(app.take(&crm, 60, Duration::from_secs(30)).await.len(), 60);
    let _ = app.notes("acc", "q", 30).await;
    let handed_out = tally(&addrs).await;
    let new_clients = per_event(start, handed_out, 30.0);
    assert!(
        new_clients <= 2.0,
        "{new_clients} round trips per new client"
    );

    // First reply: each client is offered, then claimed by a manager's answer.
    let first_reply = settings("acc", "p", "s1", "first_reply");
    app.apply_account(&first_reply).await;
    let offered = tally(&addrs).await;
    for i in 0..10 {
        let chat = format!("fr-{i}");
        app.publish_event(&inbound("acc", &chat, "hello")).await;
        let claimer = format!("m{}", 1 + i % 3);
        app.publish_event(&outbound("acc", &chat, &claimer, "mine"))
            .await;
    }
    assert_eq!(
        app.take(&gateway, 10, Duration::from_secs(30)).await.len(),
        10
    );
    assert_eq!(app.take(&crm, 20, Duration::from_secs(30)).await.len(), 20);
    let claimed = tally(&addrs).await;
    let offers_and_claims = per_event(offered, claimed, 20.0);
    assert!(
        offers_and_claims <= 2.0,
        "{offers_and_claims} round trips per offer or claim"
    );
    for worker in &workers {
        worker.sigterm();
    }
    for worker in &mut workers {
        let (code, _) = worker.exits_within(Duration::from_secs(30)).await;
        assert_eq!(code, 0, "the worker ended cleanly");
    }
    app.cleanup().await;
}
