//! A user queue a client declared first, with other arguments (here: classic,
//! where the worker declares quorum), is used as it is: the user gets his
//! notifications in it, the worker keeps running, and other accounts keep
//! being served. (Before, the 406 of the quorum declare closed the publishing
//! channel, the worker reconnected in a loop and finally exited with status 0.)

use std::time::Duration;

use crate::helpers::*;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_user_queue_declared_by_a_client_is_delivered_to() {
    let mut app = TestApp::spawn(1).await;
    app.track_queue(&app.user_queue("acc", "m1"));
    within(Duration::from_secs(120), scenario(&app)).await;
    app.cleanup().await;
}

async fn scenario(app: &TestApp) {
    // m1's client came first and declared his queue classic.
    let queue = app.user_queue("acc", "m1");
    let classic = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let declare = app
        .channel
        .queue_declare(queue.as_str().into(), classic, FieldTable::default());
    timed("queue.declare (classic)", declare).await.unwrap();

    setup_account(
        app,
        "acc",
        &[("m1", "manager", true), ("q", "quality_control", false)],
        Some("round_robin"),
    )
    .await;
    setup_account(
        app,
        "other",
        &[("o1", "manager", true)],
        Some("round_robin"),
    )
    .await;

    for (n, chat) in ["c1", "c2"].iter().enumerate() {
        app.publish_event(&inbound("acc", chat, "hello")).await;
        let m1 = app.notes("acc", "m1", 1).await;
        assert_eq!(kinds(&m1), ["chat.new"], "client {n}: {m1:?}");
        assert_eq!(m1[0]["chatId"], *chat);
        let q = app.notes("acc", "q", 1).await;
        assert_eq!(kinds(&q), ["chat.new"], "client {n}: {q:?}");
    }
    // The same users again (a replay of the declare) changes nothing.
    app.apply_account(&user_upserted("acc", "m1", &[("wa", "manager", true)]))
        .await;
    app.publish_event(&inbound("acc", "c1", "again")).await;
    let m1 = app.notes("acc", "m1", 1).await;
    assert_eq!(kinds(&m1), ["chat.message"], "{m1:?}");

    app.publish_event(&inbound("other", "o-c1", "hi")).await;
    let o1 = app.notes("other", "o1", 1).await;
    assert_eq!(kinds(&o1), ["chat.new"], "{o1:?}");
    assert!(app.dead(0).await.is_empty(), "nothing was dead-lettered");
}
