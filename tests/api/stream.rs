//! One ordered stream per account (contract v1.1): set-up and messages
//! published back to back never overtake each other, waiting chats are offered
//! to users who come later, and nothing published while the first worker
//! declares the topology is lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::helpers::*;
use futures_util::future::join_all;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn set_up_then_first_messages_back_to_back_on_twenty_accounts() {
    let app = TestApp::spawn(3).await;
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("s", "supervisor", false),
        ("q", "quality_control", false),
    ];
    let accounts: Vec<String> = (0..20).map(|i| format!("acc.{i}")).collect();
    // Every account at once; inside an account, one event after the other,
    // each confirmed before the next, as a CRM and then a gateway would.
    join_all(accounts.iter().enumerate().map(|(i, account)| {
        let app = &app;
        let distribution = if i % 2 == 0 {
            "round_robin"
        } else {
            "first_reply"
        };
        async move {
            let setup = Account::new(account)
                .staff(&users)
                .distribution(Some(distribution));
            for e in setup.events() {
                app.publish_event(&e).await;
            }
            for c in 0..3 {
                app.publish_event(&inbound(account, &format!("client-{c}"), "hi"))
                    .await;
            }
        }
    }))
    .await;

    // Each account's users, read side by side (each read waits for quiet).
    let read = accounts.iter().map(|account| {
        let app = &app;
        async move {
            let mut notes = Vec::new();
            for (user, min) in [("m1", 1), ("m2", 1), ("s", 3), ("q", 3)] {
                notes.push(app.notes(account, user, min).await);
            }
            notes
        }
    });
    let all = join_all(read).await;
    for ((i, account), notes) in accounts.iter().enumerate().zip(all) {
        let (m1, m2) = (&notes[0], &notes[1]);
        if i % 2 == 0 {
            // Round robin: each client to exactly one manager, evenly.
            let mut split = [count(m1, "chat.new"), count(m2, "chat.new")];
            split.sort();
            assert_eq!(split, [1, 2], "{account}: {m1:?} {m2:?}");
            assert!(m1.iter().chain(m2).all(|n| n["dealId"].is_string()));
        } else {
            assert_eq!(count(m1, "chat.new"), 3, "{account}: {m1:?}");
            assert_eq!(count(m2, "chat.new"), 3, "{account}: {m2:?}");
        }
        assert_eq!(m1.len() + m2.len(), if i % 2 == 0 { 3 } else { 6 });
        for (observer, notes) in ["s", "q"].iter().zip(&notes[2..]) {
            assert_eq!(
                (notes.len(), count(notes, "chat.new")),
                (3, 3),
                "{account}/{observer}: {notes:?}"
            );
        }
    }
    let dead = app.dead(0).await;
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_manager_gets_nothing_of_a_message_published_right_after() {
    let mut app = TestApp::spawn(3).await;
    let crm_queue = app.bind_crm().await;
    setup_account(
        &app,
        "acc",
        &[("m1", "manager", true), ("m2", "manager", true)],
        Some("round_robin"),
    )
    .await;
    app.publish_event(&inbound("acc", "c1", "first")).await;
    // Ties in the round robin go by id: the first client is m1's.
    let (first, other) = ("m1", "m2");
    assert_eq!(kinds(&app.notes("acc", first, 1).await), vec!["chat.new"]);
    // The responsible is removed, and the client writes at once.
    app.publish_event(&event(
        "users.removed",
        "acc",
        json!({ "userIds": [first] }),
    ))
    .await;
    app.publish_event(&inbound("acc", "c1", "second")).await;

    let others = app.notes("acc", other, 1).await;
    assert_eq!(kinds(&others), vec!["chat.new"], "{others:?}");
    assert_eq!(others[0]["text"], "second");
    let firsts = app.notes("acc", first, 0).await;
    assert!(
        firsts.iter().all(|n| n["text"] != "second"),
        "the removed manager saw the message: {firsts:?}"
    );
    let crm = app.take(&crm_queue, 3, Duration::from_secs(20)).await;
    let changed: Vec<_> = crm
        .iter()
        .filter(|m| m.json["type"] == "contact.responsibleChanged")
        .collect();
    assert_eq!(changed.len(), 1, "{crm:?}");
    assert_eq!(changed[0].json["responsibleUserId"], other);
    assert!(app.dead(0).await.is_empty());
    app.cleanup().await;
}

