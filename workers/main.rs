//! The `switchboard` binary: `run` starts a worker; the other commands are for
//! operators (dead letters, inspect, publish, watch, teardown). It parses the
//! command line, starts telemetry, calls the library and prints the result.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use switchboard::ids::Id;
use switchboard::ops::{self, Target, dead, dead_text, inspect, publish, replay, teardown, watch};
use switchboard::telemetry::{self, LogFormat, Stream};
use tokio_util::sync::CancellationToken;

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
struct Cli {
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, global = true, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a worker: consume events from P.inbound until SIGINT or SIGTERM.
    Run(switchboard::Config),
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
    /// Check that Redis and RabbitMQ answer and that a worker declared the prefix's topology.
    ///
    /// Exit code 0 when all is there, 1 with the reason otherwise. The
    /// container's HEALTHCHECK runs it.
    Ping {
        #[command(flatten)]
        target: Target,
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
struct DeadArgs {
    #[command(subcommand)]
    action: DeadAction,
}

#[derive(Args)]
struct FilterArgs {
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
enum DeadAction {
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
enum InspectCommand {
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let stream = match cli.command {
        Command::Run(_) => Stream::Stdout,
        _ => Stream::Stderr,
    };
    telemetry::init(cli.log_format, stream);
    match execute(cli.command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("switchboard: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run(config) => {
            let shutdown = CancellationToken::new();
            tokio::spawn(signal(shutdown.clone()));
            switchboard::run(config, shutdown)
                .await
                .map_err(|e| anyhow::anyhow!(telemetry_words(e)))?;
        }
        Command::Dead(DeadArgs { action }) => return dead_command(action).await,
        Command::Inspect(command) => inspect_command(command).await?,
        Command::Publish { target, file } => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?
            };
            let events = publish::parse(&text)?;
            let conn = ops::amqp(&target).await?;
            let sent = publish::publish(&conn, &target.names(), &events).await;
            ops::close(&conn).await;
            println!(
                "Published {} events to {} (confirmed).",
                sent?,
                target.names().inbound()
            );
        }
        Command::Watch {
            target,
            account,
            user,
            keep,
            json,
        } => {
            let (account, user) = (id(&account)?, id(&user)?);
            let conn = ops::amqp(&target).await?;
            let stop = CancellationToken::new();
            tokio::spawn(signal(stop.clone()));
            eprintln!(
                "Watching {} (Ctrl-C to stop).",
                target.names().user_queue(&account, &user)
            );
            let result = watch::watch(
                &conn,
                &target.names(),
                &account,
                &user,
                keep,
                &stop,
                |body| {
                    let line = if json {
                        String::from_utf8_lossy(body).into_owned()
                    } else {
                        watch::line(body)
                    };
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                },
            )
            .await;
            ops::close(&conn).await;
            eprintln!("{} notifications.", result?);
        }
        Command::Ping { target } => {
            ops::ping::ping(&target).await?;
            println!(
                "OK: Redis and RabbitMQ answer, and prefix {:?} is declared.",
                target.prefix
            );
        }
        Command::Teardown { target, yes, force } => {
            let conn = ops::amqp(&target).await?;
            let mut redis = ops::redis(&target).await?;
            let result = teardown::teardown(
                &conn,
                &mut redis,
                &target.names(),
                teardown::Options { yes, force },
            )
            .await;
            ops::close(&conn).await;
            let report = result?;
            for (queue, messages) in &report.queues {
                println!("deleted queue {queue} ({messages} messages)");
            }
            for exchange in &report.exchanges {
                println!("deleted exchange {exchange}");
            }
            println!(
                "Prefix {:?} torn down: {} queues, {} exchanges, {} Redis keys.",
                target.prefix,
                report.queues.len(),
                report.exchanges.len(),
                report.keys
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn dead_command(action: DeadAction) -> Result<ExitCode> {
    let now = std::time::SystemTime::now();
    match action {
        DeadAction::List {
            target,
            filter,
            limit,
            json,
        } => {
            let conn = ops::amqp(&target).await?;
            let peek = dead::peek(&conn, &target.names(), &filter.into(), limit).await;
            ops::close(&conn).await;
            let peek = peek?;
            if json {
                for letter in &peek.letters {
                    println!("{}", dead_text::to_json(letter));
                }
            } else {
                print!("{}", dead_text::list(&peek, &target.names().dead(), now));
            }
        }
        DeadAction::Show { target, n, json } => {
            if n == 0 {
                bail!("dead letters are numbered from 1, as in `switchboard dead list`");
            }
            let conn = ops::amqp(&target).await?;
            let peek = dead::peek(&conn, &target.names(), &dead::Filter::default(), n).await;
            ops::close(&conn).await;
            let peek = peek?;
            let Some(letter) = peek.letters.iter().find(|l| l.position == n) else {
                bail!(
                    "there is no dead letter {n}: {} holds {}",
                    target.names().dead(),
                    peek.total
                );
            };
            if json {
                println!("{}", dead_text::to_json(letter));
            } else {
                print!("{}", dead_text::show(letter, peek.total, now));
            }
        }
        DeadAction::Replay {
            target,
            filter,
            limit,
            all,
            rekey,
        } => {
            let filter: dead::Filter = filter.into();
            if filter.is_empty() && limit.is_none() && !all {
                bail!(
                    "say which dead letters to replay: --reason, --account, --limit, or --all for every one"
                );
            }
            let conn = ops::amqp(&target).await?;
            let options = replay::Options {
                filter,
                limit,
                rekey,
            };
            let report = replay::replay(&conn, &target.names(), &options).await;
            ops::close(&conn).await;
            let report = report?;
            println!(
                "Replayed {} dead letters to {}; {} left in {}.",
                report.replayed,
                target.names().inbound(),
                report.kept,
                target.names().dead()
            );
            if let Some(why) = report.stopped {
                eprintln!(
                    "switchboard: replay stopped: {why}; everything not replayed is still in {}",
                    target.names().dead()
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn inspect_command(command: InspectCommand) -> Result<()> {
    match command {
        InspectCommand::Chat {
            target,
            account,
            chat_type,
            chat_id,
            json,
        } => {
            let chat = switchboard::model::ChatRef {
                chat_type: inspect::chat_type(&chat_type)?,
                chat_id: id(&chat_id)?,
            };
            let mut redis = ops::redis(&target).await?;
            let view = inspect::chat(&mut redis, &target.prefix, &id(&account)?, chat).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", view.text());
            }
        }
        InspectCommand::Account {
            target,
            account,
            waiting,
            json,
        } => {
            let mut redis = ops::redis(&target).await?;
            let view =
                inspect::account(&mut redis, &target.prefix, &id(&account)?, waiting).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", view.text());
            }
        }
    }
    Ok(())
}

fn id(raw: &str) -> Result<Id> {
    Id::parse(raw).map_err(|e| anyhow::anyhow!("id {raw:?} {e}"))
}

/// A start-up error with the connection failure said in words.
fn telemetry_words(error: switchboard::worker::RunError) -> String {
    use switchboard::worker::RunError;
    match error {
        RunError::AmqpUnreachable { url, reason } => {
            format!(
                "cannot connect to RabbitMQ at {url}: {}",
                switchboard::diagnose::amqp(&reason)
            )
        }
        RunError::RedisUnreachable { url, reason } => {
            format!(
                "cannot connect to Redis at {url}: {}",
                switchboard::diagnose::redis(&reason)
            )
        }
        other => other.to_string(),
    }
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            eprintln!("switchboard: cannot listen for SIGTERM: {error}");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("Shutdown signal received.");
    shutdown.cancel();
}
