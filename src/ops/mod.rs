//! Operator commands: look at dead letters and replay them, read an account's
//! or a chat's state, publish events, watch a user's notifications and remove
//! a whole prefix, change the partition count of a live deployment, and check
//! that a host can reach what a worker needs.
//!
//! Each command is a library function the binary calls and the tests call, so
//! what a test checks is what an operator gets. Every broker and Redis request
//! is bounded by [`WAIT`]: a stuck service makes a command fail with a message
//! saying what it was waiting for, never hang. Output is rendered here too
//! (text and JSON), so that `main` only prints.

pub mod dead;
pub mod dead_text;
pub mod demo;
mod demo_script;
mod demo_text;
pub mod inspect;
mod inspect_text;
pub mod partitions;
pub mod ping;
mod probe;
pub mod publish;
mod redis_conn;
pub mod replay;
pub mod teardown;
pub mod watch;

use std::future::Future;
use std::time::Duration;

use clap::Args;
use lapin::{Channel, Connection};

use crate::amqp::Nodes;
use crate::config::{Config, RedisMode};

use crate::names::Names;
pub use redis_conn::{RedisConn, Scan};

/// How long any one request to the broker or Redis may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// Where the commands work: the services and prefix of `switchboard run`.
/// A command takes the worker's own flags and environment ([`Config`], one
/// definition for both) and uses these four.
#[derive(Debug, Clone)]
pub struct Target {
    pub amqp_url: String,
    pub redis_url: String,
    /// Whether `redis_url` is one server or a cluster's seed nodes.
    pub redis_mode: RedisMode,
    pub prefix: String,
}

impl clap::FromArgMatches for Target {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Config::from_arg_matches(matches).map(|config| Target::from(&config))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for Target {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        Config::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Config::augment_args_for_update(cmd)
    }
}

impl Target {
    pub fn names(&self) -> Names {
        Names::new(&self.prefix)
    }
}

impl From<&Config> for Target {
    fn from(config: &Config) -> Self {
        Self {
            amqp_url: config.amqp_url.clone(),
            redis_url: config.redis_url.clone(),
            redis_mode: config.redis_mode,
            prefix: config.prefix.clone(),
        }
    }
}

/// Why a command failed. Each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("cannot connect to RabbitMQ at {url}: {reason}")]
    AmqpConnect { url: String, reason: String },
    #[error("cannot connect to Redis at {url}: {reason}")]
    RedisConnect { url: String, reason: String },
    #[error("RabbitMQ: {0}")]
    Broker(#[source] lapin::Error),
    #[error("RabbitMQ: {0}")]
    Ended(String),
    #[error("Redis: {0}")]
    Redis(String),
    #[error("no answer from {0} within {WAIT:?}")]
    Timeout(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Input(String),
    #[error("state in Redis is not as expected: {0}")]
    Corrupt(String),
}

impl From<lapin::Error> for OpsError {
    fn from(e: lapin::Error) -> Self {
        OpsError::Broker(e)
    }
}

/// The AMQP reply code NOT_FOUND (a missing queue or exchange).
const NOT_FOUND: u16 = 404;

impl OpsError {
    /// The broker answered NOT_FOUND: a queue or exchange does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, OpsError::Broker(e)
            if matches!(e.kind(), lapin::ErrorKind::ProtocolError(a) if a.get_id() == NOT_FOUND))
    }
}

impl From<redis::RedisError> for OpsError {
    fn from(e: redis::RedisError) -> Self {
        OpsError::Redis(e.to_string())
    }
}

/// `fut`, or [`OpsError::Timeout`] naming `what` after [`WAIT`].
pub(crate) async fn within<T, E: Into<OpsError>>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, OpsError> {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(OpsError::Timeout(what.to_owned())),
    }
}

/// A connection to the broker (the first node of the list that answers,
/// each under [`WAIT`]), its failure explained in words.
pub async fn amqp(target: &Target) -> Result<Connection, OpsError> {
    let nodes = Nodes::parse(&target.amqp_url).map_err(|bad| OpsError::AmqpConnect {
        url: bad.url,
        reason: bad.reason,
    })?;
    match nodes.connect(None, "switchboard-ops", WAIT).await {
        Ok((conn, _)) => Ok(conn),
        Err(failed) => Err(OpsError::AmqpConnect {
            url: nodes.shown_all(),
            reason: failed.reason(),
        }),
    }
}

/// A connection to Redis (one server or a cluster, as `--redis-mode` says),
/// its failure explained in words naming the nodes.
pub async fn redis(target: &Target) -> Result<RedisConn, OpsError> {
    redis_conn::connect(target).await
}

/// Closes a channel if it is still open; a failure to close changes nothing
/// for the caller (unacked deliveries return to their queue either way).
pub(crate) async fn close_channel(channel: &Channel) {
    if channel.status().connected() {
        let _ = tokio::time::timeout(WAIT, channel.close(200, "done".into())).await;
    }
}

/// Closes the connection, so the broker returns what it held at once.
pub async fn close(conn: &Connection) {
    if conn.status().connected() {
        let _ = tokio::time::timeout(WAIT, conn.close(200, "done".into())).await;
    }
}

/// Reverses [`crate::ids::Id::key_part`] (for ids found in Redis key names).
pub(crate) fn unescape_key_part(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Id;

    #[test]
    fn key_parts_unescape_to_the_id() {
        for raw in ["acme", "a:b.{c}* d/é%", "x%41"] {
            let id = Id::parse(raw).unwrap();
            assert_eq!(unescape_key_part(&id.key_part()).as_deref(), Some(raw));
        }
        assert_eq!(unescape_key_part("bad%G1"), None);
    }
}