/// A chat waits with nobody eligible; a manager added later is offered it.
async fn waiting_chat_then_a_manager(distribution: &str) {
    let Fixture { app, crm, .. } =
        Fixture::new(2, &[("s", "supervisor", false)], Some(distribution)).await;
    app.publish_event(&inbound("acc", "c1", "anyone?")).await;
    app.publish_event(&inbound("acc", "c2", "hello?")).await;
    let s = app.notes("acc", "s", 2).await;
    assert_eq!(count(&s, "chat.new"), 2, "{s:?}");

    let added = user_upserted("acc", "m1", &[("wa", "manager", true)]);
    app.publish_event(&added).await;
    // The same event again (a redelivery or a republish) changes nothing more.
    app.publish_event(&added).await;
    let m1 = app.notes("acc", "m1", 2).await;
    let mut chats: Vec<&str> = m1.iter().map(|n| n["chatId"].as_str().unwrap()).collect();
    chats.sort();
    chats.dedup();
    assert_eq!(chats, vec!["c1", "c2"], "{m1:?}");
    assert!(m1.iter().all(|n| n["type"] == "chat.new"), "{m1:?}");
    let ids: std::collections::BTreeSet<_> =
        m1.iter().map(|n| n["notificationId"].to_string()).collect();
    assert_eq!(ids.len(), 2, "one cause per chat: {m1:?}");

    let events = app.take(&crm, 0, Duration::from_secs(3)).await;
    // Causes, not copies: a republish repeats the same messages with the same ids.
    let created = |t: &str| {
        events
            .iter()
            .filter(|m| m.json["type"] == t)
            .map(|m| m.json["eventId"].to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    if distribution == "round_robin" {
        // Handed out at once: contact and deal created for each, once.
        assert!(
            m1.iter()
                .all(|n| n["dealId"].is_string() && n["contactId"].is_string())
        );
        assert_eq!(
            (created("contact.created"), created("deal.created")),
            (2, 2)
        );
    } else {
        // Offered: nothing created until the manager answers.
        assert_eq!(created("contact.created"), 0, "{events:?}");
        app.publish_event(&outbound("acc", "c1", "m1", "here"))
            .await;
        let claimed = app.notes("acc", "m1", 1).await;
        assert_eq!(kinds(&claimed), vec!["chat.assigned"], "{claimed:?}");
        let events = app.take(&crm, 2, Duration::from_secs(20)).await;
        let kinds: Vec<_> = events
            .iter()
            .map(|m| m.json["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, vec!["contact.created", "deal.created"], "{events:?}");
    }
    // The supervisor keeps his access: nothing withdrawn from him.
    let s = app.notes("acc", "s", 0).await;
    assert_eq!(count(&s, "chat.withdrawn"), 0, "{s:?}");
    assert!(app.dead(0).await.is_empty());
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_chat_is_handed_out_to_a_manager_added_later_by_round_robin() {
    waiting_chat_then_a_manager("round_robin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_chat_is_offered_to_a_manager_added_later_under_first_reply() {
    waiting_chat_then_a_manager("first_reply").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_chat_is_offered_to_a_supervisor_added_later() {
    let app = TestApp::spawn(1).await;
    setup_account(&app, "acc", &[("m1", "manager", true)], Some("first_reply")).await;
    app.publish_event(&inbound("acc", "c1", "hello")).await;
    assert_eq!(kinds(&app.notes("acc", "m1", 1).await), vec!["chat.new"]);
    app.publish_event(&user_upserted("acc", "s2", &[("wa", "supervisor", false)]))
        .await;
    let s2 = app.notes("acc", "s2", 1).await;
    assert_eq!(kinds(&s2), vec!["chat.new"], "{s2:?}");
    assert_eq!(s2[0]["chatId"], "c1");
    // The supervisor claims it; the manager loses it.
    app.publish_event(&outbound("acc", "c1", "s2", "I'll take it"))
        .await;
    assert_eq!(
        kinds(&app.notes("acc", "s2", 1).await),
        vec!["chat.assigned"]
    );
    assert_eq!(
        kinds(&app.notes("acc", "m1", 1).await),
        vec!["chat.withdrawn"]
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publishers_racing_the_first_worker_lose_nothing_over_twenty_starts() {
    let mut lost = BTreeMap::new();
    for start in 0..20 {
        let app = TestApp::spawn(0).await;
        let prefix = app.prefix.clone();
        let inbound_exchange = app.names.inbound();
        let accounts: Vec<String> = (0..8).map(|i| format!("a{i}")).collect();
        let publisher = async {
            // Poll every millisecond until P.inbound exists, then publish at once.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !app.exchange_exists(&inbound_exchange).await {
                assert!(Instant::now() < deadline, "P.inbound never appeared");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            for account in &accounts {
                app.publish_event(&event(
                    "channels.upserted",
                    account,
                    json!({ "channels": [{ "channelId": "wa", "chatType": "whatsapp", "name": "S" }] }),
                ))
                .await;
            }
        };
        app.launch_worker(app.config());
        within(Duration::from_secs(40), publisher).await;
        // Every account's event took effect.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut missing = accounts.clone();
        while !missing.is_empty() && Instant::now() < deadline {
            let mut still = Vec::new();
            for account in &missing {
                let key = format!("{prefix}:{{{account}}}:config");
                let n: Option<u64> = app.redis_cmd(redis::cmd("GET").arg(&key)).await;
                if n != Some(1) {
                    still.push(account.clone());
                }
            }
            missing = still;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !missing.is_empty() {
            lost.insert(start, missing);
        }
        // The worker stops in time and cleanly.
        app.cleanup().await;
    }
    assert!(lost.is_empty(), "events lost at start-up: {lost:?}");
}
