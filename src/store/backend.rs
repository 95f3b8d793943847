//! The two kinds of Redis the store speaks to, behind one connection type.
//!
//! - **Standalone**: a deadpool of multiplexed connections to one server, as
//!   before.
//! - **Cluster**: one shared [`ClusterConnection`] (redis-rs `cluster-async`).
//!   It multiplexes every request over one connection per node, routes each
//!   command and script by the slot of its first key, follows `MOVED`/`ASK`
//!   and refreshes its slot map after a failover, so a pool of them would only
//!   multiply sockets. It is made at the first use, not at start-up, like the
//!   pool's connections: a cluster that is not up yet is a passing failure of
//!   the first [`crate::store::Store::ping`], which start-up waits out.
//!
//! Every script gets every key it names in KEYS, and every key of an account
//! carries the account's hash tag, so each invocation runs on the one node
//! that owns its account's slot. Keys a script builds itself (`snapshot.lua`,
//! `channel.lua`) are in that same slot, which Redis Cluster accepts because
//! the invocation's declared keys already pinned the slot.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Config as PoolConfig, Pool, Runtime};
use redis::aio::ConnectionLike;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::sync::OnceCell;

use super::StoreError;

/// How long connecting to one cluster node may take.
const CLUSTER_CONNECT_WAIT: Duration = Duration::from_secs(1);
/// How long one node may take to answer one request.
const CLUSTER_RESPONSE_WAIT: Duration = Duration::from_secs(1);
/// How long one request may take with the client's own retries and
/// redirections (a failover in progress); past it the worker's backoff takes over.
const CLUSTER_REQUEST_WAIT: Duration = Duration::from_secs(3);

/// How long an applied write waits for a replica to acknowledge it.
const REPLICA_WAIT_MS: u64 = 100;

#[derive(Clone)]
pub(super) enum Backend {
    Standalone(Pool),
    Cluster(Arc<Cluster>),
}

pub(super) struct Cluster {
    client: ClusterClient,
    conn: OnceCell<ClusterConnection>,
}

impl Backend {
    /// A pool of `size` connections to one server; connects lazily.
    pub(super) fn standalone(url: &str, size: usize) -> Result<Self, String> {
        redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut config = PoolConfig::from_url(url);
        config.pool = Some(deadpool_redis::PoolConfig::new(size));
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| e.to_string())?;
        Ok(Backend::Standalone(pool))
    }

    /// A cluster reached through its `seeds`; connects lazily.
    pub(super) fn cluster(seeds: &[&str]) -> Result<Self, String> {
        if seeds.is_empty() {
            return Err("no seed node given".into());
        }
        for seed in seeds {
            redis::Client::open(*seed).map_err(|e| format!("{seed}: {e}"))?;
        }
        let client = ClusterClient::builder(seeds.iter().copied())
            .connection_timeout(CLUSTER_CONNECT_WAIT)
            .response_timeout(CLUSTER_RESPONSE_WAIT)
            .overall_response_timeout(Some(CLUSTER_REQUEST_WAIT))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Backend::Cluster(Arc::new(Cluster {
            client,
            conn: OnceCell::new(),
        })))
    }

    /// A connection for one operation: one from the pool, or a handle on the
    /// shared cluster connection (made now if this is the first use).
    pub(super) async fn get(&self) -> Result<Conn, StoreError> {
        match self {
            Backend::Standalone(pool) => Ok(Conn::Standalone(pool.get().await?)),
            Backend::Cluster(cluster) => {
                let conn = cluster
                    .conn
                    .get_or_try_init(|| cluster.client.get_async_connection())
                    .await?;
                Ok(Conn::Cluster(conn.clone()))
            }
        }
    }
}

impl Backend {
    /// On a cluster, waits (up to [`REPLICA_WAIT_MS`]) until a replica of the
    /// master that owns `key`'s slot has every write that master acknowledged
    /// so far (`WAIT 1`). Redis replicates asynchronously: without this, a
    /// master killed right after an apply could take the apply with it, while
    /// its outputs were already published and the event acked, and the
    /// promoted replica would hand the same client out again. It narrows that
    /// window to writes whose replica did not answer in time (a master with no
    /// live replica, as after a failover until the old master is back); it
    /// does not close it. Standalone: nothing to wait for.
    pub(super) async fn replicate(&self, key: &str) -> Result<(), StoreError> {
        let Backend::Cluster(cluster) = self else {
            return Ok(());
        };
        let Some(conn) = cluster.conn.get() else {
            return Ok(());
        };
        let mut wait = redis::cmd("WAIT");
        wait.arg(1).arg(REPLICA_WAIT_MS);
        let route = Route::with_key(key, SlotAddr::Master);
        crate::monitor::counters::redis_round_trip("replicate");
        conn.clone()
            .route_command(
                wait,
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
            )
            .await?;
        Ok(())
    }
}

/// A connection to one server (`S`) or to a Redis Cluster, used like any
/// redis-rs connection ([`ConnectionLike`]): the worker's (over its pool) and
/// the operator commands' (`crate::ops::RedisConn`).
#[derive(Clone)]
pub enum AnyRedis<S> {
    Standalone(S),
    Cluster(ClusterConnection),
}

/// One operation's connection, whichever the kind.
pub(super) type Conn = AnyRedis<deadpool_redis::Connection>;

impl<S: ConnectionLike + Send> ConnectionLike for AnyRedis<S> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            AnyRedis::Standalone(conn) => conn.req_packed_command(cmd),
            AnyRedis::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            AnyRedis::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            AnyRedis::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            AnyRedis::Standalone(conn) => conn.get_db(),
            AnyRedis::Cluster(conn) => conn.get_db(),
        }
    }
}
