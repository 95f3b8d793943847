//! Known contacts and ids that need escaping.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_known_contact_reaches_its_responsible_and_the_observers() {
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("q", "quality_control", false),
        ("sup", "supervisor", false),
    ];
    let Fixture { app, crm, .. } = Fixture::new(2, &users, Some("round_robin")).await;
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
    let Fixture { app, crm, .. } = Fixture::new(
        2,
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
