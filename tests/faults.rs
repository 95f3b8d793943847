//! Passing faults: Redis or RabbitMQ gone for a while. The worker waits them
//! out with backoff and loses nothing; nothing is created twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::proxy::Proxy;
use common::*;

/// Sends `n` new clients: half while the connection is being cut, half while
/// it is down; restores it after `outage` and checks every client got exactly
/// one contact, one deal and one manager, evenly.
async fn survive(app: &mut TestApp, proxy: &Proxy, n: usize, outage: Duration) {
    let crm = app.bind_crm().await;
    let send = |range: std::ops::Range<usize>| {
        let app = &*app;
        futures_util::future::join_all(range.map(move |i| async move {
            app.publish_chat(&inbound("acc", &format!("client-{i}"), "hello"))
                .await
        }))
    };
    let (_, cut) = tokio::join!(send(0..n / 2), async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        proxy.cut().await
    });
    assert!(cut > 0, "the worker's connections were cut");
    send(n / 2..n).await;
    tokio::time::sleep(outage).await;
    proxy.restore();

    let crm = app.take(&crm, 2 * n, Duration::from_secs(60)).await;
    let contacts: BTreeMap<String, BTreeSet<String>> = crm
        .iter()
        .filter(|m| m.json["type"] == "contact.created")
        .fold(BTreeMap::new(), |mut by_chat, m| {
            let chat = m.json["contactData"][0]["chatId"]
                .as_str()
                .unwrap()
                .to_owned();
            by_chat
                .entry(chat)
                .or_default()
                .insert(m.json["contactId"].to_string());
            by_chat
        });
    assert_eq!(contacts.len(), n, "every client has a contact");
    assert!(
        contacts.values().all(|ids| ids.len() == 1),
        "no client got two contacts"
    );
    let deals: BTreeSet<_> = crm
        .iter()
        .filter(|m| m.json["type"] == "deal.created")
        .map(|m| m.json["dealId"].to_string())
        .collect();
    assert_eq!(deals.len(), n, "one deal per client");

    let mut per_manager = Vec::new();
    let mut chats = BTreeSet::new();
    for m in ["m1", "m2"] {
        let notes = app.notes("acc", m, n / 2).await;
        // A repeat after a fault carries the same notificationId; count causes, not copies.
        let distinct: BTreeSet<_> = notes
            .iter()
            .map(|n| n["notificationId"].to_string())
            .collect();
        chats.extend(notes.iter().map(|n| n["chatId"].to_string()));
        per_manager.push(distinct.len());
    }
    assert_eq!(chats.len(), n, "every client reached a manager");
    assert_eq!(
        per_manager,
        vec![n / 2, n / 2],
        "the round robin stayed even"
    );
}

/// Two workers whose connection to `upstream` goes through a proxy (`point`
/// aims the worker's configuration at it) live through an outage of it.
async fn outage(upstream: &str, point: impl Fn(&mut switchboard::Config, std::net::SocketAddr)) {
    let proxy = Proxy::start(upstream).await;
    let prefix = format!("sbt-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut app = TestApp::spawn_with(2, &prefix, |c| point(c, proxy.addr)).await;
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
