//! `switchboard-chaos`: Switchboard under faults, checked against a model.
//!
//! It starts its own Redis (AOF) and its own RabbitMQ node on spare ports,
//! three `switchboard run` processes on a fresh prefix, and publishes a
//! seeded stream (known and new clients under round robin and first reply,
//! replies with claim races, 5% bad input) while it SIGKILLs workers, cuts
//! Redis connections and restarts the broker and Redis. Then it reads every
//! queue and checks what arrived against a model written from the contract
//! (`model.rs`), prints the figures and exits 1 when a check fails. Its
//! services, workers and data are removed at the end, after a failure, a
//! panic, Ctrl-C or SIGTERM too (only SIGKILL of this process leaves them).

mod check;
mod collect;
mod crm;
mod faults;
mod fleet;
mod model;
mod plan;
mod publish;
mod report;
mod run;
mod script;
mod services;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use crate::services::Lab;

/// Switchboard under faults (worker crashes, a broker and a Redis restart,
/// Redis connections cut), checked against an independent model. Needs root
/// (the private RabbitMQ node runs as the `rabbitmq` user) and Debian's
/// rabbitmq-server and redis-server; never touches the shared services.
#[derive(Parser, Debug)]
#[command(name = "switchboard-chaos")]
pub struct Args {
    /// Events to publish (at least; 5% of them bad input).
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Chats, over four accounts (two round robin, two first reply); a third are known clients.
    #[arg(long, default_value_t = 2_000)]
    pub chats: usize,
    /// Seed of the stream, to repeat a run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Events published per second.
    #[arg(long, default_value_t = 300)]
    pub rate: u32,
    /// Seconds between two worker SIGKILLs.
    #[arg(long, default_value_t = 4)]
    pub kill_every: u64,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// The `switchboard` binary (default: the one next to this binary).
    #[arg(long)]
    pub worker_bin: Option<PathBuf>,
    /// Scratch directory for the services' data and the logs (default: a new one in $TMPDIR).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seconds after which the run gives up (and fails).
    #[arg(long, default_value_t = 1200)]
    pub deadline: u64,
    /// Seconds without any arrival after which reading stops.
    #[arg(long, default_value_t = 60)]
    pub stall: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let pid = std::process::id();
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("switchboard-chaos-{pid}")));
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.join("switchboard")));
    let Some(worker_bin) = args.worker_bin.clone().or(sibling) else {
        eprintln!("switchboard-chaos: give --worker-bin");
        return ExitCode::FAILURE;
    };
    let mut lab = match Lab::new(dir, worker_bin) {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("switchboard-chaos: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("switchboard-chaos: cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    let outcome = tokio::select! {
        r = run::run(&mut lab, &args) => r,
        _ = int.recv() => Err(anyhow!("interrupted (SIGINT)")),
        _ = term.recv() => Err(anyhow!("terminated (SIGTERM)")),
        // Every step has its own limit; this bounds the whole run whatever happens.
        _ = tokio::time::sleep(Duration::from_secs(args.deadline + 120)) => Err(anyhow!("the run overran its deadline")),
    };
    let code = match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("switchboard-chaos: {e:#}");
            ExitCode::FAILURE
        }
    };
    if code == ExitCode::FAILURE {
        lab.keep_logs = true;
        eprintln!(
            "switchboard-chaos: worker, Redis and RabbitMQ logs kept in {}",
            lab.dir.join("logs").display()
        );
    }
    eprintln!("switchboard-chaos: stopping the workers, the private RabbitMQ node and Redis.");
    lab.shutdown();
    code
}
