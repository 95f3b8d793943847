//! One bench session: connects to RabbitMQ and Redis, prints the settings and
//! what already keeps the machine busy, runs the phases and the report, and
//! records everything it creates so that cleanup can remove it whatever happens.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use lapin::Connection;
use switchboard::ids::Id;
use switchboard::names::Names;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::args::Args;
use crate::cpu::Cpu;
use crate::redis_stats::info_field;
use crate::{account, amqp, report};

/// What the bench created, so that it can remove it whatever happens.
pub struct Bench {
    /// The prefix `sbbench-xxxx` of every queue, exchange and key.
    pub names: Names,
    /// Start of the bench clock that marks and arrivals are stamped on.
    pub base: Instant,
    pub conn: Option<Connection>,
    pub redis: Option<redis::Client>,
    /// In-process workers, each with the token that stops it.
    pub workers: Vec<(CancellationToken, JoinHandle<()>)>,
    /// Queues the bench declared itself.
    pub queues: Vec<String>,
    /// Whether the workers were started and so declared the prefix's topology.
    pub topology: bool,
    pub partitions: u16,
    /// The account's users, whose queues the workers declared.
    pub users: Vec<String>,
    /// The ceiling's consumer connections.
    pub side_connections: Vec<Connection>,
}

impl Bench {
    pub fn new(args: &Args) -> Self {
        let prefix = format!(
            "sbbench-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            names: Names::new(&prefix),
            base: Instant::now(),
            conn: None,
            redis: None,
            workers: Vec::new(),
            queues: Vec::new(),
            topology: false,
            partitions: args.partitions,
            users: Vec::new(),
            side_connections: Vec::new(),
        }
    }

    pub fn prefix(&self) -> &str {
        self.names.prefix()
    }

    pub fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("connected")
    }

    /// The queue the workers declare for one of the account's users.
    pub fn user_queue(&self, user: &str) -> String {
        self.names
            .user_queue(&account::id(), &Id::parse(user).expect("valid id"))
    }

    pub async fn run(&mut self, args: &Args) -> Result<()> {
        args.check()?;
        self.conn = Some(amqp::connect(&args.amqp_url, "switchboard-bench").await?);
        let limit = Duration::from_secs(30);
        let redis = redis::Client::open(args.redis_url.as_str()).context("Redis URL")?;
        let mut rconn = tokio::time::timeout(limit, redis.get_multiplexed_async_connection())
            .await
            .map_err(|_| {
                anyhow!(
                    "Redis at {} did not answer within {limit:?}",
                    args.redis_url
                )
            })?
            .context("Redis")?;
        self.redis = Some(redis);
        let redis_version = info_field(&mut rconn, "server", "redis_version")
            .await
            .unwrap_or_else(|| "?".into());
        let rabbit_version = rabbitmq_version().unwrap_or_else(|| "?".into());
        report::header(args, &rabbit_version, &redis_version, self.prefix());

        let idle0 = Cpu::sample();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let background = Cpu::sample().since(&idle0);
        let clients = info_field(&mut rconn, "clients", "connected_clients")
            .await
            .and_then(|v| v.parse::<u64>().ok());
        report::background(&background, clients);

        let ceiling = if args.skip_ceiling {
            None
        } else {
            Some(self.ceiling(args).await?)
        };
        let sb = if args.ceiling_only {
            None
        } else {
            Some(self.switchboard(args, &mut rconn).await?)
        };
        report::report(args, ceiling.as_ref(), sb.as_ref());
        Ok(())
    }

    /// Waits until a queue exists: the workers declare theirs as they start.
    pub async fn wait_queue(&self, queue: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if amqp::message_count(self.conn(), queue).await?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("queue {queue} never appeared (did the workers start? see the log above)");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The broker's version from its installed package, when it runs here.
fn rabbitmq_version() -> Option<String> {
    let dir = std::fs::read_dir("/usr/lib/rabbitmq/lib").ok()?;
    dir.flatten().find_map(|e| {
        e.file_name()
            .to_string_lossy()
            .strip_prefix("rabbitmq_server-")
            .map(str::to_owned)
    })
}
