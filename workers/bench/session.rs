//! One bench session: connects to RabbitMQ and Redis, prints the settings and
//! what already keeps the machine busy, runs the phases (Switchboard, then the
//! ceiling at the sizes the worker published) and the report, and
//! records everything it creates so that cleanup can remove it whatever happens.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lapin::Connection;
use lapin::options::QueueBindOptions;
use lapin::types::FieldTable;
use switchboard::ids::Id;
use switchboard::names::Names;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::args::Args;
use crate::ceiling::Sizes;
use crate::cleanup::Topology;
use crate::collect::{Collector, Who};
use crate::cpu::Cpu;
use crate::fleet::ChildWorker;
use crate::limit::within;
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
    /// Worker processes (`--worker-bin`).
    pub children: Vec<ChildWorker>,
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
            children: Vec::new(),
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
        let redis = redis::Client::open(args.redis_url.as_str()).context("Redis URL")?;
        let mut rconn = within("Redis connect", redis.get_multiplexed_async_connection())
            .await
            .with_context(|| format!("Redis at {}", args.redis_url))?;
        self.redis = Some(redis);
        let redis_version = info_field(&mut rconn, "server", "redis_version")
            .await
            .unwrap_or_else(|| "?".into());
        let rabbit_version = rabbitmq_version().unwrap_or_else(|| "?".into());
        report::header(args, &rabbit_version, &redis_version, self.prefix());

        let idle0 = Cpu::sample(&[]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let background = Cpu::sample(&[]).since(&idle0);
        let clients = info_field(&mut rconn, "clients", "connected_clients")
            .await
            .and_then(|v| v.parse::<u64>().ok());
        report::background(&background, clients);
        if args.fsync_secs > 0 {
            let dir = crate::disk::probe_dir(args.fsync_dir.as_deref());
            let span = Duration::from_secs(args.fsync_secs);
            let probed = tokio::task::spawn_blocking(move || crate::disk::probe(&dir, span))
                .await
                .context("the fsync probe")??;
            report::disk(&probed);
        }

        let shape = Shape::new(args);
        // Switchboard first: the ceiling pads what it relays to the sizes the
        // worker published. Its workers stop before the ceiling runs.
        let sb = if args.ceiling_only {
            None
        } else {
            let sb = self.switchboard(args, &shape, &mut rconn).await?;
            self.stop_workers(false).await;
            Some(sb)
        };
        let ceiling = if args.skip_ceiling {
            None
        } else {
            let sizes = sb.as_ref().map(|sb| Sizes::of(&sb.outputs));
            Some(self.ceiling(args, &shape, &mut rconn, sizes).await?)
        };
        report::report(args, ceiling.as_ref(), sb.as_ref());
        Ok(())
    }

    /// Waits until a queue exists: the workers declare theirs as they start.
    pub async fn wait_queue(&mut self, queue: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_workers()?;
            if amqp::message_count(self.conn(), queue).await?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("queue {queue} never appeared (did the workers start? see their log)");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The client side under `names`: a consumer of each user queue (once it
    /// exists), and of a gateway queue on `P.outbound` and a CRM queue on
    /// `P.crm`, which the bench declares and binds to everything.
    pub async fn watch_all(
        &mut self,
        collector: &mut Collector,
        names: &Names,
        shape: &Shape,
    ) -> Result<Vec<JoinHandle<()>>> {
        let mut tasks = Vec::new();
        for (account, user, manager) in shape.users() {
            let queue = names.user_queue(&account.id, &Id::parse(user)?);
            self.wait_queue(&queue).await?;
            let who = if manager { Who::Manager } else { Who::Observer };
            tasks.push(collector.watch(self.conn(), &queue, who, user).await?);
        }
        let gateway = format!("{}.bench.gateway", names.prefix());
        let crm = format!("{}.bench.crm", names.prefix());
        self.queues.extend([gateway.clone(), crm.clone()]);
        let channel = within("open a channel", self.conn().create_channel()).await?;
        for (queue, exchange) in [(&gateway, names.outbound()), (&crm, names.crm())] {
            amqp::declare_quorum(&channel, queue).await?;
            let bind = channel.queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            );
            within("queue.bind", bind).await?;
        }
        amqp::close(&channel).await;
        tasks.push(
            collector
                .watch(self.conn(), &gateway, Who::Gateway, "")
                .await?,
        );
        tasks.push(collector.count_crm(self.conn(), &crm).await?);
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
