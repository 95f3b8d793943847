//! Redis: the account state behind the decisions. Two operations serve every
//! event, each one round trip: a consistent read (the `snapshot.lua` script for
//! chat events, a MULTI/EXEC pipeline for account events) and `apply.lua`, which
//! writes the plan only if its guards still hold and records the event with its
//! outputs. It speaks to one Redis server or to a Redis Cluster ([`backend`]);
//! every operation is bounded by [`OP_WAIT`].

mod apply;
mod backend;
pub mod bulk;
pub mod compact;
mod error;
mod eval;
mod keys;
mod partitioning;
mod read;
mod turn;

use std::time::Duration;

pub use apply::{Applied, Record};
pub use backend::AnyRedis;
use backend::Backend;
pub use error::StoreError;
pub use keys::{AccountKeys, BUCKETS, Key, bucket, bucket_of, chat_field, waiting_field};

use crate::config::{Config, RedisMode};
use crate::ids::Id;
use crate::monitor::counters;

/// A read that may find the event already applied.
pub enum Loaded<T> {
    Fresh(T),
    Applied(Record),
}

/// How long one store operation may take, connecting included. Past it the
/// operation is a passing failure (a timeout), retried with backoff; an
/// `apply` that timed out may still have run, which its retry finds in the
/// event's record.
pub const OP_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    prefix: String,
    event_ttl: Duration,
    snapshot: std::sync::Arc<redis::Script>,
    apply: std::sync::Arc<redis::Script>,
    channel: std::sync::Arc<redis::Script>,
    heartbeat: std::sync::Arc<redis::Script>,
}

impl Store {
    /// One server, over one shared connection; connects lazily, so check with
    /// [`Store::ping`]. An applied event is remembered, with its outputs, for `event_ttl`.
    pub fn new(url: &str, prefix: &str, event_ttl: Duration) -> Result<Self, String> {
        Ok(Self::with_backend(
            Backend::standalone(url)?,
            prefix,
            event_ttl,
        ))
    }

    /// A Redis Cluster reached through one or more `seeds`; connects lazily,
    /// so check with [`Store::ping`].
    pub fn cluster(seeds: &[&str], prefix: &str, event_ttl: Duration) -> Result<Self, String> {
        Ok(Self::with_backend(
            Backend::cluster(seeds)?,
            prefix,
            event_ttl,
        ))
    }

    /// The store a worker with `config` uses: `--redis-mode` decides the kind,
    /// `--redis-url` the server or the cluster's seeds.
    pub fn open(config: &Config) -> Result<Self, String> {
        let nodes = config.redis_nodes();
        match config.redis_mode {
            RedisMode::Standalone => match nodes.as_slice() {
                [url] => Self::new(url, &config.prefix, config.event_ttl()),
                _ => Err(
                    "standalone mode takes one URL; several seed nodes need --redis-mode cluster"
                        .into(),
                ),
            },
            RedisMode::Cluster => Self::cluster(&nodes, &config.prefix, config.event_ttl()),
        }
    }

    fn with_backend(backend: Backend, prefix: &str, event_ttl: Duration) -> Self {
        Self {
            backend,
            prefix: prefix.to_owned(),
            event_ttl,
            snapshot: std::sync::Arc::new(redis::Script::new(concat!(
                include_str!("lua/layout.lua"),
                include_str!("lua/snapshot.lua")
            ))),
            apply: std::sync::Arc::new(redis::Script::new(concat!(
                include_str!("lua/members.lua"),
                include_str!("lua/apply.lua")
            ))),
            channel: std::sync::Arc::new(redis::Script::new(concat!(
                include_str!("lua/layout.lua"),
                include_str!("lua/channel.lua")
            ))),
            heartbeat: std::sync::Arc::new(redis::Script::new(include_str!("lua/heartbeat.lua"))),
        }
    }

    /// Whether Redis answers (on a cluster: every master).
    pub async fn ping(&self) -> Result<(), StoreError> {
        within(async {
            let mut conn = self.backend.get().await?;
            let _: String = redis::cmd("PING").query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }

    /// Registers this worker as alive for `ttl` (or removes it when `leave`)
    /// and returns the ids of every live worker. The registry is the one key
    /// outside the accounts' slots.
    pub async fn heartbeat(
        &self,
        worker: &str,
        ttl: Duration,
        leave: bool,
    ) -> Result<Vec<String>, StoreError> {
        let mut invocation =
            eval::Eval::new(&self.heartbeat, &[format!("{}:workers", self.prefix)]);
        invocation
            .arg(worker)
            .arg(ttl.as_millis() as u64)
            .arg(if leave { "1" } else { "0" });
        within(async {
            let mut conn = self.backend.get().await?;
            counters::redis_round_trip("heartbeat");
            Ok(invocation.run(&mut conn).await?)
        })
        .await
    }

    pub fn keys(&self, account: &Id) -> AccountKeys {
        AccountKeys::new(&self.prefix, account)
    }
}

/// `work` under [`OP_WAIT`]; running out of time is a passing failure.
async fn within<T>(
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(OP_WAIT, work).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(redis::RedisError::from(
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("Redis did not answer within {OP_WAIT:?}"),
            ),
        ))),
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn parse<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_decides_what_the_url_may_list() {
        let mut config = Config::with_prefix("t");
        config.redis_url = "redis://a:7000,redis://b:7001".into();
        let refused = Store::open(&config).err().unwrap();
        assert!(refused.contains("--redis-mode cluster"), "{refused}");
        config.redis_mode = RedisMode::Cluster;
        assert!(Store::open(&config).is_ok(), "seeds are not dialled yet");
        config.redis_url = "redis://a:7000,not a url".into();
        assert!(Store::open(&config).is_err());
        config.redis_url = " , ".into();
        assert!(Store::open(&config).is_err());
    }
}
