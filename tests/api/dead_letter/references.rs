//! Input that refers to what the account does not have (a channel, a user,
//! a pipeline or stage) or that cannot be answered: refused whole, the
//! worker goes on.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_to_an_unknown_channel_is_dead_lettered() {
    let f = fixture(1).await;
    let mut body = inbound(ACC, "c-bad", "hi");
    body["channelId"] = json!("ghost-channel");
    let header = expect_dead_json(&f, &key(), &body, "unknown_channel").await;
    assert!(header.contains("ghost-channel"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

/// A client m1 serves, so a reply to it could be sent.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_from_an_unknown_user_is_dead_lettered() {
    let f = fixture(1).await;
    served_client(&f).await;
    let bad = outbound(ACC, "c-1", "ghost", "let me in");
    let header = expect_dead_json(&f, &key(), &bad, "unknown_user").await;
    assert!(header.contains("ghost"), "{header}");
    assert!(
        !f.app.queue_exists(&f.app.user_queue(ACC, "ghost")).await,
        "no queue for an unknown user"
    );
    expect_reply_sent(&f).await;
    expect_next_client(&f, "c-next", "m2").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_to_an_unknown_channel_is_dead_lettered() {
    let f = fixture(1).await;
    served_client(&f).await;
    let mut bad = outbound(ACC, "c-1", "m1", "via nowhere");
    bad["channelId"] = json!("ghost-channel");
    expect_dead_json(&f, &key(), &bad, "unknown_channel").await;
    expect_reply_sent(&f).await;
    expect_next_client(&f, "c-next", "m2").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_upserted_with_an_unknown_channel_is_refused_whole() {
    let f = fixture(1).await;
    // "a0" alone is valid and would sort before m1, so had he been created he
    // would get the next client; "a1" has one good and one unknown channel.
    let body = event(
        "users.upserted",
        ACC,
        json!({ "users": [
            { "userId": "a0", "name": "Valid", "access": [{ "channelId": "wa", "role": "manager", "receivesNewClients": true }] },
            { "userId": "a1", "name": "Half valid", "access": [
                { "channelId": "wa", "role": "manager", "receivesNewClients": true },
                { "channelId": "ghost-channel", "role": "supervisor", "receivesNewClients": false } ] },
        ] }),
    );
    let header = expect_dead_json(&f, ACC, &body, "unknown_channel").await;
    assert!(header.contains("ghost-channel"), "{header}");
    for user in ["a0", "a1"] {
        assert!(
            !f.app.queue_exists(&f.app.user_queue(ACC, user)).await,
            "queue of {user} was declared"
        );
    }
    expect_next_client(&f, "c-next", "m1").await;
    for user in ["a0", "a1"] {
        assert!(
            !f.app.queue_exists(&f.app.user_queue(ACC, user)).await,
            "queue of {user} was declared"
        );
    }
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_removed_of_an_unknown_user_is_refused_whole() {
    let f = fixture(1).await;
    // Had m1 been removed (the known one of the two), the next client would go to m2.
    let body = event("users.removed", ACC, json!({ "userIds": ["m1", "ghost"] }));
    let header = expect_dead_json(&f, ACC, &body, "unknown_user").await;
    assert!(header.contains("ghost"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_upserted_with_an_unknown_responsible_is_dead_lettered() {
    let f = fixture(1).await;
    // Had it been taken, c-next would be a known contact, not a new client.
    let body = event(
        "contact.upserted",
        ACC,
        json!({ "contactId": "crm-1", "name": "Known client", "responsibleUserId": "ghost",
                "contactData": [{ "chatType": "whatsapp", "chatId": "c-next" }] }),
    );
    expect_dead_json(&f, ACC, &body, "unknown_user").await;
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deal_upserted_with_an_unknown_responsible_is_dead_lettered() {
    let f = fixture(1).await;
    let body = event(
        "deal.upserted",
        ACC,
        json!({ "dealId": "d-1", "name": "Doors", "contactIds": ["crm-1"], "responsibleUserId": "ghost",
                "pipelineId": "p", "stageId": "s1", "closed": false }),
    );
    expect_dead_json(&f, ACC, &body, "unknown_user").await;
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

/// `settings.updated` switching to first_reply (which would show the next
/// client to both managers and create nothing) with the given pipeline and stage.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_with_an_unknown_pipeline_are_dead_lettered() {
    let f = fixture(1).await;
    let header = expect_dead_json(
        &f,
        ACC,
        &first_reply_settings("ghost-pipeline", "s1"),
        "invalid",
    )
    .await;
    assert!(header.contains("ghost-pipeline"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_with_an_unknown_stage_are_dead_lettered() {
    let f = fixture(1).await;
    let header = expect_dead_json(
        &f,
        ACC,
        &first_reply_settings("p", "ghost-stage"),
        "invalid",
    )
    .await;
    assert!(header.contains("ghost-stage"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suitcase_without_reply_to_is_dead_lettered() {
    let f = fixture(1).await;
    let props = BasicProperties::default().with_correlation_id(ShortString::from("corr-1"));
    expect_dead(&f, &key(), &bytes(&suitcase("c-none")), props, "invalid").await;

    // The same request with somewhere to answer is answered.
    let reply = reply_queue(&f.app, FieldTable::default()).await;
    let props = BasicProperties::default()
        .with_correlation_id(ShortString::from("corr-2"))
        .with_reply_to(ShortString::from(reply.as_str()));
    f.app
        .publish_raw(&key(), &bytes(&suitcase("c-none")), props)
        .await;
    let answers = f.app.take(&reply, 1, WAIT).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].json, json!({ "error": "unknown_chat" }));
    assert_eq!(answers[0].correlation_id(), Some("corr-2".to_owned()));

    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}
