//! The operator commands' Redis connection: one server or a Redis Cluster,
//! chosen by `--redis-mode` as for the worker, and the two requests whose form
//! differs between them: a SCAN of the whole keyspace and the removal of many
//! keys at once.
//!
//! Every other request of the commands names one key (or one key per
//! transaction), so a cluster connection routes it to the master of that
//! key's slot and follows `MOVED`/`ASK` like any command of the worker.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use redis::Value;
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};

use super::{OpsError, Target, WAIT, within};
use crate::config::{RedisMode, redact, url_list};
use crate::store::AnyRedis;

/// How long connecting to one cluster node may take (a command waits up to
/// [`WAIT`] for the whole connection).
const NODE_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Keys asked for per SCAN step.
const SCAN_COUNT: u32 = 1000;

/// Slots whose keys are removed at once on a cluster (one UNLINK each).
const UNLINKS_AT_ONCE: usize = 32;

/// A connection to Redis as `--redis-mode` says: requests go through it like
/// through any redis-rs connection (the worker's [`AnyRedis`]).
pub type RedisConn = AnyRedis<MultiplexedConnection>;

/// A connection to the Redis of `target`, checked with a PING (on a cluster,
/// every master's), its failure explained in words naming the nodes (passwords
/// hidden).
pub async fn connect(target: &Target) -> Result<RedisConn, OpsError> {
    let url = redact(&target.redis_url);
    let fail = |reason: String| OpsError::RedisConnect {
        url: url.clone(),
        reason,
    };
    let nodes = url_list(&target.redis_url);
    let mut conn = match target.redis_mode {
        RedisMode::Standalone => {
            let [node] = nodes.as_slice() else {
                return Err(fail(
                    "standalone mode takes one URL; several seed nodes need --redis-mode cluster"
                        .into(),
                ));
            };
            let client =
                redis::Client::open(*node).map_err(|e| fail(crate::diagnose::redis(&e)))?;
            let connecting = client.get_multiplexed_async_connection();
            RedisConn::Standalone(answer(connecting, &fail).await?)
        }
        RedisMode::Cluster => {
            if nodes.is_empty() {
                return Err(fail("no seed node given".into()));
            }
            let client = ClusterClient::builder(nodes.iter().copied())
                .connection_timeout(NODE_CONNECT_WAIT)
                .response_timeout(WAIT)
                .build()
                .map_err(|e| fail(crate::diagnose::redis(&e)))?;
            match tokio::time::timeout(WAIT, client.get_async_connection()).await {
                Ok(Ok(conn)) => RedisConn::Cluster(conn),
                Ok(Err(e)) => return Err(fail(seeds_failure(&nodes, &e).await)),
                Err(_) => return Err(fail(crate::diagnose::no_answer("Redis"))),
            }
        }
    };
    let ping = redis::cmd("PING");
    answer(ping.query_async::<String>(&mut conn), &fail).await?;
    Ok(conn)
}

/// Why the cluster client could not start from `seeds`: each seed's own
/// answer to a plain connection and PING, in words, since the cluster client
/// reports one error for all of them (and a refused login as a dropped
/// connection). When every seed answers, the cluster client's own error with
/// the likely cause: the seeds are not cluster nodes.
async fn seeds_failure(seeds: &[&str], cluster: &redis::RedisError) -> String {
    let mut reasons = Vec::new();
    for seed in seeds {
        let tried = async {
            let client = redis::Client::open(*seed)?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        let reason = match tokio::time::timeout(NODE_CONNECT_WAIT, tried).await {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => crate::diagnose::redis(&e),
            Err(_) => crate::diagnose::no_answer("Redis"),
        };
        reasons.push(format!("{}: {reason}", redact(seed)));
    }
    if reasons.is_empty() {
        format!(
            "every seed answers, but not as a cluster ({}): is it a Redis Cluster? One server needs --redis-mode standalone",
            crate::diagnose::redis(cluster)
        )
    } else {
        reasons.join("; ")
    }
}

/// `fut`'s value, or its failure (or silence) in words.
async fn answer<T>(
    fut: impl Future<Output = redis::RedisResult<T>>,
    fail: &impl Fn(String) -> OpsError,
) -> Result<T, OpsError> {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(fail(crate::diagnose::redis(&e))),
        Err(_) => Err(fail(crate::diagnose::no_answer("Redis"))),
    }
}

/// A SCAN of the whole keyspace for the keys matching a pattern, a batch at
/// a time: on one server, one cursor; on a cluster, one cursor per master
/// (a key lives on the master of its slot only), the masters in turn.
pub struct Scan {
    pattern: String,
    /// The masters still to scan, the current one last (`None`: the one server).
    nodes: Vec<Option<(String, u16)>>,
    cursor: u64,
}

