//! `switchboard::store::bulk`: contacts and deals written straight into Redis (as the
//! benchmark preloads them) are the same state the worker makes from the
//! events, so the worker serves them as known contacts.

use serde_json::json;
use switchboard::events;
use switchboard::ids::Id;
use switchboard::store::{AccountKeys, Key, bucket};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_loaded_contacts_are_served_as_known_and_bad_ones_are_refused() {
    let app = TestApp::spawn(1).await;
    let acc = "acc";
    let staff = [
        ("u1", "manager", true),
        ("u2", "manager", true),
        ("q", "quality_control", false),
    ];
    setup_account(&app, acc, &staff, Some("round_robin")).await;

    let deal = event(
        "deal.upserted",
        acc,
        json!({ "dealId": "d1", "name": "Deal d1", "contactIds": ["c1"], "responsibleUserId": "u2",
                "pipelineId": "p", "stageId": "s1", "closed": false }),
    );
    let batch: Vec<events::Event> = [
        contact(acc, "c1", "u2", &["chat-1"]),
        deal,
        contact(acc, "c2", "ghost", &["chat-2"]),
    ]
    .iter()
    .map(|e| events::parse(e.to_string().as_bytes()).expect("a valid event"))
    .collect();
    let config = app.config();
    let keys = AccountKeys::new(&config.prefix, &Id::parse(acc).unwrap());
    let client = redis::Client::open(config.redis_url.as_str()).unwrap();
    let mut conn = timed(
        "connecting to Redis",
        client.get_multiplexed_async_connection(),
    )
    .await
    .expect("Redis answers");
    let loaded = timed(
        "bulk load",
        switchboard::store::bulk::load(&mut conn, &keys, &batch),
    )
    .await
    .expect("the writes succeed");
    assert_eq!(loaded.written, 2, "{:?}", loaded.refused);
    assert_eq!(loaded.refused.len(), 1);
    assert!(
        loaded.refused[0].starts_with("unknown_user"),
        "{:?}",
        loaded.refused
    );

    // The contact's deals are a field of its bucket, as apply.lua keeps them.
    let c1 = Id::parse("c1").unwrap();
    let mut members = redis::cmd("HGET");
    members
        .arg(keys.key(&Key::DealLinks(bucket(&c1))))
        .arg(c1.as_str());
    let deals: Option<String> = app.redis_cmd(&members).await;
    assert_eq!(deals.as_deref(), Some(r#"["d1"]"#));

    // The worker finds the contact: its responsible gets the message as a known chat.
    app.publish_event(&inbound(acc, "chat-1", "hello")).await;
    let notes = app.notes(acc, "u2", 1).await;
    assert_eq!(kinds(&notes), ["chat.message"], "{notes:?}");
    assert_eq!(notes[0]["contactId"], "c1");
    // The refused contact was not written: its chat is a new client.
    app.publish_event(&inbound(acc, "chat-2", "hi")).await;
    let notes = app.notes(acc, "u1", 1).await;
    assert_eq!(kinds(&notes), ["chat.new"], "{notes:?}");
    app.cleanup().await;
}
