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
}

impl Scenario {
    /// Whether measured event `seq` comes from a new client rather than a known chat.
    pub fn is_new(self, seq: u64) -> bool {
        match self {
            Scenario::Known => false,
            Scenario::New => true,
            Scenario::Mixed => seq % 10 == 9,
        }
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
        if self.scenario != Scenario::New && self.chats < self.accounts {
            bail!("--chats must be at least --accounts: every account needs a known chat");
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
