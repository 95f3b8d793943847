//! Redis: the account state behind the decisions. Two operations serve every
//! event, each one round trip: a consistent read (the `snapshot.lua` script for
//! chat events, a MULTI/EXEC pipeline for account events) and `apply.lua`, which
//! writes the plan only if its guards still hold and records the event with its
//! outputs. It speaks to one Redis server or to a Redis Cluster ([`backend`]);
//! every operation is bounded by [`OP_WAIT`].

mod backend;
mod error;
mod keys;
mod partitioning;

use std::collections::HashMap;
use std::time::Duration;

use redis::Value;
use serde::{Deserialize, Serialize};

use backend::{Backend, Conn};
pub use error::StoreError;
pub use keys::AccountKeys;

use crate::config::{Config, RedisMode};
use crate::ids::Id;
use crate::model::Seat;
use crate::output::Publish;
use crate::state::{
    ChannelState, ChatQuery, ChatSnapshot, Guard, Key, Op, Plan, Read, Reads, Stored, WaitingChat,
};

/// What an applied event leaves behind: enough to repeat its effects on the broker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(rename = "o")]
    pub outputs: Vec<Publish>,
    #[serde(rename = "q", default, skip_serializing_if = "Vec::is_empty")]
    pub declare_users: Vec<Id>,
}

/// A read that may find the event already applied.
pub enum Loaded<T> {
    Fresh(T),
    Applied(Record),
}

