//! Metrics and health endpoints (`--metrics-addr`), scraped as Prometheus and
//! Kubernetes would. The recorder is process-wide, and the other tests of this
//! binary run workers too, so the metrics test scrapes a worker process of its
//! own and reads differences between two scrapes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::helpers::process::Process;
use crate::helpers::redis_server::{RedisServer, free_port};
use crate::helpers::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain HTTP/1.1 GET: the status code and the body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
    };
    let raw = tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .expect("the endpoint answers in time")
        .expect("the endpoint answers");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// Every sample of the scrape: `name{labels}` -> value.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

pub fn metrics_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Waits until `/readyz` answers `want`.
pub async fn wait_ready(addr: SocketAddr, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(addr, "/readyz").await;
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {status} ({body:?}), wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_a_known_workload() {
    let addr = metrics_addr();
    let mut app = TestApp::spawn(0).await;
    let mut worker = Process::worker(&app.prefix, &["--metrics-addr", &addr.to_string()]);
    app.wait_queue(&app.names.dead()).await;
    let crm = app.bind_crm().await;
    wait_ready(addr, 200).await;
    assert_eq!(get(addr, "/healthz").await.0, 200);
    let before = samples(&get(addr, "/metrics").await.1);

    // Round robin over m1 and m2, with quality control: 4 set-up events.
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("q", "quality_control", false),
    ];
    setup_account(&app, "acc", &users, Some("round_robin")).await;
    // 3 new clients: 3 round-robin hand-outs; each notifies a manager and quality control.
    for c in ["c1", "c2", "c3"] {
        app.publish_event(&inbound("acc", c, "hello")).await;
    }
    let crm = app.take(&crm, 6, Duration::from_secs(20)).await;
    assert_eq!(crm.len(), 6, "contact and deal per client");
    // One bad input.
    app.publish_raw(&account_key("acc"), b"not json", Default::default())
        .await;
    assert_eq!(app.dead(1).await.len(), 1);
    let _ = app.notes("acc", "q", 3).await;

    let after = samples(&get(addr, "/metrics").await.1);
    let d = |key: &str| delta(&before, &after, key);
    assert_eq!(
        d(r#"switchboard_events_total{type="message.inbound",outcome="done"}"#),
        3.0
    );
    assert_eq!(
        d(r#"switchboard_events_total{type="settings.updated",outcome="done"}"#),
        1.0
    );
    assert_eq!(
        d(r#"switchboard_events_total{type="invalid",outcome="dead_lettered"}"#),
        1.0
    );
    assert_eq!(
        d(r#"switchboard_dead_letters_total{reason="not_json"}"#),
        1.0
    );
    assert_eq!(d("switchboard_round_robin_assignments_total"), 3.0);
    assert_eq!(d(r#"switchboard_published_total{target="notify"}"#), 6.0);
    assert_eq!(d(r#"switchboard_published_total{target="crm"}"#), 6.0);
    assert_eq!(
        d(r#"switchboard_event_duration_seconds_count{type="message.inbound"}"#),
        3.0
    );
    // No ids as labels.
    let text = get(addr, "/metrics").await.1;
    for id in ["acc", "m1", "m2", "q", "c1"] {
        assert!(
            !text.contains(&format!("=\"{id}\"")),
            "{id} as a label: {text}"
        );
    }

    // A claim won and one lost.
    app.publish_event(&settings("acc", "p", "s1", "first_reply"))
        .await;
    app.publish_event(&inbound("acc", "c9", "hi")).await;
    let _ = app.notes("acc", "m2", 1).await;
    app.publish_event(&outbound("acc", "c9", "m1", "mine"))
        .await;
    app.publish_event(&outbound("acc", "c9", "m2", "no, mine"))
        .await;
    let _ = app.notes("acc", "m2", 1).await;
    let last = samples(&get(addr, "/metrics").await.1);
    assert_eq!(
        delta(&after, &last, r#"switchboard_claims_total{result="won"}"#),
        1.0
    );
    assert_eq!(
        delta(&after, &last, r#"switchboard_claims_total{result="lost"}"#),
        1.0
    );

    // A suitcase reply no queue takes (its requester is gone): dropped and
    // counted. The chat's next request, answered, tells it was handled.
    let request = event(
        "suitcase.requested",
        "acc",
        serde_json::json!({ "userId": "m1", "chatType": "whatsapp", "chatId": "c9" }),
    );
    let gone = lapin::BasicProperties::default()
        .with_reply_to("amq.gen-no-such-queue".into())
        .with_correlation_id("lost".into());
    app.publish_raw(&account_key("acc"), request.to_string().as_bytes(), gone)
        .await;
    let own = reply_queue(&app, Default::default()).await;
    let _ = ask(&app, &own, "acc", "m1", ("whatsapp", "c9")).await;
    let end = samples(&get(addr, "/metrics").await.1);
    assert_eq!(delta(&last, &end, "switchboard_replies_dropped_total"), 1.0);
    worker.sigterm();
    let (code, _) = worker.exits_within(Duration::from_secs(30)).await;
    assert_eq!(code, 0, "the worker ended cleanly");
    app.cleanup().await;
}

/// `switchboard ready ADDR`, the container's HEALTHCHECK: true on exit code 0.
async fn ready_command(addr: SocketAddr) -> bool {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["ready", &addr.to_string()])
        .output();
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("`switchboard ready` ends")
        .expect("the binary runs")
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_follows_redis_going_away_and_coming_back() {
    let mut redis = RedisServer::start().await;
    let addr = metrics_addr();
    let url = redis.url.clone();
    let app = TestApp::spawn_with(1, |c| {
        c.metrics_addr = Some(addr);
        c.redis_url = url;
    })
    .await;
    wait_ready(addr, 200).await;

    assert!(ready_command(addr).await, "`switchboard ready` agrees");

    redis.stop();
    wait_ready(addr, 503).await;
    assert_eq!(get(addr, "/healthz").await.0, 200, "alive all the same");
    assert!(
        !ready_command(addr).await,
        "`switchboard ready` says not ready"
    );

    redis.restart().await;
    wait_ready(addr, 200).await;
    app.cleanup().await;
}
