//! Passing faults: Redis or RabbitMQ gone for a while. The worker waits them
//! out with backoff and loses nothing; nothing is created twice.

use std::time::Duration;

use crate::helpers::proxy::Proxy;
use crate::helpers::*;

/// Sends `n` new clients: half while the connection is being cut, half while
/// it is down; restores it after `outage` and checks every client got exactly
/// one contact, one deal and one manager, evenly.
async fn survive(app: &mut TestApp, proxy: &Proxy, n: usize, outage: Duration) {
    let crm = app.bind_crm().await;
    let (_, cut) = tokio::join!(app.new_clients(0..n / 2), async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        proxy.cut().await
    });
    assert!(cut > 0, "the worker's connections were cut");
    app.new_clients(n / 2..n).await;
    tokio::time::sleep(outage).await;
    proxy.restore();

    app.assert_each_client_once(&crm, n, &["m1", "m2"]).await;
}

/// Two workers whose connection to `upstream` goes through a proxy (`point`
/// aims the worker's configuration at it) live through an outage of it.
async fn outage(upstream: &str, point: impl Fn(&mut switchboard::Config, std::net::SocketAddr)) {
    let proxy = Proxy::start(upstream).await;
    let mut app = TestApp::spawn_with(2, |c| point(c, proxy.addr)).await;
    let managers = [("m1", "manager", true), ("m2", "manager", true)];
    setup_account(&app, "acc", &managers, Some("round_robin")).await;
    survive(&mut app, &proxy, 20, Duration::from_secs(2)).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_outage_is_waited_out_without_loss_or_doubles() {
    outage("127.0.0.1:6379", |c, addr| {
        c.redis_url = format!("redis://{addr}/0")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_outage_is_waited_out_without_loss_or_doubles() {
    outage("127.0.0.1:5672", |c, addr| {
        c.amqp_url = format!("amqp://guest:guest@{addr}/%2f")
    })
    .await;
}
