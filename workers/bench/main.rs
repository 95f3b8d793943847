//! `switchboard-bench`: how fast Switchboard is on this machine, next to what
//! the broker itself can do for the same message path. It prints figures and
//! never asserts timing.
//!
//! 1. **Switchboard.** `workers` workers (child processes of `--worker-bin`,
//!    or in-process) run on a fresh prefix `sbbench-xxxx`. The accounts are
//!    set up by events (one WhatsApp channel, managers taking new clients by
//!    round robin or first reply, quality control, idle users), `--contacts`
//!    are written straight into Redis, known contacts are added, a warm-up
//!    runs, then `events` events of the scenario are published with confirms
//!    (many in flight) and every output is consumed: the users' queues, a
//!    gateway queue on `P.outbound` and a CRM queue on `P.crm`.
//! 2. **Broker ceiling.** The same events on the worker's own topology, taken
//!    by stand-in consumers that publish each one, persistent and confirmed,
//!    to every place the worker published to for it (padded to the sizes the
//!    worker published), then ack: the least any worker must do per event,
//!    with no Redis and no logic.
//!
//! Both phases measure the same way: events/s from the first publish to the
//! last measured output received, and latency publish -> received (the
//! publish time travels in the message `text`). Redis calls and CPU are read
//! from the server (`INFO commandstats`, `INFO cpu`), the other CPU from
//! `/proc`. Everything the bench creates (queues, exchanges, `P:*` keys) is
//! removed at the end, also after Ctrl-C, SIGTERM or a failed phase.

mod account;
mod amqp;
mod args;
mod ceiling;
mod cleanup;
mod collect;
mod cpu;
mod disk;
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
    let (outcome, failed) = tokio::select! {
        r = bench.run(&args) => {
            let failed = r.is_err();
            (r, failed)
        }
        _ = tokio::signal::ctrl_c() => (Err(anyhow!("interrupted")), false),
        _ = terminated() => (Err(anyhow!("terminated")), false),
    };
    // A failed run keeps the worker processes' logs to read; a stopped one does not.
    if let Err(e) = bench.cleanup(failed).await {
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
