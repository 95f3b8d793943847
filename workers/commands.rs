//! What each command of the `switchboard` binary does: call the library,
//! print the result, and turn failures into one line and an exit code.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use switchboard::ids::Id;
use switchboard::ops::{
    self, dead, dead_text, inspect, partitions, publish, replay, teardown, watch,
};
use tokio_util::sync::CancellationToken;

use crate::cli::{Command, DeadAction, DeadArgs, InspectCommand};

pub async fn execute(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run(config) => {
            let shutdown = CancellationToken::new();
            tokio::spawn(signal(shutdown.clone()));
            switchboard::run(config, shutdown)
                .await
                .map_err(|e| anyhow::anyhow!(telemetry_words(e)))?;
        }
        Command::Demo {
            amqp_url,
            redis_url,
            redis_mode,
        } => {
            let prefix = format!("sbdemo-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let mut config = switchboard::Config::with_prefix(&prefix);
            config.amqp_url = amqp_url;
            config.redis_url = redis_url;
            config.redis_mode = redis_mode;
            config.startup_wait_secs = 5;
            let report = switchboard::ops::demo::demo(config).await?;
            print!("{}", report.render());
        }
        Command::Ready { addr } => {
            if let Err(why) = switchboard::monitor::probe_ready(addr).await {
                eprintln!("switchboard: {why}");
                return Ok(ExitCode::FAILURE);
            }
            println!("ready");
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
        Command::Partitions { target, to, wait } => {
            let conn = ops::amqp(&target).await?;
            let mut redis = ops::redis(&target).await?;
            let result = partitions::change(
                &conn,
                &mut redis,
                &target.names(),
                to,
                std::time::Duration::from_secs(wait),
                &mut |line| println!("{line}"),
            )
            .await;
            ops::close(&conn).await;
            let report = result?;
            if report.from == report.to && !report.resumed {
                println!("Prefix {:?} has {to} partitions already.", target.prefix);
            } else {
                for queue in &report.removed {
                    println!("deleted partition {queue}");
                }
                if report.republished > 0 {
                    println!(
                        "{} events found in removed partitions were published again to {}.",
                        report.republished,
                        target.names().inbound()
                    );
                }
                println!(
                    "Prefix {:?}: {} -> {} partitions.",
                    target.prefix, report.from, report.to
                );
            }
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

/// A start-up error: the worker already says connection failures in words.
fn telemetry_words(error: switchboard::worker::RunError) -> String {
    error.to_string()
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
