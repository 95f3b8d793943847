//! Per-chat order across workers: each partition has one active consumer at a
//! time, and workers hand partitions over to balance without breaking order.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::*;
use switchboard::worker::partitions;

/// The active consumer's worker id for each partition, from `rabbitmqctl`.
pub(crate) fn active_workers(app: &TestApp) -> BTreeMap<String, String> {
    // `timeout`: a broker that stopped answering must fail the test, not hang it.
    let out = Command::new("timeout")
        .args([
            "30",
            "rabbitmqctl",
            "list_consumers",
            "-q",
            "--no-table-headers",
            "queue_name",
            "consumer_tag",
            "active",
        ])
        .output()
        .expect("rabbitmqctl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("{}.inbound.", app.prefix);
    text.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.len() == 3 && cols[0].starts_with(&prefix) && cols[2] == "true").then(|| {
                let worker = cols[1].split(".p").next().unwrap_or_default().to_owned();
                (cols[0].to_owned(), worker)
            })
        })
        .collect()
}

/// The live workers in the registry.
pub(crate) async fn live_workers(app: &TestApp) -> Vec<String> {
    let key = format!("{}:workers", app.prefix);
    app.redis_cmd(redis::cmd("ZRANGE").arg(key).arg(0).arg(-1))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_of_a_chat_keep_their_order_while_workers_join() {
    let app = TestApp::spawn_with(1, |c| c.partitions = 8).await;
    let users = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("q", "quality_control", false),
    ];
    setup_account(&app, "acc", &users, Some("round_robin")).await;

    let (chats, per_chat) = (24, 20);
    let publish = async {
        for i in 0..per_chat {
            let sends = (0..chats).map(|c| {
                let app = &app;
                async move {
                    app.publish_event(&inbound("acc", &format!("chat-{c}"), &i.to_string()))
                        .await
                }
            });
            futures_util::future::join_all(sends).await;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    };
    // Two more workers join mid-stream; partitions move to them.
    let join = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..2 {
            app.start_worker(app.config()).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    tokio::join!(publish, join);

    // Quality control sees every message of every chat, in order.
    let by_chat = texts_by_chat(&app.notes("acc", "q", chats * per_chat).await);
    assert_eq!(by_chat.len(), chats);
    for (chat, texts) in &by_chat {
        assert_eq!(
            texts,
            &(0..per_chat as u32).collect::<Vec<_>>(),
            "{chat} out of order or incomplete"
        );
    }
    // And so does each chat's manager.
    for m in ["m1", "m2"] {
        for (chat, texts) in texts_by_chat(&app.notes("acc", m, 1).await) {
            assert_eq!(
                texts,
                (0..per_chat as u32).collect::<Vec<_>>(),
                "{m}: {chat}"
            );
        }
    }

    // The partitions end up spread as the rendezvous owners say.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let live = live_workers(&app).await;
        let owners = partitions::owners(8, &live);
        let active = active_workers(&app);
        let expected: BTreeMap<String, String> = owners
            .iter()
            .enumerate()
            .map(|(n, o)| {
                (
                    app.names.inbound_partition(n as u16),
                    o.unwrap_or_default().to_owned(),
                )
            })
            .collect();
        if live.len() == 3 && active == expected {
            let distinct: BTreeSet<_> = active.values().collect();
            assert!(distinct.len() >= 2, "{active:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partitions not balanced: live {live:?}, active {active:?}, owners {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Every worker, the two that joined too, ends cleanly.
    app.cleanup().await;
}