/// Result of [`Store::apply`].
pub enum Applied {
    /// Written now.
    Ok,
    /// Another delivery of the same event was applied first: here is its record.
    Already(Record),
    /// The state moved since the snapshot; decide again.
    Conflict,
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
    /// A pool of `size` connections; connects lazily, so check with [`Store::ping`].
    /// An applied event is remembered, with its outputs, for `event_ttl`.
    pub fn new(url: &str, prefix: &str, size: usize, event_ttl: Duration) -> Result<Self, String> {
        Ok(Self::with_backend(
            Backend::standalone(url, size)?,
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
    /// `--redis-url` the server or the cluster's seeds. `size` is the pool's
    /// size in standalone mode (a cluster shares one multiplexed connection).
    pub fn open(config: &Config, size: usize) -> Result<Self, String> {
        let nodes = config.redis_nodes();
        match config.redis_mode {
            RedisMode::Standalone => match nodes.as_slice() {
                [url] => Self::new(url, &config.prefix, size, config.event_ttl()),
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
            snapshot: std::sync::Arc::new(redis::Script::new(include_str!("lua/snapshot.lua"))),
            apply: std::sync::Arc::new(redis::Script::new(include_str!("lua/apply.lua"))),
            channel: std::sync::Arc::new(redis::Script::new(include_str!("lua/channel.lua"))),
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
        let mut invocation = self.heartbeat.prepare_invoke();
        invocation
            .key(format!("{}:workers", self.prefix))
            .arg(worker)
            .arg(ttl.as_millis() as u64)
            .arg(if leave { "1" } else { "0" });
        within(async {
            let mut conn = self.backend.get().await?;
            Ok(invocation.invoke_async(&mut conn).await?)
        })
        .await
    }

    pub fn keys(&self, account: &Id) -> AccountKeys {
        AccountKeys::new(&self.prefix, account)
    }

    /// The reads of an account event, plus whether it was applied, at one instant.
    pub async fn read(
        &self,
        account: &Id,
        event_id: &Id,
        reads: Vec<Read>,
    ) -> Result<Loaded<Reads>, StoreError> {
        within(self.read_now(account, event_id, reads)).await
    }

    async fn read_now(
        &self,
        account: &Id,
        event_id: &Id,
        reads: Vec<Read>,
    ) -> Result<Loaded<Reads>, StoreError> {
        let keys = self.keys(account);
        let (channels, reads): (Vec<Read>, Vec<Read>) = reads
            .into_iter()
            .partition(|r| matches!(r, Read::Channel(_)));
        let mut pipe = redis::pipe();
        pipe.atomic()
            .get(keys.event(event_id))
            .get(keys.key(&Key::Config));
        for read in &reads {
            match read {
                Read::Get(k) => pipe.get(keys.key(k)),
                Read::HGet(k, f) => pipe.hget(keys.key(k), f.as_str()),
                Read::Channel(_) => unreachable!("partitioned out above"),
            };
        }
        let mut conn = self.backend.get().await?;
        let mut values: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        if values.len() != reads.len() + 2 {
            return Err(StoreError::Corrupt(
                "pipeline answered the wrong number of values".into(),
            ));
        }
        let rest = values.split_off(2);
        if let Some(record) = &values[0] {
            return Ok(Loaded::Applied(parse_record(record)?));
        }
        let mut loaded = Reads {
            config: values[1].take(),
            values: reads.into_iter().zip(rest).collect(),
            channels: HashMap::new(),
        };
        // Each channel is read at one instant of its own; the plan guards what
        // it relies on (config, chats, contacts, pool), so a change in between
        // makes the apply answer `conflict` and the event is decided again.
        for read in channels {
            let Read::Channel(channel) = read else {
                continue;
            };
            let state = self.channel_state(&keys, &channel, &mut conn).await?;
            loaded.channels.insert(channel, state);
        }
        Ok(Loaded::Fresh(loaded))
    }

    /// A channel's seats, pool and waiting chats (`channel.lua`).
    async fn channel_state(
        &self,
        keys: &AccountKeys,
        channel: &Id,
        conn: &mut Conn,
    ) -> Result<ChannelState, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            entry: String,
            chat: Option<String>,
            contact: Option<String>,
        }
        #[derive(Deserialize)]
        struct Reply {
            #[serde(default)]
            seats: HashMap<String, String>,
            pool: Option<String>,
            #[serde(default)]
            waiting: Vec<Row>,
        }
        let mut invocation = self.channel.prepare_invoke();
        invocation
            .key(keys.key(&Key::Seats(channel.clone())))
            .key(keys.key(&Key::RoundRobin(channel.clone())))
            .key(keys.key(&Key::Waiting(channel.clone())))
            .arg(keys.base());
        let raw: String = invocation.invoke_async(conn).await?;
        let reply: Reply = parse(&raw)?;
        let mut seats = Vec::with_capacity(reply.seats.len());
        for (user, seat) in reply.seats {
            let user = Id::parse(user).map_err(corrupt)?;
            seats.push((user, parse::<Seat>(&seat)?));
        }
        seats.sort_by(|a, b| a.0.cmp(&b.0));
        let mut waiting = Vec::with_capacity(reply.waiting.len());
        for row in reply.waiting {
            waiting.push(WaitingChat {
                entry: parse(&row.entry)?,
                chat: Stored::from_raw(row.chat).map_err(corrupt)?,
                contact: Stored::from_raw(row.contact).map_err(corrupt)?,
            });
        }
        Ok(ChannelState {
            seats,
            round_robin: Stored::from_raw(reply.pool).map_err(corrupt)?,
            waiting,
        })
    }

    /// The snapshot of a chat event, or the record of its earlier application.
    pub async fn snapshot(
        &self,
        account: &Id,
        event_id: &Id,
        q: &ChatQuery,
    ) -> Result<Loaded<ChatSnapshot>, StoreError> {
        within(self.snapshot_now(account, event_id, q)).await
    }

    async fn snapshot_now(
        &self,
        account: &Id,
        event_id: &Id,
        q: &ChatQuery,
    ) -> Result<Loaded<ChatSnapshot>, StoreError> {
        let keys = self.keys(account);
        let channel = q
            .channel_id
            .clone()
            .unwrap_or_else(|| Id::parse("-").expect("valid"));
        let mut invocation = self.snapshot.prepare_invoke();
        invocation
            .key(keys.event(event_id))
            .key(keys.key(&Key::Config))
            .key(keys.key(&Key::Settings))
            .key(keys.key(&Key::Channels))
            .key(keys.key(&Key::Seats(channel.clone())))
            .key(keys.key(&Key::RoundRobin(channel)))
            .key(keys.key(&Key::Chat(q.chat.clone())))
            .key(keys.key(&Key::Users))
            .arg(q.channel_id.as_ref().map_or("", Id::as_str))
            .arg(q.user_id.as_ref().map_or("", Id::as_str))
            .arg(keys.base())
            .arg(if q.with_deals { "1" } else { "0" });
        #[derive(Deserialize)]
        struct Reply {
            applied: Option<String>,
            config: Option<String>,
            settings: Option<String>,
            channel: Option<String>,
            #[serde(default)]
            seats: HashMap<String, String>,
            pool: Option<String>,
            chat: Option<String>,
            contact: Option<String>,
            user: Option<String>,
            #[serde(default)]
            deals: Vec<String>,
        }
        let mut conn = self.backend.get().await?;
        let raw: String = invocation.invoke_async(&mut conn).await?;
        let reply: Reply = parse(&raw)?;
        if let Some(record) = reply.applied {
            return Ok(Loaded::Applied(parse_record(&record)?));
        }
        let mut seats = Vec::with_capacity(reply.seats.len());
        for (user, seat) in reply.seats {
            let user = Id::parse(user).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            seats.push((user, parse::<Seat>(&seat)?));
        }
        seats.sort_by(|a, b| a.0.cmp(&b.0));
        let deals = reply
            .deals
            .iter()
            .map(|d| parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Loaded::Fresh(ChatSnapshot {
            config: reply.config,
            settings: reply.settings.as_deref().map(parse).transpose()?,
            channel: reply.channel.as_deref().map(parse).transpose()?,
            seats,
            round_robin: Stored::from_raw(reply.pool).map_err(corrupt)?,
            chat: Stored::from_raw(reply.chat).map_err(corrupt)?,
            contact: Stored::from_raw(reply.contact).map_err(corrupt)?,
            user: reply.user.as_deref().map(parse).transpose()?,
            deals,
        }))
    }

    /// Applies `plan` for the event if its guards hold, recording its outputs.
    pub async fn apply(
        &self,
        account: &Id,
        event_id: &Id,
        plan: &Plan,
    ) -> Result<Applied, StoreError> {
        within(self.apply_now(account, event_id, plan)).await
    }

    async fn apply_now(
        &self,
        account: &Id,
        event_id: &Id,
        plan: &Plan,
    ) -> Result<Applied, StoreError> {
        let keys = self.keys(account);
        let mut index: HashMap<Key, usize> = HashMap::new();
        let mut names = vec![keys.event(event_id)];
        let mut slot = |key: &Key| -> usize {
            *index.entry(key.clone()).or_insert_with(|| {
                names.push(keys.key(key));
                names.len()
            })
        };
        let guards: Vec<serde_json::Value> = plan
            .guards
            .iter()
            .map(|Guard { key, field, expect }| {
                let mut g = serde_json::json!({ "k": slot(key) });
                if let Some(f) = field {
                    g["f"] = f.as_str().into();
                }
                if let Some(e) = expect {
                    g["e"] = e.as_str().into();
                }
                g
            })
            .collect();
        let ops: Vec<serde_json::Value> = plan
            .ops
            .iter()
            .map(|op| match op {
                Op::Set(k, v) => serde_json::json!(["set", slot(k), v]),
                Op::Del(k) => serde_json::json!(["del", slot(k)]),
                Op::HSet(k, f, v) => serde_json::json!(["hset", slot(k), f.as_str(), v]),
                Op::HDel(k, f) => serde_json::json!(["hdel", slot(k), f.as_str()]),
                Op::SAdd(k, m) => serde_json::json!(["sadd", slot(k), m.as_str()]),
                Op::SRem(k, m) => serde_json::json!(["srem", slot(k), m.as_str()]),
                Op::Incr(k) => serde_json::json!(["incr", slot(k)]),
            })
            .collect();
        let record = Record {
            outputs: plan.outputs.clone(),
            declare_users: plan.declare_users.clone(),
        };
        let arg = serde_json::json!({
            "ttl": self.event_ttl.as_secs().max(1),
            "record": serde_json::to_string(&record).map_err(corrupt)?,
            "guards": guards,
            "ops": ops,
        });
        let mut invocation = self.apply.prepare_invoke();
        for name in &names {
            invocation.key(name);
        }
        invocation.arg(arg.to_string());
        let mut conn = self.backend.get().await?;
        let value: Value = invocation.invoke_async(&mut conn).await?;
        let mut items = array(value)?.into_iter();
        match string(items.next())?.as_deref() {
            Some("ok") => {
                self.backend.replicate(&names[0]).await?;
                Ok(Applied::Ok)
            }
            Some("conflict") => Ok(Applied::Conflict),
            Some("applied") => Ok(Applied::Already(parse_record(
                &string(items.next())?.unwrap_or_default(),
            )?)),
            other => Err(StoreError::Corrupt(format!("apply.lua answered {other:?}"))),
        }
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

fn parse_record(raw: &str) -> Result<Record, StoreError> {
    parse(raw)
}

fn array(value: Value) -> Result<Vec<Value>, StoreError> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(StoreError::Corrupt(format!(
            "expected an array, got {other:?}"
        ))),
    }
}

fn string(value: Option<Value>) -> Result<Option<String>, StoreError> {
    match value {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::BulkString(bytes)) => String::from_utf8(bytes).map(Some).map_err(corrupt),
        Some(Value::SimpleString(s)) => Ok(Some(s)),
        Some(other) => Err(StoreError::Corrupt(format!(
            "expected a string, got {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_decides_what_the_url_may_list() {
        let mut config = Config::with_prefix("t");
        config.redis_url = "redis://a:7000,redis://b:7001".into();
        let refused = Store::open(&config, 1).err().unwrap();
        assert!(refused.contains("--redis-mode cluster"), "{refused}");
        config.redis_mode = RedisMode::Cluster;
        assert!(Store::open(&config, 1).is_ok(), "seeds are not dialled yet");
        config.redis_url = "redis://a:7000,not a url".into();
        assert!(Store::open(&config, 1).is_err());
        config.redis_url = " , ".into();
        assert!(Store::open(&config, 1).is_err());
    }
}
