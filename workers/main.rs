//! The `switchboard` binary: `run` starts a worker; the other commands are for
//! operators (dead letters, inspect, publish, watch, teardown, ping). It parses
//! the command line (`cli`), starts telemetry and runs the command (`commands`).

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;
use switchboard::telemetry::{self, Stream};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let stream = match cli.command {
        cli::Command::Run(_) => Stream::Stdout,
        _ => Stream::Stderr,
    };
    telemetry::init(cli.log_format, stream);
    match commands::execute(cli.command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("switchboard: {error:#}");
            ExitCode::FAILURE
        }
    }
}
