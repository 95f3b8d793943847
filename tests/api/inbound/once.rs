//! Effects exactly once: a republished event, a redelivery after a crash.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::helpers::*;
use switchboard::output::Destination;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_republished_event_creates_nothing_twice_and_keeps_the_turn() {
    let Fixture { app, crm, .. } = Fixture::new(
        2,
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

    let Fixture { app, crm, .. } = Fixture::new(
        1,
        &[("m1", "manager", true), ("m2", "manager", true)],
        Some("round_robin"),
    )
    .await;

    // A worker applies the event's state change, then dies before publishing.
    let body = inbound("acc", "client", "hi");
    let event = switchboard::events::parse(body.to_string().as_bytes()).unwrap();
    let store = Store::new(REDIS, &app.prefix, std::time::Duration::from_secs(60)).unwrap();
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
    let Applied::Ok { manager } = timed("Store::apply", applied).await.unwrap() else {
        panic!("not applied")
    };
    // What the manager who took the turn gets.
    let plan = plan
        .with_turn_to(manager.as_ref())
        .expect("a manager of the plan");

    // The broker redelivers it to a live worker.
    app.publish_event(&body).await;
    let crm = app.take(&crm, 2, Duration::from_secs(10)).await;
    let messages = plan.outputs.messages();
    let expected: BTreeSet<Vec<u8>> = messages
        .iter()
        .filter(|m| matches!(m.to, Destination::Crm(_)))
        .map(|m| m.body.as_bytes().to_vec())
        .collect();
    let got: BTreeSet<Vec<u8>> = crm.iter().map(|m| m.body.clone()).collect();
    assert_eq!(
        got, expected,
        "the redelivery published exactly the outputs of the applied plan"
    );
    let manager = messages
        .iter()
        .find(|m| matches!(m.to, Destination::User(_)))
        .map(|m| serde_json::from_str::<serde_json::Value>(&m.body).unwrap())
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
