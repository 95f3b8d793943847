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
use crate::cleanup::Topology;
use crate::collect::{Collector, Who};
use crate::cpu::Cpu;
use crate::redis_stats::info_field;
use crate::shape::Shape;
use crate::{amqp, report};

/// What the bench created, so that it can remove it whatever happens.
pub struct Bench {
    /// The prefix `sbbench-xxxx` of every queue, exchange and key.
    pub names: Names,
    /// Start of the bench clock that marks and arrivals are stamped on.
    pub base: Instant,
    pub conn: Option<Connection>,
    /// Where to reconnect for cleanup when the connection was lost.
    pub amqp_url: String,
    pub redis: Option<redis::Client>,
    /// In-process workers, each with the token that stops it.
    pub workers: Vec<(CancellationToken, JoinHandle<()>)>,
    /// Queues the bench declared itself.
    pub queues: Vec<String>,
    /// The worker topologies declared so far (by the workers or the ceiling).
    pub topologies: Vec<Topology>,
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
            amqp_url: args.amqp_url.clone(),
            redis: None,
            workers: Vec::new(),
            queues: Vec::new(),
            topologies: Vec::new(),
            side_connections: Vec::new(),
        }
    }

    pub fn prefix(&self) -> &str {
        self.names.prefix()
    }

    pub fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("connected")
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

        let shape = Shape::new(args);
        let ceiling = if args.skip_ceiling {
            None
        } else {
            Some(self.ceiling(args, &shape).await?)
        };
        let sb = if args.ceiling_only {
            None
        } else {
            Some(self.switchboard(args, &shape, &mut rconn).await?)
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

    /// The client side of every user of the shape under `names`: a consumer of
    /// each user queue (once it exists), managers as primaries.
    pub async fn watch_users(
        &self,
        collector: &mut Collector,
        names: &Names,
        shape: &Shape,
    ) -> Result<Vec<JoinHandle<()>>> {
        let mut tasks = Vec::new();
        for (account, user, manager) in shape.users() {
            let queue = names.user_queue(&account.id, &Id::parse(user)?);
            self.wait_queue(&queue).await?;
            let who = if manager { Who::Primary } else { Who::Observer };
            tasks.push(collector.watch(self.conn(), &queue, who).await?);
        }
        Ok(tasks)
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
