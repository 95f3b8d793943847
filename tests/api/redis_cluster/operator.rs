//! The operator commands on the cluster (`--redis-mode cluster`): `inspect`,
//! `ping`, `teardown` and `partitions --to N`, through the functions the CLI
//! calls and through the binary itself.

use super::*;
use crate::helpers::ops::amqp;
use crate::helpers::process;
use crate::partitions::stream_through_changes;
use switchboard::ids::Id;
use switchboard::model::{ChatRef, ChatType};
use switchboard::ops::{self, OpsError, Target, inspect, teardown};

const TEAM: [(&str, &str, bool); 3] = [
    ("m1", "manager", true),
    ("m2", "manager", true),
    ("q", "quality_control", false),
];

/// The commands' target: the test's prefix on the cluster of `seeds`.
fn cluster_target(app: &TestApp, seeds: &str) -> Target {
    Target {
        amqp_url: AMQP.into(),
        redis_url: seeds.into(),
        redis_mode: RedisMode::Cluster,
        prefix: app.prefix.clone(),
    }
}

/// The binary's flags for the same target.
fn cluster_flags<'a>(app: &'a TestApp, seeds: &'a str) -> Vec<&'a str> {
    vec![
        "--prefix",
        &app.prefix,
        "--redis-mode",
        "cluster",
        "--redis-url",
        seeds,
    ]
}

/// Runs the built binary with `args`; returns (exit code, stdout, stderr).
fn binary(args: &[&str]) -> (i32, String, String) {
    tokio::task::block_in_place(|| process::run(args, ""))
}

/// The keys of `prefix` each node holds, asked of every node on its own
/// (a node that does not answer holds none here).
async fn keys_per_node(prefix: &str) -> BTreeMap<u16, Vec<String>> {
    let mut found = BTreeMap::new();
    for port in base_port()..base_port() + 6 {
        let scan = redis::cmd("SCAN")
            .arg(0)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(100_000)
            .to_owned();
        if let Ok((_, keys)) = node_query::<(u64, Vec<String>)>(port, &scan).await
            && !keys.is_empty()
        {
            found.insert(port, keys);
        }
    }
    found
}

/// Whether `port` is a master now.
async fn is_master(port: u16) -> bool {
    node_query::<String>(port, redis::cmd("INFO").arg("replication"))
        .await
        .is_ok_and(|info| info.contains("role:master"))
}

fn whatsapp(chat_id: &str) -> ChatRef {
    ChatRef {
        chat_type: ChatType::Whatsapp,
        chat_id: Id::parse(chat_id).unwrap(),
    }
}

