//! The `switchboard` binary: reads the configuration, starts telemetry and
//! hands over to [`switchboard::run`] until SIGINT or SIGTERM.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Routes messenger conversations to CRM users."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a worker.
    Run(switchboard::Config),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,lapin=warn".into()),
        )
        .init();
    match cli.command {
        Command::Run(config) => {
            let shutdown = CancellationToken::new();
            tokio::spawn(signal(shutdown.clone()));
            match switchboard::run(config, shutdown).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("switchboard: {error}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
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
