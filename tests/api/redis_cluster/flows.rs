//! Round robin, first messages and claims racing over several workers on the cluster.

use super::*;

/// Three managers who take new clients.
const MANAGERS: [(&str, &str, bool); 3] = [
    ("m1", "manager", true),
    ("m2", "manager", true),
    ("m3", "manager", true),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_is_even_over_two_workers_on_a_cluster() {
    let (cluster, mut app) = on_cluster(2, &MANAGERS, "round_robin").await;
    let crm = app.bind_crm().await;

    let result = bounded(Duration::from_secs(120), async {
        let sends = (0..30).map(|i| {
            let app = &app;
            async move {
                app.publish_event(&inbound("acc", &format!("client-{i}"), "hello"))
                    .await
            }
        });
        futures_util::future::join_all(sends).await;
        app.assert_each_client_once(&crm, 30, &["m1", "m2", "m3"])
            .await;

        // The worker registry (its own slot, outside every account) has both workers.
        let mut conn = cluster_conn(&cluster.seeds).await;
        let workers: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{}:workers", app.prefix))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(workers.len(), 2, "{workers:?}");
        assert!(app.dead(0).await.is_empty(), "nothing dead-lettered");
    })
    .await;
    finish(app, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_first_messages_of_one_client_make_one_contact_on_a_cluster() {
    let (_cluster, mut app) = on_cluster(3, &MANAGERS, "round_robin").await;
    let crm = app.bind_crm().await;

    let result = bounded(Duration::from_secs(120), async {
        app.publish_burst("acc", "+7 900 000-00-01", 50).await;
        let crm = app.take(&crm, 2, Duration::from_secs(20)).await;
        assert_eq!(
            (
                by_type(&crm, "contact.created").len(),
                by_type(&crm, "deal.created").len(),
                crm.len()
            ),
            (1, 1, 2),
            "{crm:?}"
        );
        let mut got = Vec::new();
        for m in ["m1", "m2", "m3"] {
            got.push(app.notes("acc", m, 0).await);
        }
        let chosen: Vec<_> = got.iter().filter(|n| !n.is_empty()).collect();
        assert_eq!(chosen.len(), 1, "one manager got the client");
        let kinds = kinds(chosen[0]);
        assert_eq!(
            (
                kinds.iter().filter(|k| **k == "chat.new").count(),
                kinds.iter().filter(|k| **k == "chat.message").count()
            ),
            (1, 49)
        );
    })
    .await;
    finish(app, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_claim_race_has_one_winner_per_chat_on_a_cluster() {
    const MANAGERS: [&str; 4] = ["m1", "m2", "m3", "m4"];
    let users: Vec<(&str, &str, bool)> = MANAGERS.iter().map(|m| (*m, "manager", true)).collect();
    let (_cluster, mut app) = on_cluster(3, &users, "first_reply").await;
    let crm_queue = app.bind_crm().await;
    let outbound_queue = app.bind_outbound().await;

    let result = bounded(Duration::from_secs(150), async {
        let chats: Vec<String> = (0..10).map(|i| format!("race-{i}")).collect();
        for chat in &chats {
            app.publish_event(&inbound("acc", chat, "hello")).await;
        }
        for m in MANAGERS {
            let shown = app.notes("acc", m, chats.len()).await;
            assert_eq!(shown.len(), chats.len(), "{m} saw every new chat");
        }
        // Every manager answers every chat at once.
        let answers: Vec<Value> = chats
            .iter()
            .flat_map(|c| MANAGERS.map(|m| outbound("acc", c, m, &format!("{m} takes {c}"))))
            .collect();
        futures_util::future::join_all(answers.iter().map(|a| app.publish_event(a))).await;

        let sent = app
            .take(&outbound_queue, chats.len(), Duration::from_secs(30))
            .await;
        let crm = app
            .take(&crm_queue, 2 * chats.len(), Duration::from_secs(30))
            .await;
        let mut winner = BTreeMap::new();
        for m in &sent {
            let chat = m.json["chatId"].as_str().unwrap().to_owned();
            let user = m.json["userId"].as_str().unwrap().to_owned();
            assert!(
                winner.insert(chat.clone(), user).is_none(),
                "{chat}: two replies sent"
            );
        }
        assert_eq!(winner.len(), chats.len(), "one reply sent per chat");
        let contacts = created_per_chat(&crm, "contact.created", "contactId");
        let deals = created_per_chat(&crm, "deal.created", "dealId");
        for chat in &chats {
            assert_eq!(contacts.get(chat).map(BTreeSet::len), Some(1), "{chat}");
            assert_eq!(deals.get(chat).map(BTreeSet::len), Some(1), "{chat}");
        }
        for m in by_type(&crm, "contact.created") {
            let chat = m.json["contactData"][0]["chatId"].as_str().unwrap();
            assert_eq!(m.json["responsibleUserId"], winner[chat].as_str());
        }
        for m in MANAGERS {
            let notes = app.notes("acc", m, 0).await;
            for chat in &chats {
                let of = |kind: &str| {
                    notes
                        .iter()
                        .filter(|n| n["chatId"] == chat.as_str() && n["type"] == kind)
                        .count()
                };
                if winner[chat] == m {
                    assert_eq!((of("chat.assigned"), of("message.rejected")), (1, 0));
                } else {
                    assert_eq!(
                        (
                            of("chat.assigned"),
                            of("message.rejected"),
                            of("chat.withdrawn")
                        ),
                        (0, 1, 1),
                        "{m} on {chat}"
                    );
                }
            }
        }
        assert!(app.dead(0).await.is_empty(), "nothing dead-lettered");
    })
    .await;
    finish(app, result).await;
}