/// An account whose slot is on another master than account "acc"'s.
async fn account_on_another_master() -> String {
    let acc = owner(ACC_KEY).await.expect("a master serves account acc");
    for n in 0..100 {
        let account = format!("other-{n}");
        if owner(&format!("{{{account}}}"))
            .await
            .is_some_and(|port| port != acc)
        {
            return account;
        }
    }
    panic!("every account is on the master of acc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inspect_ping_and_teardown_work_on_a_cluster() {
    let (cluster, mut app) = on_cluster(1, &TEAM, "first_reply").await;
    // A second account on another master.
    app.use_redis_cluster(&cluster.seeds);
    let other = account_on_another_master().await;
    setup_account(&app, &other, &TEAM, Some("first_reply")).await;
    let target = cluster_target(&app, &cluster.seeds);

    let result = bounded(Duration::from_secs(180), async {
        app.publish_event(&inbound("acc", "c1", "hello")).await;
        app.notes("acc", "m1", 1).await;
        let mut redis = ops::redis(&target).await.expect("the cluster");
        let view = inspect::chat(
            &mut redis,
            &app.prefix,
            &Id::parse("acc").unwrap(),
            whatsapp("c1"),
        )
        .await
        .unwrap()
        .text();
        for part in ["waiting to be claimed on channel wa", "m1 (User m1)"] {
            assert!(view.contains(part), "{part:?} in {view}");
        }
        // `--waiting` scans every master for the account's chats.
        let account = inspect::account(&mut redis, &app.prefix, &Id::parse("acc").unwrap(), true)
            .await
            .unwrap()
            .text();
        for part in [
            "channel wa (whatsapp, \"Support\")",
            "chats waiting to be claimed: 1",
            "whatsapp:c1 shown to",
        ] {
            assert!(account.contains(part), "{part:?} in {account}");
        }

        ops::ping::ping(&target).await.expect("ping on the cluster");
        let mut args = vec!["ping"];
        args.extend(cluster_flags(&app, &cluster.seeds));
        let (code, stdout, stderr) = binary(&args);
        assert_eq!(
            (code, stdout.starts_with("OK")),
            (0, true),
            "{stdout}{stderr}"
        );

        // Refused while the worker consumes, and nothing removed.
        let conn = amqp(&target).await;
        let busy =
            teardown::teardown(&conn, &mut redis, &app.names, teardown::Options::default()).await;
        ops::close(&conn).await;
        assert!(
            matches!(&busy, Err(OpsError::Refused(m)) if m.contains("consumers")),
            "{busy:?}"
        );

        // The prefix's keys are on several masters (the two accounts at least).
        let before = keys_per_node(&app.prefix).await;
        let mut masters = Vec::new();
        for port in before.keys() {
            if is_master(*port).await {
                masters.push(*port);
            }
        }
        assert!(
            masters.len() >= 2,
            "keys on masters {masters:?}: {before:?}"
        );

        app.stop_workers().await;
        let mut args = vec!["teardown"];
        args.extend(cluster_flags(&app, &cluster.seeds));
        let (code, stdout, stderr) = binary(&args);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains(&format!("deleted queue {}.dead", app.prefix)),
            "{stdout}"
        );
        // The users' queues of both accounts were found through both masters.
        assert!(!app.queue_exists(&app.user_queue("acc", "m1")).await);
        assert!(!app.queue_exists(&app.user_queue(&other, "q")).await);
        // Every node, replicas included, ends up with no key of the prefix.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = keys_per_node(&app.prefix).await;
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "keys left: {left:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (code, _, stderr) = binary(&args);
        assert_eq!(
            code, 0,
            "a second teardown finds nothing and succeeds: {stderr}"
        );
    })
    .await;
    finish(app, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seeds_that_do_not_answer_are_named_without_their_password() {
    let target = Target {
        amqp_url: AMQP.into(),
        redis_url: "redis://ops:s3cret@127.0.0.1:1,redis://ops:s3cret@127.0.0.1:2".into(),
        redis_mode: RedisMode::Cluster,
        prefix: "sb-nobody".into(),
    };
    let failed = bounded(Duration::from_secs(30), ops::redis(&target))
        .await
        .unwrap();
    let Err(error @ OpsError::RedisConnect { .. }) = failed else {
        panic!("{:?}", failed.map(|_| ()));
    };
    let said = error.to_string();
    assert!(
        said.contains("127.0.0.1:1: nothing accepts connections")
            && said.contains("127.0.0.1:2: nothing accepts connections")
            && !said.contains("s3cret"),
        "{said}"
    );
    // A seed that is one server, not a cluster node, is said to be so.
    let standalone = Target {
        redis_url: REDIS.into(),
        ..target
    };
    let said = bounded(Duration::from_secs(30), ops::redis(&standalone))
        .await
        .unwrap()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(said.contains("is it a Redis Cluster?"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_count_changes_under_a_live_stream_on_a_cluster() {
    let lock = CLUSTER.read().await;
    let seeds = start_cluster().await;
    let mut app = spawn(2, &seeds).await;
    // The harness's waits for the accounts' set-up go through the cluster:
    // the stream's accounts are on every master.
    app.use_redis_cluster(&seeds);
    let target = cluster_target(&app, &seeds);
    let accounts: Vec<String> = (0..12).map(|a| format!("acc-{a}")).collect();
    let mut masters = BTreeSet::new();
    for account in &accounts {
        masters.insert(owner(&format!("{{{account}}}")).await);
    }
    assert_eq!(masters.len(), 3, "the accounts are on every master");

    let result = bounded(Duration::from_secs(300), async {
        stream_through_changes(&app, &target, &accounts).await;
        let mut conn = cluster_conn(&seeds).await;
        let count: Option<String> = redis::cmd("HGET")
            .arg(format!("{}:partitions", app.prefix))
            .arg("count")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(count.as_deref(), Some("3"), "the new count is recorded");
        // Remove everything of the prefix on every master.
        app.stop_workers().await;
        let amqp_conn = amqp(&target).await;
        let mut redis = ops::redis(&target).await.unwrap();
        let options = teardown::Options {
            yes: false,
            force: false,
        };
        let report = teardown::teardown(&amqp_conn, &mut redis, &app.names, options).await;
        ops::close(&amqp_conn).await;
        assert!(report.unwrap().keys > 0);
    })
    .await;
    drop(lock);
    finish(app, result).await;
}
