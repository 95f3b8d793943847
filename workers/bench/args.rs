//! The command line: what to measure (events, workers, scenario, load shape)
//! and against which RabbitMQ and Redis, with the checks that keep every phase
//! meaningful.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Every event is a message of a settled chat (contact pre-created, chat seen before).
    Known,
    /// Every event is a new client, handed out by round robin.
    New,
    /// 90% known, 10% new.
    Mixed,
    /// New clients under `first_reply`: each new chat is offered to every
    /// manager, and one manager's reply (`message.outbound`, published right
    /// after the client's message) claims it. Two events per chat.
    FirstReply,
}

impl Scenario {
    /// Whether any event is of a known (pre-created) chat.
    pub fn uses_known(self) -> bool {
        matches!(self, Scenario::Known | Scenario::Mixed)
    }

    /// Whether any event is of a new client.
    pub fn uses_new(self) -> bool {
        self != Scenario::Known
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "switchboard-bench",
    about = "Measures Switchboard against the broker's own ceiling; prints figures."
)]
pub struct Args {
    /// `message.inbound` events to measure (and messages for the ceiling).
    #[arg(long, default_value_t = 20_000)]
    pub events: u64,
    /// Workers started in-process (and consumers of the ceiling run).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// The worker's concurrency, which is also its prefetch.
    #[arg(long, default_value_t = 32)]
    pub concurrency: u16,
    /// Inbound partitions (quorum queues); the ceiling uses as many in-queues.
    #[arg(long, default_value_t = 4)]
    pub partitions: u16,
    #[arg(long, value_enum, default_value_t = Scenario::Known)]
    pub scenario: Scenario,
    /// Managers (round robin, receive new clients); the ceiling uses as many out-queues.
    #[arg(long, default_value_t = 10)]
    pub managers: usize,
    /// Quality-control users: each gets every message too (one more publish per event).
    #[arg(long, default_value_t = 1)]
    pub quality_control: usize,
    /// Pre-created contacts (chats) the `known` events are spread over, in
    /// total over all accounts.
    #[arg(long, default_value_t = 1000)]
    pub chats: usize,
    /// Accounts the chats are spread over (chat `c` in account `c % accounts`),
    /// each set up alike; events go round robin over accounts and chats. Each
    /// account is one ordered stream on one partition, in both phases.
    #[arg(long, default_value_t = 1)]
    pub accounts: usize,
    /// Publisher confirms kept in flight by the load generator.
    #[arg(long, default_value_t = 500)]
    pub window: usize,
    /// Publish at this many events/s instead of as fast as confirms allow (0 = flat out).
    /// Below saturation the latency is the path's own, not time spent queued.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Give up a phase when nothing arrived for this long.
    #[arg(long, default_value_t = 30)]
    pub stall_secs: u64,
    /// Messages the ceiling's consumer relays at once per connection (0 = as many as
    /// the prefetch lets in: the prefetch applies per queue, so up to partitions x
    /// concurrency). Defaults to --concurrency, like the worker's lanes.
    #[arg(long)]
    pub ceiling_in_flight: Option<usize>,
    /// Users with a seat on the channel who are never notified (managers who
    /// take no new clients), added to every account: Redis work per event must
    /// not grow with them.
    #[arg(long, default_value_t = 0)]
    pub users: usize,
    /// Extra contacts, each with one deal, written into the accounts (contact
    /// `c` in account `c % accounts`) before the run, straight into Redis; the
    /// report gives Redis memory per contact. Not messaged during the run.
    #[arg(long, default_value_t = 0)]
    pub contacts: u64,
    /// Run the workers as child processes of this `switchboard` binary (e.g.
    /// target/release/switchboard), so that their CPU and peak RSS are measured
    /// apart from the bench's own; without it they run inside the bench process.
    #[arg(long)]
    pub worker_bin: Option<std::path::PathBuf>,
    /// Seconds to measure the disk's fsync before the phases (0: skip): the
    /// broker syncs every persistent message before it confirms or delivers it.
    #[arg(long, default_value_t = 10)]
    pub fsync_secs: u64,
    /// Where to measure it: the broker's data directory's file system
    /// (default /var/lib/rabbitmq when writable, else the temporary directory).
    #[arg(long)]
    pub fsync_dir: Option<std::path::PathBuf>,
    /// Skip the broker-ceiling run.
    #[arg(long, conflicts_with = "ceiling_only")]
    pub skip_ceiling: bool,
    /// Run only the broker ceiling.
    #[arg(long)]
    pub ceiling_only: bool,
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
}

/// How the load generator paces its publishes.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Publisher confirms kept in flight.
    pub window: usize,
    /// Events/s; 0 publishes as fast as confirms allow.
    pub rate: u64,
}

impl Args {
    /// Refuses the values that would leave a phase with nothing to do.
    pub fn check(&self) -> Result<()> {
        if self.events == 0
            || self.workers == 0
            || self.managers == 0
            || self.window == 0
            || self.partitions == 0
            || self.accounts == 0
            || !(1..=1000).contains(&self.concurrency)
        {
            bail!(
                "--events, --workers, --managers, --window, --partitions and --accounts must be at least 1, --concurrency 1 to 1000"
            );
        }
        if self.scenario.uses_known() && self.chats < self.accounts {
            bail!("--chats must be at least --accounts: every account needs a known chat");
        }
        if self.scenario == Scenario::FirstReply && self.events % 2 == 1 {
            bail!("--events must be even for first-reply: each chat is a message and its claim");
        }
        if let Some(bin) = &self.worker_bin
            && !bin.is_file()
        {
            bail!(
                "--worker-bin {}: no such file (cargo build --release --bins)",
                bin.display()
            );
        }
        Ok(())
    }

    pub fn pace(&self) -> Pace {
        Pace {
            window: self.window,
            rate: self.rate,
        }
    }

    /// How long a phase may see nothing arrive before it is given up.
    pub fn stall(&self) -> Duration {
        Duration::from_secs(self.stall_secs)
    }

    /// Messages each ceiling connection relays at once; `None` when only the
    /// prefetch bounds them.
    pub fn ceiling_slots(&self) -> Option<usize> {
        match self
            .ceiling_in_flight
            .unwrap_or(usize::from(self.concurrency))
        {
            0 => None,
            n => Some(n),
        }
    }
}
