//! Start-up: reach Redis, connect to RabbitMQ and declare the topology.
//!
//! Services that are not up yet (a container starting, a broker restarting)
//! are waited for with backoff, up to `--startup-wait`; a refusal that waiting
//! cannot change (a bad password, a topology the broker rejects) stops the
//! start at once. Each step is under a timeout, so a broker that accepts TCP
//! but never answers costs one timeout per try, and the caller races the whole
//! start against the shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use lapin::protocol::{AMQPErrorKind, AMQPHardError};
use lapin::{Connection, ErrorKind};
use tokio::time::Instant;
use tracing::warn;

use super::{CLOSE_WAIT, RunError, connect, declare, redact};
use crate::amqp::Nodes;
use crate::config::Config;
use crate::names::Names;
use crate::store::Store;

/// How long the Redis ping of one try may take.
const PING_WAIT: Duration = Duration::from_secs(5);

/// Why one try failed, and whether waiting may help.
struct Failure {
    error: RunError,
    passing: bool,
}

/// Connects and declares, waiting up to the configured time for services that
/// are not reachable yet.
pub(super) async fn start(
    config: &Config,
    nodes: &Nodes,
    store: &Store,
    names: &Names,
) -> Result<(Arc<Connection>, usize), RunError> {
    let wait = config.startup_wait();
    let deadline = Instant::now() + wait;
    let mut pauses = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        let failure = match attempt(config, nodes, store, names).await {
            Ok(conn) => return Ok(conn),
            Err(failure) => failure,
        };
        if !failure.passing {
            return Err(failure.error);
        }
        let now = Instant::now();
        let pause = pauses
            .next()
            .unwrap_or(Duration::from_secs(5))
            .min(deadline.saturating_duration_since(now));
        if pause.is_zero() {
            return Err(if wait.is_zero() {
                failure.error
            } else {
                RunError::StartupWait {
                    secs: wait.as_secs(),
                    last: Box::new(failure.error),
                }
            });
        }
        warn!(error = %failure.error, pause_ms = pause.as_millis() as u64, "A service is not ready yet; waiting.");
        tokio::time::sleep(pause).await;
    }
}

async fn attempt(
    config: &Config,
    nodes: &Nodes,
    store: &Store,
    names: &Names,
) -> Result<(Arc<Connection>, usize), Failure> {
    let redis_url = redact(&config.redis_url);
    match tokio::time::timeout(PING_WAIT, store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(Failure {
                passing: e.is_passing(),
                error: RunError::RedisUnreachable {
                    url: redis_url,
                    reason: e
                        .redis_error()
                        .map_or_else(|| e.to_string(), crate::diagnose::redis),
                },
            });
        }
        Err(_) => {
            return Err(Failure {
                passing: true,
                error: RunError::RedisUnreachable {
                    url: redis_url,
                    reason: crate::diagnose::no_answer("Redis"),
                },
            });
        }
    }
    let (conn, node) = connect(nodes, None).await.map_err(|failed| Failure {
        passing: failed.is_passing(is_passing),
        error: RunError::AmqpUnreachable {
            url: nodes.shown_all(),
            reason: failed.reason(),
        },
    })?;
    if let Err(e) = declare(&conn, names, config.partitions).await {
        let _ = tokio::time::timeout(CLOSE_WAIT, conn.close(320, "retrying".into())).await;
        return Err(Failure {
            passing: is_passing(&e),
            error: RunError::Topology(e.to_string()),
        });
    }
    Ok((conn, node))
}

/// A broker that is not there yet, went away mid-way or is shutting down, as
/// opposed to one that refused (authentication, a rejected declare).
pub(super) fn is_passing(error: &lapin::Error) -> bool {
    match error.kind() {
        ErrorKind::IOError(_)
        | ErrorKind::MissingHeartbeatError
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::InvalidChannelState(..) => true,
        ErrorKind::ProtocolError(e) => matches!(
            e.kind(),
            AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED)
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::protocol::{AMQPError, AMQPSoftError};

    #[test]
    fn broker_errors_are_classified_by_kind() {
        let io = |kind| lapin::Error::from(std::io::Error::new(kind, "x"));
        let protocol =
            |kind| lapin::Error::from(ErrorKind::ProtocolError(AMQPError::new(kind, "x".into())));
        let table = [
            (io(std::io::ErrorKind::ConnectionRefused), true),
            (io(std::io::ErrorKind::ConnectionReset), true),
            (io(std::io::ErrorKind::UnexpectedEof), true),
            (io(std::io::ErrorKind::TimedOut), true),
            (
                protocol(AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED)),
                true,
            ),
            (
                protocol(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)),
                false,
            ),
            (
                protocol(AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)),
                false,
            ),
            (
                protocol(AMQPErrorKind::Hard(AMQPHardError::COMMANDINVALID)),
                false,
            ),
            (
                protocol(AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)),
                false,
            ),
        ];
        for (error, passing) in table {
            assert_eq!(is_passing(&error), passing, "{error}");
        }
    }
}
