//! `switchboard-bench`: how fast Switchboard is on this machine, next to what
//! the broker itself can do for the same message path. It prints figures and
//! never asserts timing.
//!
//! 1. **Broker ceiling.** Persistent messages with publisher confirms go to
//!    `partitions` quorum queues; `workers` consumers (one connection each, the
//!    worker's prefetch) take them with manual acks and, for each, publish one
//!    persistent confirmed message to one of `managers` quorum "out" queues,
//!    then ack. A client consumes the out queues. This is the least any worker
//!    must do per event (in + one notification out), with no Redis and no logic.
//! 2. **Switchboard.** `workers` workers run in-process (`switchboard::run`) on a
//!    fresh prefix `sbbench-xxxx`. An account is set up by events (one WhatsApp
//!    channel, managers with round robin, quality control), contacts are
//!    pre-created for `known`, a warm-up runs, then `events` `message.inbound`
//!    are published with confirms (many in flight) and the notifications are
//!    consumed from the per-user queues.
//!
//! Both phases measure the same way: events/s from the first publish to the
//! last message received by the client, and latency publish -> received (the
//! publish time travels in the message `text`). Redis calls are counted on the
//! server (`INFO commandstats`), CPU from `/proc`. Everything the bench creates
//! (queues, exchanges, `P:*` keys) is removed at the end, also after Ctrl-C.

mod account;
mod amqp;
mod args;
mod ceiling;
mod cleanup;
mod collect;
mod cpu;
mod fleet;
mod limit;
mod load;
mod preload;
mod redis_stats;
mod report;
mod session;
mod shape;
mod switchboard_phase;

use anyhow::anyhow;
use clap::Parser;

use crate::args::Args;
use crate::session::Bench;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,lapin=off".into()),
        )
        .init();
    let mut bench = Bench::new(&args);
    let outcome = tokio::select! {
        r = bench.run(&args) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        _ = terminated() => Err(anyhow!("terminated")),
    };
    if let Err(e) = bench.cleanup(outcome.is_err()).await {
        eprintln!("switchboard-bench: cleanup incomplete: {e:#}");
    }
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM, so that a `kill` cleans up like Ctrl-C; never when it cannot be watched.
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
