//! The command line of the `switchboard` binary: `run` and the operator
//! commands, with the help a newcomer reads (`switchboard help <command>`).

use clap::{Args, Parser, Subcommand};
use switchboard::ops::{Target, dead};
use switchboard::telemetry::LogFormat;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Routes messenger conversations to CRM users.",
    long_about = "Routes messenger conversations to CRM users.\n\n\
        `switchboard run` starts a worker. The other commands help operators: \
        read and replay dead letters, inspect what Switchboard knows of a chat or \
        an account, publish events, watch a user's notifications, and remove \
        everything of a prefix. Every command takes --amqp-url, --redis-url and \
        --prefix (or AMQP_URL, REDIS_URL, SWITCHBOARD_PREFIX)."
)]
pub struct Cli {
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, global = true, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Start a worker: consume events from P.inbound until SIGINT or SIGTERM.
    Run(switchboard::Config),
    /// See it work: a live worker plays a short day at a shop and each user's view is printed.
    ///
    /// Starts a worker in this process on a fresh prefix (`sbdemo-…`) against
    /// the local RabbitMQ and Redis, publishes a scripted day as a CRM and a
    /// gateway would (two channels, users in all three roles, new clients by
    /// round robin and by first reply, a claim race, rejected replies, a
    /// suitcase, a bad input), prints what every user, the CRM and the gateway
    /// received, and removes everything it created.
    Demo {
        /// RabbitMQ URL.
        #[arg(
            long,
            env = "AMQP_URL",
            default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
        )]
        amqp_url: String,
        /// Redis URL; in cluster mode one or more seed nodes, comma-separated.
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
        redis_url: String,
        /// `standalone` (one server) or `cluster` (Redis Cluster).
        #[arg(long, env = "SWITCHBOARD_REDIS_MODE", value_enum, default_value_t = switchboard::RedisMode::Standalone)]
        redis_mode: switchboard::RedisMode,
    },
    /// Dead letters (P.dead): events the worker could not accept, with the reason.
    Dead(DeadArgs),
    /// Show what Switchboard holds in Redis for a chat or an account.
    #[command(subcommand)]
    Inspect(InspectCommand),
    /// Publish JSON events to P.inbound, as a gateway or CRM would.
    ///
    /// FILE holds one JSON object, an array of them, or one per line; `-` reads
    /// standard input. Each goes to P.inbound with its account's routing key,
    /// persistent, content type application/json, and counts as sent only when
    /// the broker confirmed it. Nothing is sent if any event lacks an accountId.
    Publish {
        #[command(flatten)]
        target: Target,
        /// A file of JSON events, or `-` for standard input.
        file: String,
    },
    /// Print a user's notifications as they arrive (a client of P.user.{account}.{user}), until Ctrl-C.
    ///
    /// Like a real client it takes the notifications from the queue; with
    /// --keep they all go back to the queue when the watch ends.
    Watch {
        #[command(flatten)]
        target: Target,
        /// The account id, as in events.
        account: String,
        /// The user id, as in events.
        user: String,
        /// Leave the notifications in the queue (returned when the watch ends).
        #[arg(long)]
        keep: bool,
        /// Print each notification's JSON as it came.
        #[arg(long)]
        json: bool,
    },
    /// Check that a running worker is ready: its /readyz (see --metrics-addr) answers 200.
    ///
    /// Exit code 0 when ready, 1 with the reason otherwise. The container's
    /// HEALTHCHECK runs it against the worker in the same container.
    Ready {
        /// The worker's --metrics-addr, e.g. 127.0.0.1:9464.
        #[arg(default_value = "127.0.0.1:9464")]
        addr: std::net::SocketAddr,
    },
    /// Check that Redis and RabbitMQ answer and that a worker declared the prefix's topology.
    ///
    /// Exit code 0 when all is there, 1 with the reason otherwise. The
    /// container's HEALTHCHECK runs it.
    Ping {
        #[command(flatten)]
        target: Target,
    },
    /// Change the number of inbound partitions of a live deployment, keeping every account's order.
    ///
    /// Routes new events over the new count at one instant, waits until the
    /// workers have handled every event routed before it (a marker at the end
    /// of each old partition), then has the workers consume the new set and
    /// deletes partitions no longer used. Events keep flowing; the workers
    /// pause for about as long as the old partitions take to drain. Run it
    /// again after a failure: it goes on where it stopped. README, *Partitions*.
    Partitions {
        #[command(flatten)]
        target: Target,
        /// The new number of partitions.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=i64::from(switchboard::partitioning::MAX_PARTITIONS)))]
        to: u16,
        /// Seconds to wait for the workers to reach the markers (and to leave removed partitions).
        #[arg(long, default_value_t = 600)]
        wait: u64,
    },
    /// Delete every queue, exchange and Redis key of a prefix.
    ///
    /// Removes P.inbound and its partitions, P.notify, P.crm, P.outbound,
    /// P.dead, every user's queue and every Redis key P:*. Queues that CRMs and
    /// gateways bound themselves are left alone. Refuses while workers still
    /// consume, and refuses the default prefix `switchboard` without --yes.
    Teardown {
        #[command(flatten)]
        target: Target,
        /// Confirm tearing down the default prefix `switchboard`.
        #[arg(long)]
        yes: bool,
        /// Tear down even while consumers (workers, clients) are attached.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args)]
pub struct DeadArgs {
    #[command(subcommand)]
    pub action: DeadAction,
}

#[derive(Args)]
pub struct FilterArgs {
    /// Only dead letters whose reason starts with this, e.g. `unknown_user` or `not_json`.
    #[arg(long)]
    reason: Option<String>,
    /// Only dead letters of this account (its accountId).
    #[arg(long)]
    account: Option<String>,
}

impl From<FilterArgs> for dead::Filter {
    fn from(f: FilterArgs) -> Self {
        dead::Filter {
            reason: f.reason,
            account: f.account,
        }
    }
}

#[derive(Subcommand)]
pub enum DeadAction {
    /// List dead letters with reason, routing key and age. Takes none away.
    List {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        filter: FilterArgs,
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show dead letter N of `dead list` in full: headers, properties, body. Takes none away.
    Show {
        #[command(flatten)]
        target: Target,
        /// Its number in `dead list`.
        n: usize,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Publish dead letters again to P.inbound exactly as they came, after a fix.
    ///
    /// Each keeps its body, routing key and properties (only the headers
    /// Switchboard and the broker added are removed). A dead letter leaves
    /// P.dead only after the broker confirmed its replay; if anything fails, the
    /// replay stops and what was not replayed stays in P.dead. One that fails
    /// again comes back to P.dead with its new reason.
    Replay {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        filter: FilterArgs,
        /// Replay at most this many.
        #[arg(long)]
        limit: Option<usize>,
        /// Replay every dead letter (needed when no filter is given).
        #[arg(long)]
        all: bool,
        /// Route by the body's accountId instead of the original routing key
        /// (for events refused because they were published with another key).
        #[arg(long)]
        rekey: bool,
    },
}

#[derive(Subcommand)]
pub enum InspectCommand {
    /// A chat: its contact, responsible user, deals and claim state (who was shown it).
    Chat {
        #[command(flatten)]
        target: Target,
        account: String,
        /// whatsapp, telegram, instagram, vk, viber or avito.
        chat_type: String,
        chat_id: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// An account: channels, users and their roles, settings, pipelines, round robin.
    Account {
        #[command(flatten)]
        target: Target,
        account: String,
        /// Also list chats waiting to be claimed (scans the whole Redis keyspace).
        #[arg(long)]
        waiting: bool,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}
