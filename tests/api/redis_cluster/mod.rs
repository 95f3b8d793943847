//! The main flows on a Redis Cluster (`--redis-mode cluster`): round robin
//! with two workers, the claim race, 50 simultaneous first messages, the
//! suitcase, a waiting chat handed out later (`channel.lua`), a master
//! killed with SIGKILL while new clients flow, and the operator commands.
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
use tokio::sync::{RwLock, RwLockReadGuard};

mod failover;
mod flows;
mod operator;
mod suitcase;

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

/// A test's share of the running cluster: its seeds, and the read lock that
/// keeps the failover test from killing a master under it.
struct Shared {
    _lock: RwLockReadGuard<'static, ()>,
    seeds: String,
}

/// Joins the cluster (starting it if need be) and spawns `workers` workers on
/// it, with account "acc" set up with `users`.
async fn on_cluster(
    workers: usize,
    users: &[(&str, &str, bool)],
    distribution: &str,
) -> (Shared, TestApp) {
    let lock = CLUSTER.read().await;
    let seeds = start_cluster().await;
    let app = spawn(workers, &seeds).await;
    setup_account(&app, "acc", users, Some(distribution)).await;
    let shared = Shared { _lock: lock, seeds };
    (shared, app)
}

/// Removes what `app` declared, then fails if the test did.
async fn finish(app: TestApp, result: Result<(), String>) {
    app.cleanup().await;
    result.unwrap();
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
