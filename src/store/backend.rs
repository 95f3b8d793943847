//! The two kinds of Redis the store speaks to, behind one connection type.
//!
//! - **Standalone**: one multiplexed connection to one server, shared by
//!   every operation ([`Shared`]), taken from a deadpool that makes (and, after
//!   a failure, remakes) it.
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_redis::{Manager, Pool, Runtime};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::io::tcp::TcpSettings;
use redis::{Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};
use tokio::sync::OnceCell;

use super::StoreError;

/// How long connecting to one cluster node may take.
const CLUSTER_CONNECT_WAIT: Duration = Duration::from_secs(1);
/// How long one node may take to answer one request.
const CLUSTER_RESPONSE_WAIT: Duration = Duration::from_secs(1);
/// How long one request may take with the client's own retries and
/// redirections (a failover in progress); past it the worker's backoff takes over.
const CLUSTER_REQUEST_WAIT: Duration = Duration::from_secs(3);

/// Requests go out at once (`TCP_NODELAY`): many of them share one
/// connection, and with Nagle's algorithm a request written while an earlier
/// one is unanswered waits for that answer's ACK before it leaves.
fn no_delay() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

/// Connections the pool of one server keeps: the one shared, and room for
/// its successor while the pool checks and drops a failed one.
const POOL_SIZE: usize = 2;

/// How long an applied write waits for a replica to acknowledge it.
const REPLICA_WAIT_MS: u64 = 100;

#[derive(Clone)]
pub(super) enum Backend {
    Standalone(Arc<Standalone>),
    Cluster(Arc<Cluster>),
}

/// One server: the connection every operation shares, and the pool it comes from.
///
/// redis-rs multiplexes a connection (requests of many tasks pipelined on one
/// socket, answers matched in order), so operations need not take turns on
/// pooled connections. Taking one from the pool per operation cost a second
/// round trip each time: deadpool checks a connection (`UNWATCH` + `PING`)
/// whenever it hands one out. So the connection is taken once and kept until
/// it fails as a connection (I/O, a timeout, a reply that does not parse);
/// then the next operation takes a fresh one from the pool, whose check drops
/// the dead one and connects anew.
pub(super) struct Standalone {
    pool: Pool,
    current: Mutex<Option<Current>>,
    generations: AtomicU64,
}

#[derive(Clone)]
struct Current {
    conn: MultiplexedConnection,
    /// Which connection this is, so a late failure of an older one does not
    /// drop its successor.
    generation: u64,
}

