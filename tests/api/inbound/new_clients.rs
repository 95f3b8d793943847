//! New clients: who is shown them, who gets them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_is_even_over_three_managers_and_two_workers() {
    let managers = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("m3", "manager", true),
        ("q", "quality_control", false),
    ];
    let Fixture { app, crm, .. } = Fixture::new(2, &managers, Some("round_robin")).await;

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
    let Fixture { app, crm, .. } = Fixture::new(
        3,
        &[
            ("m1", "manager", true),
            ("m2", "manager", true),
            ("m3", "manager", true),
        ],
        Some("round_robin"),
    )
    .await;

    app.publish_burst("acc", "+7 900 000-00-01", 50).await;

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
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("lazy", "manager", false),
        ("sup", "supervisor", false),
    ];
    let Fixture { app, crm, .. } = Fixture::new(3, &users, Some("first_reply")).await;

    app.publish_burst("acc", "client", 50).await;

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
async fn with_no_eligible_manager_supervisors_are_shown_the_new_chat() {
    let Fixture { app, crm, .. } = Fixture::new(
        1,
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
    let Fixture { app, crm, .. } =
        Fixture::new(1, &[("m1", "manager", true), ("m2", "manager", true)], None).await;
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