impl RedisConn {
    /// A SCAN over `pattern`; on a cluster it finds the masters now
    /// (`CLUSTER SLOTS`, the map the cluster client itself routes by).
    pub async fn scan(&mut self, pattern: &str) -> Result<Scan, OpsError> {
        let nodes = match self {
            RedisConn::Standalone(_) => vec![None],
            RedisConn::Cluster(conn) => {
                let slots = within(
                    "CLUSTER SLOTS",
                    conn.route_command(
                        redis::cmd("CLUSTER").arg("SLOTS").to_owned(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                    ),
                )
                .await?;
                masters(slots)?.into_iter().map(Some).collect()
            }
        };
        Ok(Scan {
            pattern: pattern.to_owned(),
            nodes,
            cursor: 0,
        })
    }

    /// Removes `keys` (UNLINK). On a cluster keys of different slots cannot
    /// go in one command (CROSSSLOT): one UNLINK per slot, a few at once.
    pub async fn unlink(&mut self, keys: &[String]) -> Result<(), OpsError> {
        if keys.is_empty() {
            return Ok(());
        }
        match self {
            RedisConn::Standalone(conn) => {
                within(
                    "UNLINK",
                    redis::cmd("UNLINK").arg(keys).query_async::<()>(conn),
                )
                .await
            }
            RedisConn::Cluster(conn) => {
                futures_util::stream::iter(by_slot(keys).into_values())
                    .map(|group| {
                        let mut conn = conn.clone();
                        async move {
                            within(
                                "UNLINK",
                                redis::cmd("UNLINK").arg(group).query_async::<()>(&mut conn),
                            )
                            .await
                        }
                    })
                    .buffer_unordered(UNLINKS_AT_ONCE)
                    .try_collect::<()>()
                    .await
            }
        }
    }
}

impl Scan {
    /// The next batch of keys (maybe empty), or `None` when every node has
    /// been scanned to its end.
    pub async fn next(&mut self, redis: &mut RedisConn) -> Result<Option<Vec<String>>, OpsError> {
        let Some(node) = self.nodes.last().cloned() else {
            return Ok(None);
        };
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let (next, batch): (u64, Vec<String>) = match (node, &mut *redis) {
            (None, conn) => within("SCAN", cmd.query_async(conn)).await?,
            (Some((host, port)), RedisConn::Cluster(conn)) => {
                let what = format!("SCAN on {host}:{port}");
                let routing =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                let value = within(&what, async {
                    conn.route_command(cmd, routing)
                        .await
                        .map_err(|e| OpsError::Redis(format!("{what}: {e}")))
                })
                .await?;
                redis::from_redis_value(value)
                    .map_err(|e| OpsError::Redis(format!("{what}: {e}")))?
            }
            (Some(_), RedisConn::Standalone(_)) => unreachable!("a standalone scan has one node"),
        };
        if next == 0 {
            self.nodes.pop();
        }
        self.cursor = next;
        Ok(Some(batch))
    }

    /// Every key left to find.
    pub async fn all(mut self, redis: &mut RedisConn) -> Result<Vec<String>, OpsError> {
        let mut keys = Vec::new();
        while let Some(batch) = self.next(redis).await? {
            keys.extend(batch);
        }
        Ok(keys)
    }
}

/// `keys` grouped by their cluster slot.
fn by_slot(keys: &[String]) -> HashMap<Slot, Vec<&String>> {
    let mut groups: HashMap<Slot, Vec<&String>> = HashMap::new();
    for key in keys {
        groups.entry(Slot::for_key(key)).or_default().push(key);
    }
    groups
}

/// The distinct masters (host, port) of a `CLUSTER SLOTS` answer: each entry
/// is `[start, end, [host, port, id, ..], replicas..]`, the master first.
fn masters(slots: Value) -> Result<Vec<(String, u16)>, OpsError> {
    let bad = |what: &str| OpsError::Corrupt(format!("CLUSTER SLOTS answered {what}"));
    let Value::Array(ranges) = slots else {
        return Err(bad("no list of slot ranges"));
    };
    let mut found = Vec::new();
    for range in ranges {
        let Value::Array(range) = range else {
            return Err(bad("a slot range that is not a list"));
        };
        let Some(Value::Array(master)) = range.get(2) else {
            return Err(bad("a slot range without its master"));
        };
        let host = match master.first() {
            Some(Value::BulkString(host)) => String::from_utf8_lossy(host).into_owned(),
            _ => return Err(bad("a master without a host")),
        };
        let port = match master.get(1) {
            Some(Value::Int(port)) => u16::try_from(*port).map_err(|_| bad("a bad port"))?,
            _ => return Err(bad("a master without a port")),
        };
        if host.is_empty() || host == "?" {
            return Err(bad(&format!(
                "a master of unknown address ({host:?}:{port})"
            )));
        }
        if !found.contains(&(host.clone(), port)) {
            found.push((host, port));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    fn range(start: i64, end: i64, nodes: Vec<Value>) -> Value {
        let mut entry = vec![Value::Int(start), Value::Int(end)];
        entry.extend(nodes);
        Value::Array(entry)
    }

    #[test]
    fn the_masters_of_cluster_slots_are_the_first_node_of_each_range_once() {
        let answer = Value::Array(vec![
            range(0, 99, vec![node("10.0.0.1", 7000), node("10.0.0.4", 7003)]),
            range(100, 199, vec![node("10.0.0.2", 7001)]),
            range(200, 299, vec![node("10.0.0.1", 7000)]),
        ]);
        assert_eq!(
            masters(answer).unwrap(),
            [("10.0.0.1".to_owned(), 7000), ("10.0.0.2".to_owned(), 7001)]
        );
        let unknown = Value::Array(vec![range(0, 9, vec![node("?", 7000)])]);
        assert!(matches!(masters(unknown), Err(OpsError::Corrupt(_))));
        assert!(matches!(masters(Value::Nil), Err(OpsError::Corrupt(_))));
    }

    #[test]
    fn keys_of_one_account_share_a_slot_and_others_do_not() {
        let keys: Vec<String> = ["p:{a}:users", "p:{a}:config", "p:{b}:users", "p:workers"]
            .map(String::from)
            .to_vec();
        let groups = by_slot(&keys);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[&Slot::for_key("p:{a}:x")].len(), 2);
    }
}
