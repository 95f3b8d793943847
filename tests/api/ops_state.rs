//! `switchboard inspect`, `publish`, `watch` and `teardown` on the state a
//! real worker built.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::ops::{amqp, depth, send, target, wait_depth};
use crate::helpers::process;
use crate::helpers::*;
use serde_json::json;
use switchboard::ids::Id;
use switchboard::model::{ChatRef, ChatType};
use switchboard::names::Names;
use switchboard::ops::{self, OpsError, inspect, teardown, watch};
use tokio_util::sync::CancellationToken;

fn chat(id: &str) -> ChatRef {
    ChatRef {
        chat_type: ChatType::Whatsapp,
        chat_id: Id::parse(id).unwrap(),
    }
}

fn acc() -> Id {
    Id::parse("acc").unwrap()
}

const TEAM: [(&str, &str, bool); 4] = [
    ("m1", "manager", true),
    ("m2", "manager", true),
    ("q", "quality_control", false),
    ("s", "supervisor", false),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_claim_state_contact_deals_and_the_account() {
    let mut test_app = TestApp::spawn(1).await;
    let app = &mut test_app;
    setup_account(app, "acc", &TEAM, Some("first_reply")).await;
    send(app, &[inbound("acc", "c1", "hello")]).await;
    app.notes("acc", "m1", 1).await;
    let mut redis = ops::redis(&target(app)).await.unwrap();

    let waiting = inspect::chat(&mut redis, &app.prefix, &acc(), chat("c1"))
        .await
        .unwrap()
        .text();
    for part in [
        "waiting to be claimed on channel wa",
        "m1 (User m1)",
        "m2 (User m2)",
        "contact:     none yet",
    ] {
        assert!(waiting.contains(part), "{part:?} in {waiting}");
    }

    send(app, &[outbound("acc", "c1", "m1", "hi, I am Mia")]).await;
    app.notes("acc", "m1", 1).await;
    let view = inspect::chat(&mut redis, &app.prefix, &acc(), chat("c1"))
        .await
        .unwrap();
    let settled = view.text();
    for part in [
        "claim:       settled",
        "responsible: m1 (User m1)",
        "was shown as new to:",
        "pipeline p stage s1",
        "[open]",
    ] {
        assert!(settled.contains(part), "{part:?} in {settled}");
    }
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["contact"]["responsibleUserId"], "m1");
    assert_eq!(json["deals"].as_array().unwrap().len(), 1);

    let never = inspect::chat(&mut redis, &app.prefix, &acc(), chat("nobody"))
        .await
        .unwrap()
        .text();
    assert!(never.contains("never seen"), "{never}");

    send(app, &[inbound("acc", "c2", "anyone?")]).await;
    app.notes("acc", "m2", 1).await;
    let account = inspect::account(&mut redis, &app.prefix, &acc(), true)
        .await
        .unwrap();
    let text = account.text();
    for part in [
        "new clients: first_reply into pipeline p stage s1",
        "channel wa (whatsapp, \"Support\")",
        "manager          m1 (User m1), takes new clients",
        "quality_control  q (User q)",
        "supervisor       s (User s)",
        "next: m1 (User m1)",
        "chats waiting to be claimed: 1",
        "whatsapp:c2 shown to",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    assert!(!text.contains("whatsapp:c1"), "c1 is settled: {text}");
    let unknown = inspect::account(&mut redis, &app.prefix, &Id::parse("nope").unwrap(), false)
        .await
        .unwrap();
    assert!(
        unknown.text().contains("knows nothing"),
        "{}",
        unknown.text()
    );
    test_app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_from_stdin_reaches_the_worker_with_the_accounts_key() {
    let mut test_app = TestApp::spawn(1).await;
    let app = &mut test_app;
    // A dotted account id: the routing key must be escaped (`pub%2Eacc`).
    let account = "pub.acc";
    let events = [
        event(
            "channels.upserted",
            account,
            json!({ "channels": [{ "channelId": "wa", "chatType": "whatsapp", "name": "Support" }] }),
        ),
        event(
            "users.upserted",
            account,
            json!({ "users": [{ "userId": "m1", "name": "Mia", "access": [{ "channelId": "wa", "role": "manager", "receivesNewClients": true }] }] }),
        ),
    ];
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    let (code, stdout, stderr) = binary(&["publish", "--prefix", &app.prefix, "-"], &lines);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("Published 2 events to {}.inbound (confirmed).", app.prefix)
    );
    app.wait_config(account, 2).await;
    let array = json!([inbound(account, "c1", "hello")]).to_string();
    let (code, stdout, _) = binary(&["publish", "--prefix", &app.prefix, "-"], &array);
    assert_eq!(
        (code, stdout.trim().starts_with("Published 1 events")),
        (0, true)
    );
    let notes = app.notes(account, "m1", 1).await;
    assert_eq!(kinds(&notes), ["chat.new"]);

    // One bad event: nothing is sent, and the message says which.
    let bad = format!("{}\n{{\"type\":\"x\"}}\n", inbound(account, "c2", "lost?"));
    let (code, _, stderr) = binary(&["publish", "--prefix", &app.prefix, "-"], &bad);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("event 2: no string `accountId`"),
        "{stderr}"
    );
    assert!(
        app.notes(account, "m1", 0).await.is_empty(),
        "nothing was published"
    );

    let (code, _, stderr) = binary(
        &["publish", "--prefix", &format!("{}-none", app.prefix), "-"],
        &lines,
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("does not exist: start a worker"),
        "{stderr}"
    );
    test_app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_notifications_and_keep_leaves_them_queued() {
    let mut test_app = TestApp::spawn(1).await;
    let app = &mut test_app;
    setup_account(app, "acc", &[("m1", "manager", true)], Some("first_reply")).await;
    let queue = app.user_queue("acc", "m1");
    for keep in [false, true] {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let conn = amqp(&target(app)).await;
        let watching = tokio::spawn({
            let (names, lines, stop) = (app.names.clone(), lines.clone(), stop.clone());
            async move {
                let seen = watch::watch(
                    &conn,
                    &names,
                    &acc(),
                    &Id::parse("m1").unwrap(),
                    keep,
                    &stop,
                    |body| {
                        lines.lock().unwrap().push(watch::line(body));
                    },
                )
                .await;
                ops::close(&conn).await;
                seen
            }
        });
        let chat_id = format!("client-{keep}");
        send(app, &[inbound("acc", &chat_id, "hello")]).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while lines.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "watch printed nothing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        assert_eq!(timed("watch", watching).await.unwrap().unwrap(), 1);
        let line = lines.lock().unwrap()[0].clone();
        assert!(
            line.contains("chat.new")
                && line.contains(&format!("whatsapp:{chat_id} on wa"))
                && line.contains("\"hello\""),
            "{line}"
        );
        // Acked when printed, or returned to the queue with --keep.
        wait_depth(app, &queue, u32::from(keep)).await;
    }

    let conn = amqp(&target(app)).await;
    let unknown = watch::watch(
        &conn,
        &app.names,
        &acc(),
        &Id::parse("ghost").unwrap(),
        false,
        &CancellationToken::new(),
        |_| {},
    )
    .await;
    ops::close(&conn).await;
    assert!(
        matches!(&unknown, Err(OpsError::NotFound(m)) if m.contains("not known yet")),
        "{unknown:?}"
    );
    test_app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_removes_every_queue_exchange_and_key_of_the_prefix() {
    let mut test_app = TestApp::spawn(1).await;
    let app = &mut test_app;
    let account = "tear.down";
    setup_account(app, account, &TEAM, Some("round_robin")).await;
    send(
        app,
        &[
            inbound(account, "c1", "hello"),
            event("no.such.type", account, json!({})),
        ],
    )
    .await;
    app.notes(account, "m1", 1).await;
    wait_depth(app, &app.names.dead(), 1).await;
    let users: Vec<String> = TEAM
        .iter()
        .map(|(u, _, _)| app.user_queue(account, u))
        .collect();

    let target = target(app);
    let conn = amqp(&target).await;
    let mut redis = ops::redis(&target).await.unwrap();
    let busy =
        teardown::teardown(&conn, &mut redis, &app.names, teardown::Options::default()).await;
    assert!(
        matches!(&busy, Err(OpsError::Refused(m)) if m.contains("consumers")),
        "{busy:?}"
    );
    let default = teardown::teardown(
        &conn,
        &mut redis,
        &Names::new("switchboard"),
        teardown::Options::default(),
    )
    .await;
    assert!(
        matches!(&default, Err(OpsError::Refused(m)) if m.contains("--yes")),
        "{default:?}"
    );
    ops::close(&conn).await;
    assert!(
        app.queue_exists(&users[0]).await,
        "nothing was removed while refusing"
    );

    let (code, stdout, _) = binary(&["ping", "--prefix", &app.prefix], "");
    assert_eq!((code, stdout.starts_with("OK")), (0, true), "{stdout}");

    app.stop_workers().await;
    let (code, stdout, stderr) = binary(&["teardown", "--prefix", &app.prefix], "");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("deleted queue {}.dead (1 messages)", app.prefix)),
        "{stdout}"
    );
    assert!(stdout.contains("9 queues, 5 exchanges"), "{stdout}");

    let mut gone = users.clone();
    gone.push(app.names.dead());
    gone.extend((0..4).map(|n| app.names.inbound_partition(n)));
    for queue in &gone {
        assert!(!app.queue_exists(queue).await, "{queue} still exists");
    }
    let (next, keys): (u64, Vec<String>) = timed(
        "SCAN",
        redis::cmd("SCAN")
            .arg(0)
            .arg("MATCH")
            .arg(format!("{}:*", app.prefix))
            .arg("COUNT")
            .arg(100_000)
            .query_async(&mut redis),
    )
    .await
    .unwrap();
    assert_eq!((next, keys), (0, vec![]), "no Redis key is left");
    assert_eq!(depth(app, &app.names.dead()).await, 0);
    let (code, _, stderr) = binary(&["ping", "--prefix", &app.prefix], "");
    assert_eq!(code, 1);
    assert!(stderr.contains("no worker has started on it"), "{stderr}");
    test_app.cleanup().await;
}

/// Runs the built binary with `stdin`; returns (exit code, stdout, stderr).
fn binary(args: &[&str], stdin: &str) -> (i32, String, String) {
    tokio::task::block_in_place(|| process::run(args, stdin))
}
