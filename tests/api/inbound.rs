//! The inbound flow end to end: real workers, real RabbitMQ and Redis.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_is_even_over_three_managers_and_two_workers() {
    let mut app = TestApp::spawn(2).await;
    let crm = app.bind_crm().await;
    let managers = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("m3", "manager", true),
        ("q", "quality_control", false),
    ];
    setup_account(&app, "acc", &managers, Some("round_robin")).await;

    app.new_clients(0..30).await;

    let mut per_manager = BTreeMap::new();
    let mut chats = BTreeSet::new();
    for m in ["m1", "m2", "m3"] {
        let notes = app.notes("acc", m, 10).await;
        assert!(notes.iter().all(|n| n["type"] == "chat.new"), "{notes:?}");
        chats.extend(
            notes
                .iter()
                .map(|n| n["chatId"].as_str().unwrap().to_owned()),
        );
        per_manager.insert(m, notes.len());
    }
    assert_eq!(
        per_manager.values().copied().collect::<Vec<_>>(),
        vec![10, 10, 10],
        "{per_manager:?}"
    );
    assert_eq!(chats.len(), 30, "every client went to exactly one manager");

    let crm = app.take(&crm, 60, Duration::from_secs(20)).await;
    let created: Vec<_> = by_type(&crm, "contact.created");
    let deals: Vec<_> = by_type(&crm, "deal.created");
    assert_eq!((created.len(), deals.len()), (30, 30));
    assert!(
        deals
            .iter()
            .all(|d| d.json["pipelineId"] == "p" && d.json["stageId"] == "s1")
    );
    assert!(
        created
            .iter()
            .all(|c| c.routing_key == "acc.contact.created")
    );
    // Quality control saw every new chat.
    assert_eq!(app.notes("acc", "q", 30).await.len(), 30);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_first_messages_of_one_client_at_once_make_one_contact_and_one_deal() {
    let mut app = TestApp::spawn(3).await;
    let crm = app.bind_crm().await;
    setup_account(
        &app,
        "acc",
        &[
            ("m1", "manager", true),
            ("m2", "manager", true),
            ("m3", "manager", true),
        ],
        Some("round_robin"),
    )
    .await;

    let burst = (0..50).map(|i| {
        let app = &app;
        async move {
            app.publish_event(&inbound("acc", "+7 900 000-00-01", &format!("msg {i}")))
                .await
        }
    });
    futures_util::future::join_all(burst).await;

    let crm = app.take(&crm, 2, Duration::from_secs(20)).await;
    let contacts: BTreeSet<_> = ids(&crm, "contact.created", "contactId");
    let deals: BTreeSet<_> = ids(&crm, "deal.created", "dealId");
    assert_eq!((contacts.len(), deals.len()), (1, 1), "{crm:?}");
    assert_eq!(crm.len(), 2, "no CRM event repeated: {crm:?}");

    let mut totals = Vec::new();
    for m in ["m1", "m2", "m3"] {
        totals.push(app.notes("acc", m, 0).await);
    }
    let chosen: Vec<_> = totals.iter().filter(|n| !n.is_empty()).collect();
    assert_eq!(chosen.len(), 1, "one manager got the client");
    assert_eq!(
        (
            count(chosen[0], "chat.new"),
            count(chosen[0], "chat.message")
        ),
        (1, 49)
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_reply_shows_a_new_client_once_to_every_eligible_manager() {
    let mut app = TestApp::spawn(3).await;
    let crm = app.bind_crm().await;
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("lazy", "manager", false),
        ("sup", "supervisor", false),
    ];
    setup_account(&app, "acc", &users, Some("first_reply")).await;

    let burst = (0..50).map(|i| {
        let app = &app;
        async move {
            app.publish_event(&inbound("acc", "client", &format!("msg {i}")))
                .await
        }
    });
    futures_util::future::join_all(burst).await;

    for m in ["m1", "m2", "sup"] {
        let notes = app.notes("acc", m, 50).await;
        assert_eq!(
            (count(&notes, "chat.new"), count(&notes, "chat.message")),
            (1, 49),
            "{m}"
        );
    }
    assert!(
        app.notes("acc", "lazy", 0).await.is_empty(),
        "a manager without new clients is not shown them"
    );
    assert!(
        app.take(&crm, 0, Duration::from_secs(1)).await.is_empty(),
        "nothing is created before a claim"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_republished_event_creates_nothing_twice_and_keeps_the_turn() {
    let mut app = TestApp::spawn(2).await;
    let crm = app.bind_crm().await;
    setup_account(
        &app,
        "acc",
        &[("m1", "manager", true), ("m2", "manager", true)],
        Some("round_robin"),
    )
    .await;

    let first = inbound("acc", "a", "hi");
    for _ in 0..3 {
        app.publish_event(&first).await;
    }
    // Let the copies land before the next client, so the turn is observable.
    let m1 = app.notes("acc", "m1", 1).await;
    app.publish_event(&inbound("acc", "b", "hi")).await;
    let m2 = app.notes("acc", "m2", 1).await;

    assert!(m1.iter().all(|n| n["chatId"] == "a"), "{m1:?}");
    let notification_ids: BTreeSet<_> =
        m1.iter().map(|n| n["notificationId"].to_string()).collect();
    assert_eq!(
        notification_ids.len(),
        1,
        "repeats carry the same notificationId: {m1:?}"
    );
    assert_eq!(m2.len(), 1);
    assert_eq!(
        m2[0]["chatId"], "b",
        "the republished event did not take m2's turn"
    );

    let crm = app.take(&crm, 4, Duration::from_secs(10)).await;
    let contacts: BTreeSet<_> = ids(&crm, "contact.created", "contactId");
    assert_eq!(contacts.len(), 2, "one contact per client: {crm:?}");
    // Any repeat of a CRM event is byte-identical (same eventId, same ids).
    let distinct_bodies: BTreeSet<_> = crm.iter().map(|m| m.body.clone()).collect();
    assert_eq!(
        distinct_bodies.len(),
        4,
        "two clients, each one contact.created and one deal.created"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_that_died_after_applying_has_its_outputs_published_by_the_redelivery() {
    use switchboard::handlers::{self, Decision};
    use switchboard::store::{Applied, Loaded, Store};

    let mut app = TestApp::spawn(1).await;
    let crm = app.bind_crm().await;
    setup_account(
        &app,
        "acc",
        &[("m1", "manager", true), ("m2", "manager", true)],
        Some("round_robin"),
    )
    .await;

    // A worker applies the event's state change, then dies before publishing.
    let body = inbound("acc", "client", "hi");
    let event = switchboard::events::parse(body.to_string().as_bytes()).unwrap();
    let store = Store::new(REDIS, &app.prefix, 2, std::time::Duration::from_secs(60)).unwrap();
    let env = event.envelope();
    let query = handlers::chat_query(&event).unwrap();
    let snapshot = store.snapshot(&env.account_id, &env.event_id, &query);
    let Loaded::Fresh(snapshot) = timed("Store::snapshot", snapshot).await.unwrap() else {
        panic!("event not applied yet")
    };
    let Decision::Apply(plan) = handlers::decide_chat(&event, &snapshot, &Default::default())
    else {
        panic!("not a plan")
    };
    let applied = store.apply(&env.account_id, &env.event_id, &plan);
    assert!(matches!(
        timed("Store::apply", applied).await.unwrap(),
        Applied::Ok
    ));

    // The broker redelivers it to a live worker.
    app.publish_event(&body).await;
    let crm = app.take(&crm, 2, Duration::from_secs(10)).await;
    let expected: BTreeSet<Vec<u8>> = plan
        .outputs
        .iter()
        .filter(|o| o.target == switchboard::output::Target::Crm)
        .map(|o| o.body.as_bytes().to_vec())
        .collect();
    let got: BTreeSet<Vec<u8>> = crm.iter().map(|m| m.body.clone()).collect();
    assert_eq!(
        got, expected,
        "the redelivery published exactly the outputs of the applied plan"
    );
    let manager = plan
        .outputs
        .iter()
        .find(|o| o.target == switchboard::output::Target::Notify)
        .map(|o| serde_json::from_str::<serde_json::Value>(&o.body).unwrap())
        .unwrap();
    let notes = app
        .notes("acc", manager["userId"].as_str().unwrap(), 1)
        .await;
    assert_eq!(notes, vec![manager.clone()], "same notification, same id");
    // And the turn was taken once: the next client goes to the other manager.
    app.publish_event(&inbound("acc", "next", "hi")).await;
    let other = if manager["userId"] == "m1" {
        "m2"
    } else {
        "m1"
    };
    assert_eq!(app.notes("acc", other, 1).await[0]["chatId"], "next");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_known_contact_reaches_its_responsible_and_the_observers() {
    let mut app = TestApp::spawn(2).await;
    let crm = app.bind_crm().await;
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("q", "quality_control", false),
        ("sup", "supervisor", false),
    ];
    setup_account(&app, "acc", &users, Some("round_robin")).await;
    app.apply_account(&contact("acc", "crm-1", "m2", &["ivan"]))
        .await;
    app.publish_event(&inbound("acc", "ivan", "привет")).await;
    let m2 = app.notes("acc", "m2", 1).await;
    app.publish_event(&inbound("acc", "ivan", "ещё")).await;
    let m2_again = app.notes("acc", "m2", 1).await;

    assert_eq!(kinds(&m2), vec!["chat.message"]);
    assert_eq!(m2[0]["contactId"], "crm-1");
    assert_eq!(m2[0]["text"], "привет");
    assert_eq!(m2_again[0]["text"], "ещё");
    assert!(
        app.notes("acc", "m1", 0).await.is_empty(),
        "a manager sees only his own contacts"
    );
    // The chat is new to the channel's watchers at its first message, then continues.
    for observer in ["q", "sup"] {
        assert_eq!(
            kinds(&app.notes("acc", observer, 2).await),
            vec!["chat.new", "chat.message"],
            "{observer}"
        );
    }
    assert!(
        app.take(&crm, 0, Duration::from_secs(1)).await.is_empty(),
        "nothing created for a known contact"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_whose_responsible_lost_access_goes_to_the_next_manager() {
    let mut app = TestApp::spawn(2).await;
    let crm = app.bind_crm().await;
    setup_account(
        &app,
        "acc",
        &[("m1", "manager", true), ("m2", "manager", true)],
        Some("round_robin"),
    )
    .await;
    app.publish_event(&inbound("acc", "client", "first")).await;
    let first = app.notes("acc", "m1", 1).await;
    assert_eq!(kinds(&first), vec!["chat.new"]);
    let contact_id = first[0]["contactId"].clone();

    // m1 loses access to the channel.
    app.publish_event(&user_upserted("acc", "m1", &[])).await;
    app.wait_config("acc", 5).await;
    app.publish_event(&inbound("acc", "client", "again")).await;

    let m2 = app.notes("acc", "m2", 1).await;
    assert_eq!(kinds(&m2), vec!["chat.new"]);
    assert_eq!(
        m2[0]["contactId"], contact_id,
        "the same contact, handed over"
    );
    assert!(app.notes("acc", "m1", 0).await.is_empty());
    let crm = app.take(&crm, 4, Duration::from_secs(10)).await;
    let changed: Vec<_> = by_type(&crm, "contact.responsibleChanged");
    assert_eq!(changed.len(), 1, "{crm:?}");
    assert_eq!(changed[0].json["previousUserId"], "m1");
    assert_eq!(changed[0].json["responsibleUserId"], "m2");
    assert_eq!(
        by_type(&crm, "contact.created").len(),
        1,
        "no second contact"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_no_eligible_manager_supervisors_are_shown_the_new_chat() {
    let mut app = TestApp::spawn(1).await;
    let crm = app.bind_crm().await;
    setup_account(
        &app,
        "acc",
        &[
            ("m1", "manager", false),
            ("sup", "supervisor", false),
            ("q", "quality_control", false),
        ],
        Some("round_robin"),
    )
    .await;
    app.publish_event(&inbound("acc", "client", "hello")).await;
    assert_eq!(kinds(&app.notes("acc", "sup", 1).await), vec!["chat.new"]);
    assert_eq!(kinds(&app.notes("acc", "q", 1).await), vec!["chat.new"]);
    assert!(app.notes("acc", "m1", 0).await.is_empty());
    assert!(
        app.take(&crm, 0, Duration::from_secs(1)).await.is_empty(),
        "the chat waits unclaimed"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_settings_new_clients_are_handled_as_first_reply() {
    let mut app = TestApp::spawn(1).await;
    let crm = app.bind_crm().await;
    setup_account(
        &app,
        "acc",
        &[("m1", "manager", true), ("m2", "manager", true)],
        None,
    )
    .await;
    app.publish_event(&inbound("acc", "client", "hello")).await;
    for m in ["m1", "m2"] {
        assert_eq!(
            kinds(&app.notes("acc", m, 1).await),
            vec!["chat.new"],
            "{m}"
        );
    }
    assert!(app.take(&crm, 0, Duration::from_secs(1)).await.is_empty());
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ids_with_any_printable_characters_keep_their_place() {
    let mut app = TestApp::spawn(2).await;
    let crm = app.bind_crm().await;
    let account = "acc:{tag} *ü.x";
    let users = [
        ("u {1}:é", "manager", true),
        ("u.2*", "manager", true),
        ("u", "manager", true),
    ];
    setup_account(&app, account, &users, Some("round_robin")).await;
    // Another account whose escaped pieces could collide if escaping were naive.
    setup_account(&app, "acc", &[("u", "manager", true)], Some("round_robin")).await;

    for chat in ["x:{y}* z", "{", "}", "日本 語", "a.b"] {
        app.publish_event(&inbound(account, chat, "hi")).await;
    }
    let mut chats = BTreeSet::new();
    for (user, _, _) in users {
        for note in app.notes(account, user, 1).await {
            assert_eq!(note["userId"], user);
            assert_eq!(note["accountId"], account);
            chats.insert(note["chatId"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        chats,
        ["x:{y}* z", "{", "}", "日本 語", "a.b"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert!(
        app.notes("acc", "u", 0).await.is_empty(),
        "the other account saw nothing"
    );
    let crm = app.take(&crm, 10, Duration::from_secs(10)).await;
    assert_eq!(crm.len(), 10);
    assert!(crm.iter().all(|m| m.json["accountId"] == account));
    app.cleanup().await;
}
