//! The main flows on a Redis Cluster (`--redis-mode cluster`): round robin
//! with two workers, the claim race, 50 simultaneous first messages, the
//! suitcase, a waiting chat handed out later (`channel.lua`), and a master
//! killed with SIGKILL while new clients flow.
//!
//! Self-contained: each test starts the local cluster with
//! `scripts/redis-cluster start` (3 masters + 3 replicas on ports 7000-7005,
//! cluster-node-timeout 2000 ms; a no-op when it already runs, and it brings
//! back a node a failover test killed). The failover test runs alone (a
//! write lock); the others share the cluster (read locks).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::helpers::*;
use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};
use switchboard::RedisMode;
use tokio::sync::RwLock;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/redis-cluster");

/// Held for reading by every test, for writing by the one that kills a master.
static CLUSTER: RwLock<()> = RwLock::const_new(());

/// The key of the test account's hash tag: every key of account "acc" is in its slot.
const ACC_KEY: &str = "{acc}";

fn base_port() -> u16 {
    std::env::var("SWITCHBOARD_REDIS_CLUSTER_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(7000)
}

fn node_url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// Starts the local cluster (or checks it runs and is whole); returns the seeds.
async fn start_cluster() -> String {
    let run = tokio::process::Command::new("bash")
        .args([SCRIPT, "start"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("scripts/redis-cluster start finished within 120 s")
        .expect("bash runs");
    assert!(
        out.status.success(),
        "scripts/redis-cluster start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap_or_default().trim().to_owned()
}

/// One command to one node, under a timeout.
async fn node_query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Result<T, String> {
    let work = async {
        let client = redis::Client::open(node_url(port)).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        cmd.query_async::<T>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(3), work)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// The port of the master that serves `key` now: the node that answers a
/// GET of it (a replica answers MOVED, a dead node nothing).
async fn owner(key: &str) -> Option<u16> {
    for port in base_port()..base_port() + 6 {
        if node_query::<Option<String>>(port, redis::cmd("GET").arg(key))
            .await
            .is_ok()
        {
            return Some(port);
        }
    }
    None
}

/// `fut`, or an error after `limit` (so the test can clean up before failing).
async fn bounded<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| format!("not done within {limit:?}"))
}

/// A test app whose workers use the cluster; its own Redis client (used by
/// the harness's waits and clean-up) points at the master of account "acc".
async fn spawn(workers: usize, seeds: &str) -> TestApp {
    let mut app = TestApp::spawn_with(workers, |c| {
        c.redis_url = seeds.to_owned();
        c.redis_mode = RedisMode::Cluster;
    })
    .await;
    point_at_owner(&mut app).await;
    app
}

async fn point_at_owner(app: &mut TestApp) {
    let port = owner(ACC_KEY).await.expect("a master serves account acc");
    app.use_redis(&node_url(port));
}

/// A cluster client of the test's own, for keys outside account "acc".
async fn cluster_conn(seeds: &str) -> redis::cluster_async::ClusterConnection {
    let seeds: Vec<&str> = seeds.split(',').collect();
    let client = redis::cluster::ClusterClient::new(seeds).unwrap();
    tokio::time::timeout(Duration::from_secs(10), client.get_async_connection())
        .await
        .expect("cluster connection within 10 s")
        .expect("cluster connection")
}

fn by_type<'a>(got: &'a [Got], kind: &str) -> Vec<&'a Got> {
    got.iter().filter(|m| m.json["type"] == kind).collect()
}

/// Distinct causes (ids) of `kind` per chat on the CRM queue.
fn created_per_chat(crm: &[Got], kind: &str, id: &str) -> BTreeMap<String, BTreeSet<String>> {
    let contacts: BTreeMap<String, String> = by_type(crm, "contact.created")
        .iter()
        .map(|m| {
            (
                m.json["contactId"].to_string(),
                m.json["contactData"][0]["chatId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    let mut per_chat: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in by_type(crm, kind) {
        let contact = match kind {
            "deal.created" => m.json["contactIds"][0].to_string(),
            _ => m.json["contactId"].to_string(),
        };
        let chat = contacts.get(&contact).cloned().unwrap_or_default();
        per_chat
            .entry(chat)
            .or_default()
            .insert(m.json[id].to_string());
    }
    per_chat
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_is_even_over_two_workers_on_a_cluster() {
    let _shared = CLUSTER.read().await;
    let seeds = start_cluster().await;
    let mut app = spawn(2, &seeds).await;
    let crm = app.bind_crm().await;
    let managers = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("m3", "manager", true),
    ];
    setup_account(&app, "acc", &managers, Some("round_robin")).await;

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
        let mut conn = cluster_conn(&seeds).await;
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
    app.cleanup().await;
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_first_messages_of_one_client_make_one_contact_on_a_cluster() {
    let _shared = CLUSTER.read().await;
    let seeds = start_cluster().await;
    let mut app = spawn(3, &seeds).await;
    let crm = app.bind_crm().await;
    let managers = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("m3", "manager", true),
    ];
    setup_account(&app, "acc", &managers, Some("round_robin")).await;

    let result = bounded(Duration::from_secs(120), async {
        let burst = (0..50).map(|i| {
            let app = &app;
            async move {
                app.publish_event(&inbound("acc", "+7 900 000-00-01", &format!("msg {i}")))
                    .await
            }
        });
        futures_util::future::join_all(burst).await;
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
    app.cleanup().await;
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_claim_race_has_one_winner_per_chat_on_a_cluster() {
    let _shared = CLUSTER.read().await;
    let seeds = start_cluster().await;
    let mut app = spawn(3, &seeds).await;
    let crm_queue = app.bind_crm().await;
    let outbound_queue = app.bind_outbound().await;
    const MANAGERS: [&str; 4] = ["m1", "m2", "m3", "m4"];
    let users: Vec<(&str, &str, bool)> = MANAGERS.iter().map(|m| (*m, "manager", true)).collect();
    setup_account(&app, "acc", &users, Some("first_reply")).await;

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
    app.cleanup().await;
    result.unwrap();
}

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
    let _shared = CLUSTER.read().await;
    let seeds = start_cluster().await;
    let app = spawn(1, &seeds).await;
    let users = [("m1", "manager", true), ("m2", "manager", true)];
    setup_account(&app, "acc", &users, Some("round_robin")).await;

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
    app.cleanup().await;
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiting_chats_go_to_a_manager_added_later_on_a_cluster() {
    let _shared = CLUSTER.read().await;
    let seeds = start_cluster().await;
    let mut app = spawn(1, &seeds).await;
    let crm = app.bind_crm().await;
    setup_account(
        &app,
        "acc",
        &[("s", "supervisor", false)],
        Some("round_robin"),
    )
    .await;

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
    app.cleanup().await;
    result.unwrap();
}

/// Arrival times of messages on `queue`, taken by a task of its own until
/// `n` arrived or `limit` passed; `count` follows how many arrived so far.
fn arrivals(
    channel: lapin::Channel,
    queue: String,
    n: usize,
    limit: Duration,
    count: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Vec<Instant>> {
    tokio::spawn(async move {
        let deadline = Instant::now() + limit;
        let mut times = Vec::new();
        while times.len() < n && Instant::now() < deadline {
            let got = tokio::time::timeout(
                Duration::from_secs(5),
                channel.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true }),
            )
            .await;
            match got {
                Ok(Ok(Some(_))) => {
                    times.push(Instant::now());
                    count.store(times.len(), Ordering::Relaxed);
                }
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        times
    })
}

/// The process id of the redis-server on `port`.
async fn server_pid(port: u16) -> u32 {
    let info: String = node_query(port, redis::cmd("INFO").arg("server"))
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .expect("INFO server has process_id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_killed_under_load_loses_and_doubles_nothing() {
    let _alone = CLUSTER.write().await;
    let seeds = start_cluster().await;
    let mut app = spawn(2, &seeds).await;
    let crm = app.bind_crm().await;
    let timing = app.bind_crm().await;
    let managers = ["m1", "m2", "m3"];
    let users: Vec<_> = managers.iter().map(|m| (*m, "manager", true)).collect();
    setup_account(&app, "acc", &users, Some("round_robin")).await;
    let n = 300;
    let victim = owner(ACC_KEY).await.expect("a master serves acc");

    let result = bounded(Duration::from_secs(240), async {
        let channel = app.conn.create_channel().await.unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = arrivals(
            channel,
            timing.clone(),
            2 * n,
            Duration::from_secs(200),
            count.clone(),
        );
        let started = Instant::now();
        let publish = async {
            for i in 0..n {
                app.publish_event(&inbound("acc", &format!("client-{i:03}"), "hello"))
                    .await;
            }
            started.elapsed()
        };
        // Kill the master of the account's slot while new clients are being handled.
        let chaos = async {
            while count.load(Ordering::Relaxed) < 2 * 40 {
                assert!(started.elapsed() < Duration::from_secs(60), "nothing handled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let pid = server_pid(victim).await;
            let killed = Instant::now();
            let status = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -KILL {pid}");
            let promoted = loop {
                if let Some(port) = owner(ACC_KEY).await
                    && port != victim
                {
                    break (port, killed.elapsed());
                }
                assert!(killed.elapsed() < Duration::from_secs(30), "no failover");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            // A supervisor restarts the dead server: it rejoins as a replica of
            // the new master (until then that master has no replica to WAIT for).
            let rejoined = start_cluster().await;
            assert_eq!(rejoined, seeds);
            (killed, promoted, killed.elapsed())
        };
        let (published, (killed, (new_master, promoted_after), rejoined_after)) =
            tokio::join!(publish, chaos);
        let times = seen.await.unwrap();
        let done = started.elapsed();

        point_at_owner(&mut app).await;
        let got = app.take(&crm, 2 * n, Duration::from_secs(60)).await;
        let contacts = created_per_chat(&got, "contact.created", "contactId");
        let deals = created_per_chat(&got, "deal.created", "dealId");
        assert_eq!(contacts.len(), n, "every client got a contact");
        assert_eq!(deals.len(), n, "every client got a deal");
        assert!(contacts.values().all(|ids| ids.len() == 1), "a second contact");
        assert!(deals.values().all(|ids| ids.len() == 1), "a second deal");

        // Notifications per client: one cause, to one manager; the round robin even.
        let mut owner_of: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        let mut per_manager = Vec::new();
        for m in managers {
            let notes = app.notes("acc", m, n / managers.len()).await;
            let causes: BTreeSet<String> =
                notes.iter().map(|x| x["notificationId"].to_string()).collect();
            for note in &notes {
                owner_of
                    .entry(note["chatId"].as_str().unwrap().to_owned())
                    .or_default()
                    .insert(m);
            }
            per_manager.push(causes.len());
        }
        assert_eq!(owner_of.len(), n, "every client reached a manager");
        assert!(owner_of.values().all(|ms| ms.len() == 1), "a client given twice");
        assert_eq!(per_manager, vec![n / 3; 3], "the round robin stayed even");

        // The state survived the failover: a second message of every client
        // reaches his manager and creates nothing.
        for i in 0..n {
            app.publish_event(&inbound("acc", &format!("client-{i:03}"), "again"))
                .await;
        }
        let mut again = 0;
        for m in managers {
            let notes = app.notes("acc", m, n / 3).await;
            for note in &notes {
                assert_eq!(note["type"], "chat.message", "{note}");
                let chat = note["chatId"].as_str().unwrap();
                assert!(owner_of[chat].contains(m), "{chat} went to {m}");
            }
            again += notes
                .iter()
                .map(|x| x["chatId"].to_string())
                .collect::<BTreeSet<_>>()
                .len();
        }
        assert_eq!(again, n, "every second message reached its manager");
        let extra = app.take(&crm, 0, Duration::from_secs(2)).await;
        assert!(extra.is_empty(), "a known client created something: {extra:?}");
        assert!(app.dead(0).await.is_empty(), "nothing dead-lettered");

        // Figures.
        let gap = times
            .windows(2)
            .filter(|w| w[1] >= killed || w[0] >= killed)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        let before = times.iter().filter(|t| **t < killed).count() / 2;
        eprintln!(
            "failover: {n} new clients ({before} handled before the kill); master :{victim} killed, \
             :{new_master} serving after {promoted_after:?}, old master back as its replica after \
             {rejoined_after:?}; longest pause in CRM output {gap:?}; \
             all published in {published:?}, all handled in {done:?}"
        );
    })
    .await;
    // Bring the killed node back (it rejoins as a replica) for the next tests.
    let seeds_again = start_cluster().await;
    assert_eq!(seeds_again, seeds);
    app.cleanup().await;
    result.unwrap();
}
