//! Exactly-once effects of replies, the removal of a manager, and a new
//! user's queue declared before anything is routed to him.

use super::*;

/// The distinct bodies among `got`.
fn distinct(got: &[Got]) -> BTreeSet<Vec<u8>> {
    got.iter().map(|g| g.body.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_republished_reply_claims_sends_and_notifies_once() {
    let acc = "acc";
    let users = TEAM;
    let Fixture {
        app,
        crm: crm_queue,
        outbound: outbound_queue,
    } = Fixture::new(3, &users, Some("first_reply")).await;
    let everyone = TEAM.map(|u| u.0);
    show_new_chat(&app, acc, &everyone, "new").await;

    // The claiming reply, three times at once (same eventId), then twice more once it is applied.
    let claim = outbound(acc, "new", "m1", "hello, I am m1");
    publish_all(&app, &[claim.clone(), claim.clone(), claim.clone()]).await;
    let mut sent = take_until(&app, &outbound_queue, |got| !got.is_empty()).await;
    publish_all(&app, &[claim.clone(), claim.clone()]).await;
    // A losing reply, twice; a later reply of the winner, three times at once.
    let late = outbound(acc, "new", "m2", "me too");
    publish_all(&app, &[late.clone(), late.clone()]).await;
    let follow = outbound(acc, "new", "m1", "how can I help?");
    publish_all(&app, &[follow.clone(), follow.clone(), follow.clone()]).await;

    let has = |got: &[Got], kind: &str, message: Option<&Value>| {
        got.iter()
            .any(|g| g.json["type"] == kind && message.is_none_or(|m| g.json["messageId"] == *m))
    };
    sent.extend(
        take_until(&app, &outbound_queue, |got| {
            has(got, "message.send", Some(&follow["messageId"]))
        })
        .await,
    );
    let crm = take_until(&app, &crm_queue, |got| {
        has(got, "contact.created", None) && has(got, "deal.created", None)
    })
    .await;
    let m1 = take_until(&app, &app.user_queue(acc, "m1"), |got| {
        has(got, "chat.assigned", None)
    })
    .await;
    let m2 = take_until(&app, &app.user_queue(acc, "m2"), |got| {
        has(got, "chat.withdrawn", None) && has(got, "message.rejected", Some(&late["messageId"]))
    })
    .await;
    let q = take_until(&app, &app.user_queue(acc, "q"), |got| {
        has(got, "chat.message", Some(&claim["messageId"]))
            && has(got, "chat.message", Some(&follow["messageId"]))
    })
    .await;
    let queues = BTreeMap::from([("m1", m1), ("m2", m2), ("q", q)]);

    // Every copy of one output is byte-identical: distinct bodies = distinct causes.
    let kinds_of = |got: &[Got]| -> Vec<String> {
        let mut k: Vec<String> = distinct(got)
            .iter()
            .map(|b| {
                serde_json::from_slice::<Value>(b).unwrap()["type"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect();
        k.sort();
        k
    };
    assert_eq!(
        kinds_of(&crm),
        ["contact.created", "deal.created"],
        "one claim: {crm:?}"
    );
    let contact_id = by_type(&crm, "contact.created")[0].json["contactId"].clone();
    assert_eq!(
        distinct(&sent).len(),
        2,
        "one message.send per reply: {sent:?}"
    );
    for request in [&claim, &follow] {
        let sends: Vec<&Got> = sent
            .iter()
            .filter(|g| g.json["messageId"] == request["messageId"])
            .collect();
        assert!(!sends.is_empty(), "{request} was sent");
        assert_send(sends[0], request, s(&contact_id));
    }
    assert_eq!(
        kinds_of(&queues["m1"]),
        ["chat.assigned"],
        "{:?}",
        queues["m1"]
    );
    assert_eq!(
        kinds_of(&queues["m2"]),
        ["chat.withdrawn", "message.rejected"],
        "{:?}",
        queues["m2"]
    );
    assert_eq!(
        kinds_of(&queues["q"]),
        ["chat.message", "chat.message"],
        "{:?}",
        queues["q"]
    );
    let rejected = queues["m2"]
        .iter()
        .find(|g| g.json["type"] == "message.rejected")
        .unwrap();
    assert_eq!(
        (&rejected.json["messageId"], &rejected.json["reason"]),
        (&late["messageId"], &json!("claimed_by_other"))
    );
    let mut seen_ids = BTreeSet::new();
    for (user, got) in &queues {
        for body in distinct(got) {
            let note: Value = serde_json::from_slice(&body).unwrap();
            assert!(
                seen_ids.insert(note["notificationId"].to_string()),
                "{user}: a notificationId reused for another body: {note}"
            );
            assert_eq!(note["contactId"], contact_id, "{user}: {note}");
        }
    }
    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_manager_loses_his_replies_and_his_clients() {
    let acc = "acc";
    let users = TEAM;
    let Fixture {
        app,
        crm: crm_queue,
        outbound: outbound_queue,
    } = Fixture::new(2, &users, Some("round_robin")).await;
    let everyone = TEAM.map(|u| u.0);

    let hello = inbound(acc, "client", "hello");
    app.publish_event(&hello).await;
    let crm = app.take(&crm_queue, 2, WAIT).await;
    let created = by_type(&crm, "contact.created");
    assert_eq!(created.len(), 1, "{crm:?}");
    let contact_id = created[0].json["contactId"].clone();
    let owner = s(&created[0].json["responsibleUserId"]).to_owned();
    let other = if owner == "m1" { "m2" } else { "m1" };
    expect_notes(
        &app,
        acc,
        &everyone,
        &[
            key(&owner, "chat.new", "client", "", ""),
            key("q", "chat.new", "client", "", ""),
        ],
    )
    .await;

    app.publish_event(&event("users.removed", acc, json!({ "userIds": [owner] })))
        .await;
    app.wait_config(acc, 5).await;

    // His reply: no_access, not sent, nobody told.
    let his = outbound(acc, "client", &owner, "still here");
    app.publish_event(&his).await;
    expect_notes(
        &app,
        acc,
        &everyone,
        &[key(
            &owner,
            "message.rejected",
            "client",
            s(&his["messageId"]),
            "no_access",
        )],
    )
    .await;

    // His client's next message goes to the next manager in turn.
    let again = inbound(acc, "client", "hello?");
    app.publish_event(&again).await;
    let crm = app.take(&crm_queue, 1, WAIT).await;
    let changed = by_type(&crm, "contact.responsibleChanged");
    assert_eq!(changed.len(), 1, "{crm:?}");
    let change = &changed[0].json;
    assert_eq!(
        (
            &change["contactId"],
            &change["responsibleUserId"],
            &change["previousUserId"]
        ),
        (&contact_id, &json!(other), &json!(owner)),
        "{change}"
    );
    assert_eq!(
        changed[0].routing_key,
        format!("{acc}.contact.responsibleChanged")
    );
    assert!(
        by_type(&crm, "contact.created").is_empty(),
        "no second contact: {crm:?}"
    );
    let got = expect_notes(
        &app,
        acc,
        &everyone,
        &[
            key(other, "chat.new", "client", "", ""),
            key("q", "chat.message", "client", s(&again["messageId"]), ""),
        ],
    )
    .await;
    assert_eq!(got[other][0]["contactId"], contact_id, "{:?}", got[other]);

    // The new responsible may answer.
    let answer = outbound(acc, "client", other, "I take over");
    app.publish_event(&answer).await;
    let sent = app.take(&outbound_queue, 1, WAIT).await;
    assert_eq!(
        sent.len(),
        1,
        "only the new responsible's reply was sent: {sent:?}"
    );
    assert_send(&sent[0], &answer, s(&contact_id));
    expect_notes(
        &app,
        acc,
        &everyone,
        &[key(
            "q",
            "chat.message",
            "client",
            s(&answer["messageId"]),
            "",
        )],
    )
    .await;
    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
    app.cleanup().await;
}

/// "A per-user queue is declared (durable) as soon as the user becomes known, so
/// nothing sent to him is lost before his client connects." A client who writes
/// right after `users.upserted` was applied must reach every eligible manager.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_users_queue_exists_before_anything_is_routed_to_him() {
    let app = TestApp::spawn(1).await;
    let acc = "acc";
    let managers: Vec<String> = (0..40).map(|i| format!("m{i:02}")).collect();
    let mut setup = Account::new(acc).without_pipelines();
    for m in &managers {
        setup = setup.user(m, &[("wa", "manager", true)]);
    }
    setup.apply(&app).await;
    // The users are known now (no settings: every eligible manager is shown the new chat).
    app.publish_event(&inbound(acc, "new", "hello")).await;
    let everyone: Vec<&str> = managers.iter().map(String::as_str).collect();
    let shown: Vec<NoteKey> = everyone
        .iter()
        .map(|m| key(m, "chat.new", "new", "", ""))
        .collect();
    expect_notes(&app, acc, &everyone, &shown).await;
    app.cleanup().await;
}
