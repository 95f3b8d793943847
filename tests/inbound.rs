//! The inbound flow end to end: real workers, real RabbitMQ and Redis.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_is_even_over_three_managers_and_two_workers() {
    let mut app = TestApp::spawn(2).await;
    let crm = app.bind_crm().await;
    let managers = [("m1", "manager", true), ("m2", "manager", true), ("m3", "manager", true), ("q", "quality_control", false)];
    setup_account(&app, "acc", &managers, Some("round_robin")).await;

    let sends = (0..30).map(|i| {
        let app = &app;
        async move { app.publish_chat(&inbound("acc", &format!("client-{i}"), "hello")).await }
    });
    futures_util::future::join_all(sends).await;

    let mut per_manager = BTreeMap::new();
    let mut chats = BTreeSet::new();
    for m in ["m1", "m2", "m3"] {
        let notes = app.notes("acc", m, 10).await;
        assert!(notes.iter().all(|n| n["type"] == "chat.new"), "{notes:?}");
        chats.extend(notes.iter().map(|n| n["chatId"].as_str().unwrap().to_owned()));
        per_manager.insert(m, notes.len());
    }
    assert_eq!(per_manager.values().copied().collect::<Vec<_>>(), vec![10, 10, 10], "{per_manager:?}");
    assert_eq!(chats.len(), 30, "every client went to exactly one manager");

    let crm = app.take(&crm, 60, Duration::from_secs(20)).await;
    let created: Vec<_> = crm.iter().filter(|m| m.json["type"] == "contact.created").collect();
    let deals: Vec<_> = crm.iter().filter(|m| m.json["type"] == "deal.created").collect();
    assert_eq!((created.len(), deals.len()), (30, 30));
    assert!(deals.iter().all(|d| d.json["pipelineId"] == "p" && d.json["stageId"] == "s1"));
    assert!(created.iter().all(|c| c.routing_key == "acc.contact.created"));
    // Quality control saw every new chat.
    assert_eq!(app.notes("acc", "q", 30).await.len(), 30);
    app.cleanup().await;
}
