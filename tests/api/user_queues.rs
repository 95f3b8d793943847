//! Users' notification queues: their type (`--user-queue-type`), a queue a
//! client declared first with another type, and a `users.upserted` of
//! thousands of users that must not hold up another account.

use std::time::Duration;

use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde_json::json;
use switchboard::UserQueueType;
use switchboard::ids::Id;

use crate::helpers::*;

fn typed(kind: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from(kind)),
    );
    args
}

/// Whether declaring `queue` durable with `args` is accepted.
async fn declare_accepted(app: &TestApp, queue: &str, args: FieldTable) -> bool {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    app.declare_accepted(queue, durable, args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_user_queues_are_declared_classic_and_a_clients_quorum_queue_is_kept() {
    let mut app = TestApp::spawn_with(1, |c| c.user_queue_type = UserQueueType::Classic).await;
    let early = app.user_queue("acc", "m2");
    app.track_queue(&early);
    within(Duration::from_secs(120), async {
        // m2's client came first and declared his queue quorum.
        assert!(declare_accepted(&app, &early, typed("quorum")).await);
        let staff = [("m1", "manager", true), ("m2", "quality_control", false)];
        setup_account(&app, "acc", &staff, Some("round_robin")).await;

        let m1 = app.user_queue("acc", "m1");
        assert!(declare_accepted(&app, &m1, typed("classic")).await);
        assert!(!declare_accepted(&app, &m1, typed("quorum")).await);
        assert!(
            declare_accepted(&app, &early, typed("quorum")).await,
            "m2's queue kept as it was"
        );

        app.publish_event(&inbound("acc", "c1", "hello")).await;
        assert_eq!(kinds(&app.notes("acc", "m1", 1).await), ["chat.new"]);
        assert_eq!(kinds(&app.notes("acc", "m2", 1).await), ["chat.new"]);
    })
    .await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_users_upserted_does_not_hold_up_another_account() {
    const USERS: usize = 2000;
    // Classic queues: 2,000 quorum queues would take the shared broker's file handles.
    let app = TestApp::spawn_with(1, |c| c.user_queue_type = UserQueueType::Classic).await;
    within(Duration::from_secs(300), async {
        let users: Vec<_> = (0..USERS)
            .map(|i| json!({ "userId": format!("u{i:04}"), "name": "U", "access": [] }))
            .collect();
        let big = event("users.upserted", "big", json!({ "users": users }));
        app.publish_event(&big).await;
        // Account "big"'s queues are being declared...
        app.wait_queue(&app.user_queue("big", "u0000")).await;

        // ... while another account is set up and gets a new client.
        let small = Account::new("small")
            .staff(&[("m1", "manager", true)])
            .distribution(Some("round_robin"));
        for e in small.events() {
            app.publish_event(&e).await;
        }
        app.publish_event(&inbound("small", "c1", "hello")).await;
        let queue = app.user_queue("small", "m1");
        app.wait_queue(&queue).await;
        let note = loop {
            let get = app
                .channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true });
            if let Some(message) = timed("basic.get", get).await.unwrap() {
                break message.delivery;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // When it arrived, "big" was still declaring: its event is applied
        // only after its last queue is declared.
        let event_id = Id::parse(big["eventId"].as_str().unwrap()).unwrap();
        let applied = format!("{}:{{big}}:event:{}", app.prefix, event_id.key_part());
        let exists = redis::cmd("EXISTS").arg(&applied).clone();
        let big_done: bool = app.redis_cmd(&exists).await;
        assert!(
            !big_done,
            "account small waited for account big's {USERS} queues"
        );
        let note: serde_json::Value = serde_json::from_slice(&note.data).unwrap();
        assert_eq!(note["type"], "chat.new");

        // And "big" finishes: every user of it has his queue.
        while !app.redis_cmd::<bool>(&exists).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for user in ["u0000", "u0999", "u1999"] {
            assert!(
                app.queue_exists(&app.user_queue("big", user)).await,
                "{user}"
            );
        }
    })
    .await;
    app.cleanup().await;
}
