//! The scripts that build keys from the account's key base on the cluster:
//! the suitcase (`snapshot.lua`) and waiting chats (`channel.lua`).

use super::*;

/// Asks for `user`'s suitcase of whatsapp chat `chat_id` on a server-named
/// queue and returns the reply.
async fn suitcase(app: &TestApp, user: &str, chat_id: &str) -> Value {
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let queue = app
        .channel
        .queue_declare("".into(), options, FieldTable::default())
        .await
        .unwrap();
    let reply_to = queue.name().to_string();
    let body = event(
        "suitcase.requested",
        "acc",
        json!({ "userId": user, "chatType": "whatsapp", "chatId": chat_id }),
    );
    let props = BasicProperties::default()
        .with_reply_to(reply_to.as_str().into())
        .with_correlation_id(eid().into());
    app.publish_raw(&account_key("acc"), body.to_string().as_bytes(), props)
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(message) = app
            .channel
            .basic_get(reply_to.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            return serde_json::from_slice(&message.delivery.data).unwrap();
        }
        assert!(Instant::now() < deadline, "no suitcase reply");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suitcase_lists_the_users_deals_on_a_cluster() {
    let users = [("m1", "manager", true), ("m2", "manager", true)];
    let (_cluster, app) = on_cluster(1, &users, "round_robin").await;

    let result = bounded(Duration::from_secs(90), async {
        app.apply_account(&event(
            "contact.upserted",
            "acc",
            json!({ "contactId": "c1", "name": "Client", "responsibleUserId": "m1",
                    "contactData": [{ "chatType": "whatsapp", "chatId": "+1" }] }),
        ))
        .await;
        for (deal, user, closed) in [("d1", "m1", true), ("d2", "m1", false), ("d3", "m2", false)] {
            app.apply_account(&event(
                "deal.upserted",
                "acc",
                json!({ "dealId": deal, "name": format!("Deal {deal}"), "contactIds": ["c1"],
                        "responsibleUserId": user, "pipelineId": "p", "stageId": "s1", "closed": closed }),
            ))
            .await;
        }
        let m1 = suitcase(&app, "m1", "+1").await;
        assert_eq!(m1["contactId"], "c1", "{m1}");
        let listed: Vec<(&str, bool)> = m1["deals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["dealId"].as_str().unwrap(), d["closed"].as_bool().unwrap()))
            .collect();
        assert_eq!(listed, vec![("d2", false), ("d1", true)], "open first: {m1}");
        assert_eq!(m1["deals"][0]["uri"], "https://crm.example/deals/d2");
        assert_eq!(
            m1["newDealUri"],
            "https://crm.example/deals/new?contact=c1"
        );
        let m2 = suitcase(&app, "m2", "+1").await;
        assert_eq!(m2["deals"].as_array().unwrap().len(), 1, "{m2}");
        assert_eq!(m2["deals"][0]["dealId"], "d3");
        let unknown = suitcase(&app, "m1", "+2").await;
        assert_eq!(unknown, json!({ "error": "unknown_chat" }));
    })
    .await;
    finish(app, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiting_chats_go_to_a_manager_added_later_on_a_cluster() {
    let (_cluster, mut app) = on_cluster(1, &[("s", "supervisor", false)], "round_robin").await;
    let crm = app.bind_crm().await;

    let result = bounded(Duration::from_secs(90), async {
        app.publish_event(&inbound("acc", "w1", "anyone?")).await;
        app.publish_event(&inbound("acc", "w2", "hello?")).await;
        assert_eq!(app.notes("acc", "s", 2).await.len(), 2);
        // `channel.lua` reads the waiting chats and their chat keys, built
        // from the account's key base, in the account's slot.
        app.publish_event(&event(
            "users.upserted",
            "acc",
            json!({ "users": [{ "userId": "m1", "name": "m1",
                    "access": [{ "channelId": "wa", "role": "manager", "receivesNewClients": true }] }] }),
        ))
        .await;
        let m1 = app.notes("acc", "m1", 2).await;
        let chats: BTreeSet<&str> = m1.iter().map(|n| n["chatId"].as_str().unwrap()).collect();
        assert_eq!(chats, BTreeSet::from(["w1", "w2"]), "{m1:?}");
        assert!(m1.iter().all(|n| n["type"] == "chat.new"), "{m1:?}");
        let crm = app.take(&crm, 4, Duration::from_secs(20)).await;
        assert_eq!(
            (
                by_type(&crm, "contact.created").len(),
                by_type(&crm, "deal.created").len()
            ),
            (2, 2),
            "{crm:?}"
        );
    })
    .await;
    finish(app, result).await;
}
