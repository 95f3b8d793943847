//! Redis failures are told apart by their code, not their text.
//!
//! Out of memory is a passing failure: while Redis refuses writes at
//! `maxmemory` (OOM inside the apply script), events wait and are retried,
//! none is dead-lettered; once memory is raised, every client is handled
//! exactly once. (Before, OOM was classified by matching the error's text,
//! "script", and thousands of valid messages went to `P.dead` as corrupt.)
//!
//! Corrupt data is what a script tags `CORRUPT`: that event goes to `P.dead`,
//! and the worker goes on.

use std::time::Duration;

use crate::helpers::redis_server::RedisServer;
use crate::helpers::*;

const CLIENTS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_at_maxmemory_loses_and_dead_letters_nothing() {
    let redis = RedisServer::start().await;
    let url = redis.url.clone();
    // The app reads, and removes, the keys of the test's own Redis.
    let mut app = TestApp::spawn_with(1, |c| c.redis_url = url).await;
    within(Duration::from_secs(150), scenario(&mut app, &redis)).await;
    let _ = redis
        .query::<String>(&["CONFIG", "SET", "maxmemory", "0"])
        .await;
    app.cleanup().await;
}

async fn scenario(app: &mut TestApp, redis: &RedisServer) {
    let crm = app.bind_crm().await;
    setup_account(
        app,
        "acc",
        &[("m1", "manager", true), ("m2", "manager", true)],
        Some("round_robin"),
    )
    .await;

    // A third of the clients write while Redis has room...
    for n in 0..CLIENTS / 3 {
        app.publish_event(&inbound("acc", &format!("c{n}"), "hello"))
            .await;
    }
    // ...then Redis reaches maxmemory: every write (the apply script's) is refused.
    let used = redis.used_memory().await;
    let limit = (used / 2).to_string();
    let _: String = redis
        .query(&["CONFIG", "SET", "maxmemory", &limit])
        .await
        .unwrap();
    let refused = redis
        .query::<String>(&["SET", &format!("{}:probe", app.prefix), "x"])
        .await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("OOM")),
        "Redis refuses writes now: {refused:?}"
    );
    for n in CLIENTS / 3..CLIENTS {
        app.publish_event(&inbound("acc", &format!("c{n}"), "hello"))
            .await;
    }
    // Long enough for several retries of each waiting event.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let dead_meanwhile = app.take(&app.names.dead(), 0, Duration::from_secs(1)).await;
    assert!(
        dead_meanwhile.is_empty(),
        "nothing is dead-lettered while Redis is out of memory: {:?}",
        dead_meanwhile
            .iter()
            .map(|d| d.header("x-switchboard-error"))
            .collect::<Vec<_>>()
    );

    let _: String = redis
        .query(&["CONFIG", "SET", "maxmemory", "0"])
        .await
        .unwrap();
    app.assert_each_client_once(&crm, CLIENTS, &["m1", "m2"])
        .await;
    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_redis_cannot_read_is_dead_lettered_and_the_worker_goes_on() {
    let app = TestApp::spawn(1).await;
    within(Duration::from_secs(90), corrupt_chat(&app)).await;
    app.cleanup().await;
}

async fn corrupt_chat(app: &TestApp) {
    setup_account(app, "acc", &[("m1", "manager", true)], Some("round_robin")).await;
    let key = format!("{}:{{acc}}:chat:whatsapp:c1", app.prefix);
    let _: () = app
        .redis_cmd(redis::cmd("SET").arg(&key).arg("not json"))
        .await;

    let bad = inbound("acc", "c1", "hello");
    app.publish_event(&bad).await;
    let dead = app.dead(1).await;
    assert_eq!(
        dead.len(),
        1,
        "the event on the corrupt chat is dead-lettered"
    );
    assert_eq!(dead[0].json, bad);
    let reason = dead[0].header("x-switchboard-error").unwrap();
    assert!(
        reason.starts_with("invalid: internal:") && reason.contains("CORRUPT"),
        "{reason}"
    );

    app.publish_event(&inbound("acc", "c2", "hello")).await;
    let notes = app.notes("acc", "m1", 1).await;
    assert_eq!(kinds(&notes), ["chat.new"], "{notes:?}");
    assert_eq!(notes[0]["chatId"], "c2");
}
