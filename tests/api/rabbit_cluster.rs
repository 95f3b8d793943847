//! Workers on a RabbitMQ cluster: `--amqp-url` lists its three nodes, the
//! workers connect to the first, and that node is killed (SIGKILL) in the
//! middle of a stream of several accounts' chats. Nothing may be lost or
//! doubled (one notification id per cause; repeats of the same id are allowed
//! by the contract and counted), each chat's messages must reach each user in
//! order, and the workers must carry on through the other nodes.
//!
//! Self-contained: the test starts the local cluster with
//! `scripts/rabbitmq-cluster start` (nodes sbc1..3@localhost, AMQP on
//! 127.0.0.1:5681-5683; a no-op when it already runs whole) and brings the
//! killed node back the same way before it ends. The test itself talks to the
//! third node, which is never killed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions};
use lapin::types::FieldTable;
use serde_json::Value;
use switchboard::ids::Id;
use switchboard::names;

use crate::helpers::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/rabbitmq-cluster");

const ACCOUNTS: [&str; 4] = ["acc-a", "acc-b", "acc-c", "acc-d"];
const CHATS: usize = 10;
const MESSAGES: usize = 8;
const USERS: [&str; 2] = ["m1", "q"];

/// Runs `scripts/rabbitmq-cluster ARGS` to completion (within 240 s); its stdout.
async fn script(args: &[&str]) -> String {
    let run = tokio::process::Command::new("bash")
        .arg(SCRIPT)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .unwrap_or_else(|_| panic!("scripts/rabbitmq-cluster {args:?}: not done within 240 s"))
        .expect("bash runs");
    assert!(
        out.status.success(),
        "scripts/rabbitmq-cluster {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts the cluster (or checks it runs whole); the URL of each node.
async fn start_cluster() -> Vec<String> {
    let out = script(&["start"]).await;
    let list = out.lines().last().unwrap_or_default().trim();
    list.split(',').map(str::to_owned).collect()
}

/// `rabbitmqctl --formatter json ARGS` on node 3 (which sees the whole cluster).
async fn ctl_json(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["ctl", "3"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--formatter", "json"]);
    serde_json::from_str(&script(&all).await).expect("rabbitmqctl prints JSON")
}

/// The AMQP ports of the nodes the workers' connections are on, one per connection.
async fn worker_ports() -> Vec<u64> {
    ctl_json(&["list_connections", "client_properties", "port"])
        .await
        .iter()
        // The connection name the worker gives (client property connection_name).
        .filter(|c| {
            c["client_properties"]
                .to_string()
                .contains("\"switchboard-worker\"")
        })
        .map(|c| c["port"].as_u64().unwrap())
        .collect()
}

fn port_of(url: &str) -> u64 {
    url.rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Records when each notification arrives on `queue` (consumed on a channel
/// of the test's connection), and what it is, until `n` distinct ones arrived
/// (repeats are recorded too) or `limit` passed.
fn arrivals(
    channel: lapin::Channel,
    queue: String,
    n: usize,
    limit: Duration,
) -> tokio::task::JoinHandle<Vec<(Instant, Value)>> {
    tokio::spawn(async move {
        let options = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let consume = channel.basic_consume(
            queue.as_str().into(),
            "timing".into(),
            options,
            FieldTable::default(),
        );
        let mut consumer = timed("basic.consume", consume).await.unwrap();
        let deadline = Instant::now() + limit;
        let mut times = Vec::new();
        let mut distinct = BTreeSet::new();
        while distinct.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, consumer.next()).await {
                Ok(Some(Ok(delivery))) => {
                    let note: Value = serde_json::from_slice(&delivery.data).unwrap();
                    distinct.insert(note["notificationId"].to_string());
                    times.push((Instant::now(), note));
                }
                _ => break,
            }
        }
        times
    })
}

fn chat(c: usize) -> String {
    format!("+7900{c:04}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_under_a_stream_loses_doubles_and_reorders_nothing() {
    let urls = start_cluster().await;
    assert_eq!(urls.len(), 3, "{urls:?}");
    let list = urls.join(",");
    let mut app = TestApp::spawn_on(&urls[2], 2, |c| c.amqp_url = list.clone()).await;
    let crm = app.bind_crm().await;
    let staff = [("m1", "manager", true), ("q", "quality_control", false)];
    for account in ACCOUNTS {
        setup_account(&app, account, &staff, Some("round_robin")).await;
    }
    // A copy of every quality-control notification, to time the stream.
    let notify = app.names.notify();
    let user_key = |a: &str| names::user_key(&Id::parse(a).unwrap(), &Id::parse("q").unwrap());
    let timing = app.bind(&notify, &user_key(ACCOUNTS[0])).await;
    for account in &ACCOUNTS[1..] {
        let bind = app.channel.queue_bind(
            timing.as_str().into(),
            notify.as_str().into(),
            user_key(account).as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        );
        timed("queue.bind", bind).await.unwrap();
    }
    let total = ACCOUNTS.len() * CHATS * MESSAGES;

    let scenario = async {
        // Quorum queues replicate over the three nodes; the workers are on the first.
        let queues = ctl_json(&["list_queues", "name", "type", "members"]).await;
        let ours: Vec<&Value> = queues
            .iter()
            .filter(|q| q["name"].as_str().unwrap().starts_with(&app.prefix))
            .filter(|q| q["type"] == "quorum")
            .collect();
        assert!(ours.len() >= 4 + ACCOUNTS.len() * USERS.len(), "{queues:?}");
        for queue in &ours {
            assert_eq!(queue["members"].as_array().unwrap().len(), 3, "{queue}");
        }
        let victim = port_of(&urls[0]);
        assert_eq!(
            worker_ports().await,
            vec![victim; 2],
            "both workers on node 1"
        );

        let channel = timed("channel.open", app.conn.create_channel())
            .await
            .unwrap();
        let seen = arrivals(channel, timing.clone(), total, Duration::from_secs(240));
        let started = Instant::now();
        let mut killed = None;
        for k in 0..MESSAGES {
            for account in ACCOUNTS {
                for c in 0..CHATS {
                    if killed.is_none() && k == MESSAGES / 3 {
                        script(&["kill", "1"]).await;
                        killed = Some(Instant::now());
                    }
                    app.publish_event(&inbound(account, &chat(c), &k.to_string()))
                        .await;
                }
            }
        }
        let published = started.elapsed();
        let (times, copies): (Vec<Instant>, Vec<Value>) = seen.await.unwrap().into_iter().unzip();
        let done = started.elapsed();
        let killed = killed.expect("node 1 was killed");
        let distinct: BTreeSet<String> = copies
            .iter()
            .map(|c| c["notificationId"].to_string())
            .collect();
        // Short of them when the timing queue waited out its 240 s: say so,
        // then name what is missing per user below.
        eprintln!(
            "quality control: {} of {total} messages within {done:?}",
            distinct.len()
        );

        // An event given up (refused again and again) is dead-lettered, not lost: say so first.
        let dead = app.dead(0).await;
        let reasons: Vec<Option<String>> = dead
            .iter()
            .map(|d| d.header("x-switchboard-error"))
            .collect();
        assert!(dead.is_empty(), "nothing dead-lettered: {reasons:?}");

        // Per account and user: one notification id per message, in order per chat.
        let mut repeats = 0;
        for account in ACCOUNTS {
            for user in USERS {
                let notes = app.notes(account, user, CHATS * MESSAGES).await;
                repeats += notes.len() - check_notes(account, user, &notes, &copies);
            }
        }
        // The timing queue (bound apart from quality control's own) got them all too.
        assert_eq!(
            distinct.len(),
            total,
            "every message reached quality control"
        );
        let crm_got = app
            .take(&crm, 2 * ACCOUNTS.len() * CHATS, Duration::from_secs(60))
            .await;
        let mut contacts: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for m in by_type(&crm_got, "contact.created") {
            let chat = m.json["contactData"][0]["chatId"]
                .as_str()
                .unwrap()
                .to_owned();
            let account = m.json["accountId"].as_str().unwrap().to_owned();
            contacts
                .entry((account, chat))
                .or_default()
                .insert(m.json["contactId"].to_string());
        }
        assert_eq!(
            contacts.len(),
            ACCOUNTS.len() * CHATS,
            "a contact per client"
        );
        assert!(
            contacts.values().all(|ids| ids.len() == 1),
            "a second contact"
        );

        // The workers carry on through the other nodes.
        let ports = worker_ports().await;
        assert_eq!(ports.len(), 2, "{ports:?}");
        assert!(ports.iter().all(|p| *p != victim), "{ports:?}");

        let before = times.iter().filter(|t| **t < killed).count();
        let recovered = times
            .iter()
            .find(|t| **t > killed)
            .map(|t| *t - killed)
            .unwrap_or_default();
        let gap = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        eprintln!(
            "rabbitmq node kill: {total} messages ({} accounts x {CHATS} chats x {MESSAGES}), \
             {before} handled before node 1 was killed; first notification after the kill in \
             {recovered:?}, longest pause {gap:?}; {repeats} repeated notifications (same id); \
             workers now on ports {ports:?}; published in {published:?}, all handled in {done:?}",
            ACCOUNTS.len()
        );
    };
    let result = tokio::time::timeout(Duration::from_secs(300), scenario).await;
    // Node 1 comes back (it rejoins by itself) for the next run.
    let back = Instant::now();
    let urls_again = start_cluster().await;
    eprintln!("node 1 back in the cluster after {:?}", back.elapsed());
    assert_eq!(urls_again, urls);
    app.cleanup().await;
    result.expect("the scenario finished within 300 s");
}

/// Checks one user's notes of one account: every message of every chat has
/// exactly one notification id, and each chat's messages came in the order
/// published (first copies; repeats carry the same id). Returns the number of
/// distinct notifications. `copies` are the quality-control notifications the
/// timing queue received: a message missing from a user's queue is named with
/// whether quality control's copy of it arrived (then the event was handled and
/// one of its outputs is missing; if not, the event itself never got through).
fn check_notes(account: &str, user: &str, notes: &[Value], copies: &[Value]) -> usize {
    let mut ids: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut first: BTreeSet<String> = BTreeSet::new();
    let mut order: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for note in notes {
        let chat = note["chatId"].as_str().unwrap().to_owned();
        let text = note["text"].as_str().unwrap().to_owned();
        let id = note["notificationId"].as_str().unwrap().to_owned();
        ids.entry((chat.clone(), text.clone()))
            .or_default()
            .insert(id.clone());
        if first.insert(id) {
            order.entry(chat).or_default().push(text.parse().unwrap());
        }
    }
    let copied = |chat: &str, text: &str| {
        copies
            .iter()
            .any(|c| c["accountId"] == account && c["chatId"] == chat && c["text"] == text)
    };
    let missing: Vec<String> = (0..CHATS)
        .flat_map(|c| (0..MESSAGES).map(move |k| (chat(c), k.to_string())))
        .filter(|cause| !ids.contains_key(cause))
        .map(|(chat, text)| {
            let copy = if copied(&chat, &text) {
                "quality control got it"
            } else {
                "quality control did not get it either"
            };
            format!("{chat} {text} ({copy})")
        })
        .collect();
    assert_eq!(
        ids.len(),
        CHATS * MESSAGES,
        "{account}/{user}: a message lost ({} of {}): {missing:?}",
        ids.len(),
        CHATS * MESSAGES
    );
    for (cause, set) in &ids {
        assert_eq!(
            set.len(),
            1,
            "{account}/{user}: {cause:?} notified under two ids"
        );
    }
    for (chat, seq) in &order {
        let expected: Vec<usize> = (0..MESSAGES).collect();
        assert_eq!(seq, &expected, "{account}/{user}: chat {chat} out of order");
    }
    first.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_starts_on_the_next_node_when_the_first_does_not_answer() {
    // Nothing listens on port 1: the worker goes on to the shared broker.
    let list = format!("amqp://guest:guest@127.0.0.1:1/%2f,{AMQP}");
    let app = TestApp::spawn_with(1, |c| c.amqp_url = list).await;
    within(Duration::from_secs(60), async {
        setup_account(&app, "acc", &[("m1", "manager", true)], Some("round_robin")).await;
        app.publish_event(&inbound("acc", "c1", "hello")).await;
        assert_eq!(kinds(&app.notes("acc", "m1", 1).await), ["chat.new"]);
    })
    .await;
    app.cleanup().await;
}
