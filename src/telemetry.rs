//! Logs: text or JSON lines, colours only on a terminal, and no ERROR from the
//! AMQP client for what Switchboard reports itself.
//!
//! lapin logs an ERROR "Connection error" for every error it hands back to its
//! caller, including the harmless ones of a clean shutdown: a channel or
//! consumer dropped while the connection closes makes lapin's own close of it
//! fail with "invalid connection state: Closed" or "invalid channel state:
//! Closing". It logs an ERROR "Channel closed" for every channel the broker
//! closes, though the request that caused it fails with the same reason. A
//! lost broker, a refused login and a refused request are returned to Switchboard,
//! which logs them in its own words and at their real level (a passing outage
//! is a WARN "Lost RabbitMQ; reconnecting.", a start-up failure one line on
//! stderr). So those lapin events are dropped, unless `RUST_LOG` asks for
//! lapin at `debug` or `trace`, where everything lapin says is kept.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,lapin=warn";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Installs the global subscriber. Colours only when `stream` is a terminal
/// and `NO_COLOR` is not set, so files and collectors get plain text.
pub fn init(format: LogFormat, stream: Stream) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = rust_log
        .as_deref()
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let keep_lapin = rust_log.as_deref().is_some_and(wants_lapin_detail);
    let terminal = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    let ansi = terminal && std::env::var_os("NO_COLOR").is_none();
    let writer = move || -> Box<dyn std::io::Write> {
        match stream {
            Stream::Stdout => Box::new(std::io::stdout()),
            Stream::Stderr => Box::new(std::io::stderr()),
        }
    };
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(writer)
            .boxed(),
    };
    let noise = (!keep_lapin).then_some(LapinNoise);
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(noise)
        .with(fmt)
        .try_init();
}

fn wants_lapin_detail(rust_log: &str) -> bool {
    rust_log.split(',').any(|directive| {
        let directive = directive.trim();
        directive.starts_with("lapin")
            && (directive.ends_with("=debug") || directive.ends_with("=trace"))
    })
}

/// Drops lapin's ERROR events for errors it also returns to Switchboard.
pub struct LapinNoise;

impl<S: Subscriber> Layer<S> for LapinNoise {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if !meta.target().starts_with("lapin") {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        !is_reported_elsewhere(meta.target(), &message.0)
    }
}

/// lapin's events whose error reaches the caller anyway.
pub fn is_reported_elsewhere(target: &str, message: &str) -> bool {
    match target {
        // Every caller waiting on the connection gets the error.
        "lapin::channels" => message == "Connection error",
        // The caller of `connect` gets the error; there is no recovery to abort.
        "lapin::io_loop" => message.starts_with("Exponential backoff attempts exhausted"),
        // The broker closed a channel or the connection: the pending request
        // fails with the broker's reason (a passive declare of a missing queue
        // is how the operator commands probe, and is not an error).
        "lapin::channel" => {
            message == "Channel closed"
                || message == "Connection closed"
                // A broker closing a refused connection can cross lapin's own
                // close; the caller gets the refusal either way.
                || message.contains("close-ok received")
        }
        _ => false,
    }
}

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    // lapin logs some errors as `error!(%error)`: no message, the error as a field.
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" || (field.name() == "error" && self.0.is_empty()) {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" || (field.name() == "error" && self.0.is_empty()) {
            self.0 = value.to_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lapins_duplicates_are_dropped() {
        assert!(is_reported_elsewhere("lapin::channels", "Connection error"));
        assert!(is_reported_elsewhere(
            "lapin::io_loop",
            "Exponential backoff attempts exhausted, aborting recovery"
        ));
        assert!(is_reported_elsewhere("lapin::channel", "Channel closed"));
        assert!(is_reported_elsewhere(
            "lapin::channel",
            "unexpected connection close-ok received on channel 0"
        ));
        assert!(!is_reported_elsewhere("lapin::channels", "something else"));
        assert!(!is_reported_elsewhere(
            "switchboard::worker",
            "Connection error"
        ));
    }

    #[test]
    fn lapin_detail_only_when_asked() {
        assert!(wants_lapin_detail("info,lapin=debug"));
        assert!(wants_lapin_detail("lapin::channels=trace"));
        assert!(!wants_lapin_detail("info,lapin=warn"));
        assert!(!wants_lapin_detail("debug"));
    }
}
