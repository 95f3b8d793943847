//! Worker configuration: flags with environment fallbacks.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// The default `--partitions`: room for 16 workers or more, each active on a
/// few partitions (README, *Partitions*).
pub const DEFAULT_PARTITIONS: u16 = 64;

/// What `--redis-url` points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum RedisMode {
    /// One Redis server (or a proxy in front of one).
    #[default]
    Standalone,
    /// A Redis Cluster: `--redis-url` lists one or more seed nodes.
    Cluster,
}

/// The kind of queue a user's notification queue is declared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum UserQueueType {
    /// Replicated over the cluster's nodes (as the contract's inbound
    /// partitions are); several file handles and more memory per queue.
    #[default]
    Quorum,
    /// One node's queue: far cheaper per queue, lost with its node.
    Classic,
}

/// How to reach the broker and the store, and how much to take on at once.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// RabbitMQ URL; for a cluster, one URL per node, comma-separated: the
    /// worker connects to the first that answers and moves to another when
    /// its node goes away.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,

    /// Redis URL; in cluster mode one or more seed nodes, comma-separated.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,

    /// `standalone` (one server) or `cluster` (Redis Cluster, each account's
    /// keys in the slot of its hash tag).
    #[arg(
        long,
        env = "SWITCHBOARD_REDIS_MODE",
        value_enum,
        default_value_t = RedisMode::Standalone
    )]
    pub redis_mode: RedisMode,

    /// Prefix of every exchange, queue and Redis key (`P` in the contract).
    #[arg(long, env = "SWITCHBOARD_PREFIX", default_value = "switchboard", value_parser = parse_prefix)]
    pub prefix: String,

    /// Events processed at once by this worker; also the AMQP prefetch.
    #[arg(long, env = "SWITCHBOARD_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub concurrency: u16,

    /// Threads that run the worker's tasks. 1 (the default) runs everything
    /// on one thread, which costs the least CPU per event (no hand-offs between
    /// threads; one thread handles several thousand events a second); more
    /// lets one process use more cores. The AMQP client has an I/O thread of
    /// its own either way. Add worker processes before threads.
    #[arg(long, env = "SWITCHBOARD_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,

    /// Partitions of the inbound stream (`P.inbound.0` ..) of a new deployment:
    /// the first worker records the count in Redis and every worker follows
    /// that record; change it with `switchboard partitions --to N`.
    #[arg(long, env = "SWITCHBOARD_PARTITIONS", default_value_t = DEFAULT_PARTITIONS, value_parser = clap::value_parser!(u16).range(1..=i64::from(crate::partitioning::MAX_PARTITIONS)))]
    pub partitions: u16,

    /// Hours an applied event is remembered, with its outputs: a redelivery or
    /// republish within this time has no further effect.
    #[arg(long, env = "SWITCHBOARD_EVENT_TTL_HOURS", default_value_t = 72, value_parser = clap::value_parser!(u64).range(1..))]
    pub event_ttl_hours: u64,

    /// Seconds to wait at start-up for RabbitMQ and Redis to become reachable,
    /// retrying with backoff; 0 gives up at the first failure. A refusal (a bad
    /// password, a topology the broker rejects) stops the start at once.
    #[arg(
        long = "startup-wait",
        env = "SWITCHBOARD_STARTUP_WAIT",
        default_value_t = 30
    )]
    pub startup_wait_secs: u64,

    /// Seconds to finish in-flight events after a shutdown signal.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// The queue type of users' notification queues, `quorum` or `classic`
    /// (see docs/user-queues.md for what each costs the broker). A queue a
    /// client declared first is used as it is, whatever its type.
    #[arg(
        long,
        env = "SWITCHBOARD_USER_QUEUE_TYPE",
        value_enum,
        default_value_t = UserQueueType::Quorum
    )]
    pub user_queue_type: UserQueueType,

    /// Serve Prometheus `/metrics`, `/healthz` and `/readyz` on this address
    /// (e.g. `0.0.0.0:9464`); off when not given.
    #[arg(long, env = "SWITCHBOARD_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Config {
    pub fn event_ttl(&self) -> Duration {
        Duration::from_secs(self.event_ttl_hours * 3600)
    }

    pub fn startup_wait(&self) -> Duration {
        Duration::from_secs(self.startup_wait_secs)
    }

    /// The Redis nodes of `--redis-url`: one in standalone mode, the seeds
    /// in cluster mode.
    pub fn redis_nodes(&self) -> Vec<&str> {
        url_list(&self.redis_url)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// Defaults with the given prefix: what tests and examples start from.
    /// Four partitions, not the default: a worker opens a channel per
    /// partition, and tests start many workers.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            amqp_url: std::env::var("AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            redis_url: std::env::var("REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into()),
            redis_mode: RedisMode::Standalone,
            prefix: prefix.to_owned(),
            concurrency: 32,
            threads: 1,
            partitions: 4,
            event_ttl_hours: 72,
            startup_wait_secs: 30,
            shutdown_grace_secs: 10,
            user_queue_type: UserQueueType::Quorum,
            metrics_addr: None,
        }
    }
}

/// The URLs of a comma-separated list, trimmed, empty entries left out.
pub(crate) fn url_list(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .collect()
}

/// The prefix names exchanges, queues and keys, so it keeps to a safe alphabet.
pub(crate) fn parse_prefix(raw: &str) -> Result<String, String> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("use 1 to 64 of A-Z a-z 0-9 _ - .".into())
    }
}

/// The URL (or comma-separated URLs) without passwords, for messages.
pub(crate) fn redact(url: &str) -> String {
    if url.contains(',') {
        return url.split(',').map(redact).collect::<Vec<_>>().join(",");
    }
    match url.split_once("://").and_then(|(scheme, rest)| {
        rest.split_once('@')
            .map(|(auth, host)| (scheme, auth, host))
    }) {
        Some((scheme, auth, host)) => {
            let user = auth.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn cluster_mode_takes_comma_separated_seed_nodes() {
        let cli = Cli::try_parse_from([
            "switchboard",
            "--redis-mode",
            "cluster",
            "--redis-url",
            "redis://a:7000, redis://b:7001,",
        ])
        .unwrap();
        assert_eq!(cli.config.redis_mode, RedisMode::Cluster);
        assert_eq!(
            cli.config.redis_nodes(),
            vec!["redis://a:7000", "redis://b:7001"]
        );
        assert!(Cli::try_parse_from(["switchboard", "--redis-mode", "sharded"]).is_err());
    }

    #[test]
    fn user_queues_are_quorum_unless_classic_is_asked_for() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["switchboard"].iter().chain(args))
                .map(|cli| cli.config.user_queue_type)
        };
        assert_eq!(parse(&[]).unwrap(), UserQueueType::Quorum);
        assert_eq!(
            parse(&["--user-queue-type", "classic"]).unwrap(),
            UserQueueType::Classic
        );
        assert!(parse(&["--user-queue-type", "stream"]).is_err());
    }
}
