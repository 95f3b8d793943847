//! A test's own prefix: one generator of fresh names, and a guard that
//! removes every queue, exchange and Redis key under the prefix when it is
//! dropped, also when the test panics.
//!
//! The removal runs on a thread and a runtime of its own with connections of
//! its own, each request under [`REQUEST`]: the test's runtime may be
//! unwinding, and its connection may be what broke. It never panics (a panic
//! in a drop during a panic aborts the process); what it cannot remove it says
//! on stderr.

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use switchboard::ids::Id;
use switchboard::names::Names;

use super::{AMQP, REDIS, REQUEST};

/// Partitions removed whatever a test configured: the tests use at most 8, or
/// the default count (`partitions.rs`). Deleting a queue that does not exist is
/// no error for RabbitMQ.
const MAX_PARTITIONS: u16 = switchboard::config::DEFAULT_PARTITIONS;

/// A fresh prefix, `sbt-` and 12 hex digits: the only place tests make one.
fn random_prefix() -> String {
    format!("sbt-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Everything of one prefix, removed on drop.
pub struct Prefix {
    pub name: String,
    amqp_url: String,
    redis_url: String,
    /// Queues the test declared itself (bound to `P.crm`, a capture, a client's).
    queues: Vec<String>,
}

impl Prefix {
    /// A fresh prefix on the shared services.
    pub fn random() -> Self {
        Self::adopt(&random_prefix())
    }

    /// A prefix something else made (the demo, a worker process), to be removed all the same.
    pub fn adopt(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            amqp_url: AMQP.to_owned(),
            redis_url: REDIS.to_owned(),
            queues: Vec::new(),
        }
    }

    /// The broker whose queues and exchanges are removed (a cluster's node).
    pub fn use_amqp(&mut self, url: &str) {
        url.clone_into(&mut self.amqp_url);
    }

    /// The Redis whose keys are removed (a test's own server).
    pub fn use_redis(&mut self, url: &str) {
        url.clone_into(&mut self.redis_url);
    }

    /// A queue to remove too.
    pub fn track(&mut self, queue: &str) {
        self.queues.push(queue.to_owned());
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let (name, amqp_url, redis_url, queues) = (
            self.name.clone(),
            self.amqp_url.clone(),
            self.redis_url.clone(),
            self.queues.clone(),
        );
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            runtime.block_on(remove(&name, &amqp_url, &redis_url, queues));
        });
        if removal.join().is_err() {
            eprintln!("cleanup of {} failed", self.name);
        }
    }
}

/// `fut` under [`REQUEST`]; `None` (and a line on stderr) when it failed or took longer.
async fn quietly<T, E: std::fmt::Display>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(REQUEST, fut).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            eprintln!("cleanup: {what}: {e}");
            None
        }
        Err(_) => {
            eprintln!("cleanup: {what}: no answer within {REQUEST:?}");
            None
        }
    }
}

async fn remove(prefix: &str, amqp_url: &str, redis_url: &str, mut queues: Vec<String>) {
    let names = Names::new(prefix);
    let redis = redis::Client::open(redis_url).ok();
    let mut conn = match &redis {
        Some(client) => quietly("Redis", client.get_multiplexed_async_connection()).await,
        None => None,
    };
    let mut keys: Vec<String> = Vec::new();
    if let Some(conn) = conn.as_mut() {
        let pattern = format!("{prefix}:*");
        keys = quietly("KEYS", redis::cmd("KEYS").arg(&pattern).query_async(conn))
            .await
            .unwrap_or_default();
        // User queues: every user the worker knew of (removed users are kept).
        for key in keys.iter().filter(|k| k.ends_with(":users")) {
            let users: Vec<String> =
                quietly("HKEYS", redis::cmd("HKEYS").arg(key).query_async(conn))
                    .await
                    .unwrap_or_default();
            let Some(account) = key
                .split('{')
                .nth(1)
                .and_then(|s| s.split('}').next())
                .and_then(|escaped| Id::parse(unescape(escaped)).ok())
            else {
                continue;
            };
            queues.extend(
                users
                    .into_iter()
                    .filter_map(|u| Id::parse(u).ok())
                    .map(|user| names.user_queue(&account, &user)),
            );
        }
    }
    queues.push(names.dead());
    queues.extend((0..MAX_PARTITIONS).map(|n| names.inbound_partition(n)));
    let broker = quietly(
        "RabbitMQ",
        Connection::connect(amqp_url, ConnectionProperties::default()),
    )
    .await;
    if let Some(broker) = &broker
        && let Some(channel) = quietly("channel", broker.create_channel()).await
    {
        // Deleting what does not exist is no error for RabbitMQ.
        for queue in &queues {
            let options = QueueDeleteOptions::default();
            quietly(queue, channel.queue_delete(queue.as_str().into(), options)).await;
        }
        for exchange in names.exchanges() {
            let options = ExchangeDeleteOptions::default();
            quietly(
                &exchange,
                channel.exchange_delete(exchange.as_str().into(), options),
            )
            .await;
        }
        quietly("close", broker.close(200, "cleanup".into())).await;
    }
    if let Some(conn) = conn.as_mut()
        && !keys.is_empty()
    {
        quietly::<(), _>("DEL", redis::cmd("DEL").arg(&keys).query_async(conn)).await;
    }
}

/// Reverses `Id::key_part`.
fn unescape(escaped: &str) -> String {
    let bytes = escaped.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| escaped.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
