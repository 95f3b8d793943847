//! The `switchboard` binary: `run` starts a worker; the other commands are for
//! operators (dead letters, inspect, publish, watch, teardown, ping). It parses
//! the command line (`cli`), starts telemetry and runs the command (`commands`).

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;
use switchboard::telemetry::{self, Stream};

/// mimalloc instead of the system allocator: the worker allocates and frees
/// many small, short-lived buffers per event (deliveries, JSON, frames).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let (stream, threads) = match &cli.command {
        cli::Command::Run(config) => (Stream::Stdout, config.threads),
        _ => (Stream::Stderr, 1),
    };
    telemetry::init(cli.log_format, stream);
    let runtime = match runtime(threads) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match commands::execute(cli.command).await {
            Ok(code) => code,
            Err(error) => {
                eprintln!("switchboard: {error:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// One thread for everything (`--threads 1`), or that many worker threads.
fn runtime(threads: u16) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(usize::from(threads));
        builder
    };
    builder.enable_all().build()
}
