//! Many partitions and changing their number: the default count spreads over
//! several workers, and `switchboard partitions --to N` changes the count of
//! a live deployment without losing, doubling or reordering an event.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::helpers::ops::{amqp, target};
use crate::helpers::*;
use crate::order::{active_workers, live_workers};
use switchboard::config::DEFAULT_PARTITIONS;
use switchboard::ops::{self, Target, partitions};
use switchboard::worker::partitions::owners;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_count_gives_each_of_three_workers_partitions_to_lead() {
    let app = TestApp::spawn_with(3, |c| c.partitions = DEFAULT_PARTITIONS).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let live = live_workers(&app).await;
        let expected: BTreeMap<String, String> = owners(DEFAULT_PARTITIONS, &live)
            .iter()
            .enumerate()
            .map(|(n, o)| {
                let queue = app.names.inbound_partition(n as u16);
                (queue, o.unwrap_or_default().to_owned())
            })
            .collect();
        let active = active_workers(&app);
        if live.len() == 3 && active == expected {
            let mut led: BTreeMap<&String, usize> = BTreeMap::new();
            for worker in active.values() {
                *led.entry(worker).or_default() += 1;
            }
            assert_eq!(led.len(), 3, "every worker leads some partition: {led:?}");
            assert_eq!(active.len(), usize::from(DEFAULT_PARTITIONS));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not balanced: {} live, {} of {DEFAULT_PARTITIONS} partitions led as the owners say",
            live.len(),
            active
                .iter()
                .filter(|(q, w)| expected.get(*q) == Some(w))
                .count()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    app.cleanup().await;
}

/// Changes the count of `app`'s deployment as the operator command does, on
/// the services of `target` (a standalone Redis or a cluster).
async fn change_count(app: &TestApp, target: &Target, to: u16) -> partitions::Report {
    let conn = amqp(target).await;
    let mut redis = timed("Redis", ops::redis(target)).await.unwrap();
    let report = within(
        Duration::from_secs(120),
        partitions::change(
            &conn,
            &mut redis,
            &app.names,
            to,
            Duration::from_secs(60),
            &mut |line| eprintln!("partitions: {line}"),
        ),
    )
    .await;
    ops::close(&conn).await;
    report.unwrap_or_else(|e| panic!("changing to {to} partitions: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_count_changes_under_a_live_stream_without_loss_doubles_or_reordering() {
    let owned = TestApp::spawn_with(2, |c| c.partitions = 4).await;
    let app = &owned;
    let accounts: Vec<String> = (0..12).map(|a| format!("acc-{a}")).collect();
    stream_through_changes(app, &target(app), &accounts).await;
    let count: Option<String> = app
        .redis_cmd(
            redis::cmd("HGET")
                .arg(format!("{}:partitions", app.prefix))
                .arg("count"),
        )
        .await;
    assert_eq!(count.as_deref(), Some("3"), "the new count is recorded");
    owned.cleanup().await;
}

/// A small stream over `accounts` while the count of `app`'s deployment
/// (started with 4 partitions) goes to 7 and then to 3 through `target`
/// (a dozen accounts are enough that some move at each change: the hash
/// moves about 3 of 7 going from 4 to 7, and the 4 of 7 in removed
/// partitions back):
/// every message reaches quality control once and in order, the routing is
/// back on `P.inbound.hash`, and only the partitions in use are left.
pub(crate) async fn stream_through_changes(app: &TestApp, target: &Target, accounts: &[String]) {
    let users = [("m1", "manager", true), ("q", "quality_control", false)];
    for account in accounts {
        setup_account(app, account, &users, Some("round_robin")).await;
    }
    let (chats, rounds) = (3, 40);
    let publish = async {
        for i in 0..rounds {
            let sends = accounts.iter().flat_map(|account| {
                (0..chats).map(move |c| async move {
                    let event = inbound(account, &format!("chat-{c}"), &i.to_string());
                    app.publish_event(&event).await
                })
            });
            futures_util::future::join_all(sends).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let change = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let up = change_count(app, target, 7).await;
        assert_eq!((up.from, up.to, up.resumed), (4, 7, false));
        let down = change_count(app, target, 3).await;
        assert_eq!((down.from, down.to), (7, 3));
        assert_eq!(
            down.removed,
            (3..7)
                .map(|n| app.names.inbound_partition(n))
                .collect::<Vec<_>>()
        );
    };
    tokio::join!(publish, change);

    // Quality control sees every message of every chat once, in order.
    for account in accounts {
        let by_chat = texts_by_chat(&app.notes(account, "q", chats * rounds).await);
        assert_eq!(by_chat.len(), chats, "{account}");
        for (chat, texts) in &by_chat {
            assert_eq!(
                texts,
                &(0..rounds as u32).collect::<Vec<_>>(),
                "{account} {chat}: lost, doubled or out of order"
            );
        }
    }
    // The routing is back on P.inbound.hash, and only the partitions in use are left.
    assert!(!app.exchange_exists(&app.names.inbound_next()).await);
    let left: BTreeSet<u16> = futures_util::future::join_all(
        (0..8).map(|n| async move { (n, app.queue_exists(&app.names.inbound_partition(n)).await) }),
    )
    .await
    .into_iter()
    .filter_map(|(n, exists)| exists.then_some(n))
    .collect();
    assert_eq!(left, BTreeSet::from([0, 1, 2]));
}