impl Standalone {
    async fn get(self: &Arc<Self>) -> Result<Shared, StoreError> {
        if let Some(current) = self.lock().clone() {
            return Ok(Shared {
                current,
                owner: Arc::clone(self),
            });
        }
        // Handing out a connection it keeps idle, the pool checks it first
        // (a round trip); a new one is a connect.
        crate::monitor::counters::redis_round_trip("connection");
        // Boxed, like the cluster's connect below: connecting is a large
        // future, and every operation's future would carry (and move) it.
        let pooled = Box::pin(self.pool.get()).await?;
        let mut slot = self.lock();
        let current = match &*slot {
            // Another operation got there first: share its connection.
            Some(current) => current.clone(),
            None => {
                let generation = self.generations.fetch_add(1, Ordering::Relaxed);
                let current = Current {
                    conn: (*pooled).clone(),
                    generation,
                };
                *slot = Some(current.clone());
                current
            }
        };
        Ok(Shared {
            current,
            owner: Arc::clone(self),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        // A panic while holding the lock cannot leave the slot half-written.
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops sharing the connection of `generation` (it failed as a connection).
    fn drop_connection(&self, generation: u64) {
        let mut slot = self.lock();
        if slot.as_ref().is_some_and(|c| c.generation == generation) {
            *slot = None;
        }
    }
}

pub(super) struct Cluster {
    client: ClusterClient,
    conn: OnceCell<ClusterConnection>,
}

impl Backend {
    /// One server, over one shared connection (see [`Standalone`]); connects lazily.
    pub(super) fn standalone(url: &str) -> Result<Self, String> {
        let info = url
            .into_connection_info()
            .map_err(|e| e.to_string())?
            .set_tcp_settings(no_delay());
        let manager = Manager::new(info).map_err(|e| e.to_string())?;
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Backend::Standalone(Arc::new(Standalone {
            pool,
            current: Mutex::new(None),
            generations: AtomicU64::new(0),
        })))
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
            .tcp_settings(no_delay())
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

    /// A connection for one operation: a handle on the shared connection to
    /// the server or to the cluster (made now if this is the first use).
    pub(super) async fn get(&self) -> Result<Conn, StoreError> {
        match self {
            Backend::Standalone(server) => Ok(Conn::Standalone(server.get().await?)),
            Backend::Cluster(cluster) => {
                let conn = cluster
                    .conn
                    .get_or_try_init(|| Box::pin(cluster.client.get_async_connection()))
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
pub(super) type Conn = AnyRedis<Shared>;

/// A handle on the shared connection to one server; a failure of the
/// connection itself stops it being shared.
pub(super) struct Shared {
    current: Current,
    owner: Arc<Standalone>,
}

impl Shared {
    fn check<T>(&self, result: &Result<T, RedisError>) {
        if let Err(e) = result
            && breaks_connection(e)
        {
            self.owner.drop_connection(self.current.generation);
        }
    }
}

/// A failure of the connection rather than of the request: I/O (a timeout
/// included), a reply that does not parse (the stream may be out of step), or
/// whatever redis-rs says only a reconnect cures.
fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.kind() == ErrorKind::Parse || e.is_unrecoverable_error()
}

impl ConnectionLike for Shared {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.current.conn.req_packed_command(cmd).await;
            self.check(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self
                .current
                .conn
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.check(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.current.conn.get_db()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The error a server reply (RESP bytes) becomes.
    fn server(reply: &str) -> RedisError {
        let value = redis::parse_redis_value(reply.as_bytes()).unwrap();
        value.extract_error().unwrap_err()
    }

    /// Every store operation's future holds `get`'s; connecting is boxed, so
    /// they stay small (an event's whole pipeline is moved when it is spawned;
    /// with the connect inline each store future was about 14 KB).
    #[test]
    fn store_futures_do_not_carry_a_connect() {
        let backend = Backend::standalone("redis://127.0.0.1:6379").unwrap();
        assert!(std::mem::size_of_val(&backend.get()) <= 512);
        let cluster = Backend::cluster(&["redis://127.0.0.1:7000"]).unwrap();
        assert!(std::mem::size_of_val(&cluster.get()) <= 512);
        let store = crate::store::Store::new("redis://127.0.0.1:6379", "p", Duration::from_secs(1))
            .unwrap();
        assert!(std::mem::size_of_val(&store.ping()) <= 2048);
        let heartbeat = store.heartbeat("w", Duration::from_secs(1), false);
        assert!(std::mem::size_of_val(&heartbeat) <= 2048);
    }

    #[test]
    fn only_a_failure_of_the_connection_stops_it_being_shared() {
        let io = |kind| RedisError::from(std::io::Error::new(kind, "x"));
        for kind in [
            std::io::ErrorKind::TimedOut,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            assert!(breaks_connection(&io(kind)), "{kind:?}");
        }
        assert!(breaks_connection(&RedisError::from((
            ErrorKind::Parse,
            "out of step"
        ))));
        for reply in [
            "-OOM command not allowed when used memory > 'maxmemory'.\r\n",
            "-BUSY Redis is busy running a script.\r\n",
            "-CORRUPT the chat is not a JSON object\r\n",
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ] {
            assert!(!breaks_connection(&server(reply)), "{reply}");
        }
        assert!(!breaks_connection(&RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "not a string"
        ))));
    }
}
