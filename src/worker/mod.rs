//! The worker process: connects, declares the topology, consumes the inbound
//! partitions, keeps each account's order ([`sequencer`]) and runs each
//! delivery through the [`pipeline`], reconnecting
//! with backoff when the broker goes away and shutting down in phases.

mod consumer;
mod fence;
pub mod partitions;
pub mod pipeline;
pub mod sequencer;
mod startup;
mod subscription;
mod tasks;
mod turn;

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use lapin::Connection;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::amqp::{self, Nodes, Publisher};
use crate::config::{Config, redact};
use crate::monitor::{self, Health};
use crate::names::Names;
use crate::store::Store;
use pipeline::Processor;

/// How long closing a channel or connection may take: a broker that stopped
/// answering must not keep a worker from reconnecting or stopping.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Why the worker could not start or had to stop. Each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid AMQP URL {url:?}: {reason}")]
    AmqpUrl { url: String, reason: String },
    #[error("invalid Redis URL {url:?}: {reason}")]
    RedisUrl { url: String, reason: String },
    #[error("cannot connect to RabbitMQ at {url}: {reason}")]
    AmqpUnreachable { url: String, reason: String },
    #[error("cannot connect to Redis at {url}: {reason}")]
    RedisUnreachable { url: String, reason: String },
    #[error("{0}")]
    Metrics(String),
    #[error(
        "cannot declare the topology (is the rabbitmq_consistent_hash_exchange plugin enabled?): {0}"
    )]
    Topology(String),
    #[error("{last} (still failing after waiting {secs} s; see --startup-wait)")]
    StartupWait { secs: u64, last: Box<RunError> },
}

/// How long connecting to RabbitMQ, or declaring the topology, may take.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// Runs a worker until `shutdown` is cancelled. Start-up problems are returned:
/// a bad URL or a refusal at once, an unreachable service after waiting for it
/// up to `--startup-wait` (see [`startup`]). After start-up a lost broker or
/// Redis is waited out with backoff.
pub async fn run(mut config: Config, shutdown: CancellationToken) -> Result<(), RunError> {
    let nodes = Nodes::parse(&config.amqp_url).map_err(|bad| RunError::AmqpUrl {
        url: bad.url,
        reason: bad.reason,
    })?;
    let store = Store::open(&config).map_err(|reason| RunError::RedisUrl {
        url: redact(&config.redis_url),
        reason,
    })?;
    let health = Health::default();
    if let Some(addr) = config.metrics_addr {
        monitor::serve(addr, health.clone(), store.clone(), shutdown.clone())
            .await
            .map_err(|e| RunError::Metrics(e.to_string()))?;
    }
    let names = Names::new(&config.prefix);
    let worker_id = uuid::Uuid::new_v4().to_string();
    // A signal during start-up (a service that never answers, a long wait) is honoured.
    let (connection, mut node, partitions) = tokio::select! {
        started = startup::start(&config, &nodes, &store, &names) => started?,
        () = shutdown.cancelled() => {
            info!("Shutdown during start-up.");
            return Ok(());
        }
    };
    config.partitions = partitions;
    let mut declared = true;
    info!(prefix = %config.prefix, worker = %worker_id, node = %nodes.shown(node), redis_mode = ?config.redis_mode, partitions = config.partitions, concurrency = config.concurrency, "Worker started.");

    let mut connection = Some(connection);
    let mut backoff = reconnect_backoff();
    loop {
        let conn = match connection.take() {
            Some(conn) => conn,
            None => match connect(&nodes, Some(node)).await {
                Ok((conn, index)) => {
                    node = index;
                    conn
                }
                Err(failed) => {
                    let pause = backoff.next().unwrap_or(Duration::from_secs(30));
                    let error = failed.reason();
                    warn!(%error, pause_ms = pause.as_millis() as u64, "RabbitMQ unreachable; retrying.");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = shutdown.cancelled() => return Ok(()),
                    }
                }
            },
        };
        // After a reconnect, declare again: the broker may have lost what it had.
        if !declared && let Err(error) = declare(&conn, &names, config.partitions).await {
            warn!(%error, "Cannot declare the topology; retrying.");
            let _ = tokio::time::timeout(CLOSE_WAIT, conn.close(320, "reconnecting".into())).await;
            let pause = backoff.next().unwrap_or(Duration::from_secs(10));
            tokio::select! {
                () = tokio::time::sleep(pause) => continue,
                () = shutdown.cancelled() => return Ok(()),
            }
        }
        if !declared {
            info!(node = %nodes.shown(node), "Reconnected to RabbitMQ.");
        }
        declared = false;
        let ended = session(
            &config,
            &names,
            &store,
            (&conn, &nodes, node),
            &worker_id,
            &health,
            &shutdown,
        )
        .await;
        health.set_consuming(false);
        match ended {
            Ok(consumer::Ended::Repartitioned(count)) => {
                // The command declared the new partitions; consume them on the same connection.
                info!(
                    from = config.partitions,
                    to = count,
                    "The partition count changed; consuming the new partitions."
                );
                config.partitions = count;
                connection = Some(conn);
                declared = true;
            }
            Ok(consumer::Ended::Shutdown) => {
                let _ = tokio::time::timeout(CLOSE_WAIT, conn.close(200, "shutdown".into())).await;
                info!("Worker stopped.");
                return Ok(());
            }
            Err(error) => {
                warn!(%error, node = %nodes.shown(node), "Lost RabbitMQ; reconnecting.");
                crate::monitor::counters::reconnect();
                let _ =
                    tokio::time::timeout(CLOSE_WAIT, conn.close(320, "reconnecting".into())).await;
                backoff = reconnect_backoff();
                let pause = backoff.next().unwrap_or(Duration::from_secs(1));
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    }
}

/// One connection's life: consume until shutdown or a change of the partition
/// count (Ok), or until the broker fails (Err). `conn` (on node `node`)
/// consumes; the session publishes on a connection of its own to the same
/// node, opened here and closed when it ends. lapin checks every channel of a
/// connection before it writes a frame, and a worker has a channel per
/// partition: on a connection with only the publishing and declaring channels
/// that check stays small (with 64 partitions, callgrind: 208,559 -> 197,387
/// instructions per `known` event). It is also what RabbitMQ advises: a connection
/// blocked by a resource alarm then holds up the publishes, not the acks.
async fn session(
    config: &Config,
    names: &Names,
    store: &Store,
    (conn, nodes, node): (&Arc<Connection>, &Nodes, usize),
    worker_id: &str,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<consumer::Ended, consumer::Broken> {
    let publishing = Arc::new(
        nodes
            .connect_to(node, "switchboard-worker-publisher", CONNECT_WAIT)
            .await?,
    );
    let ended = async {
        let publisher = bounded(Publisher::open(&publishing, names.clone()))
            .await?
            .with_user_queue_type(config.user_queue_type);
        let pipeline = Processor {
            store: store.clone(),
            publisher: publisher.clone(),
        };
        let consumer = consumer::Consumer {
            config,
            names,
            pipeline,
            conn: conn.as_ref(),
            worker_id,
            health,
        };
        let ended = consumer.run(shutdown).await;
        publisher.close().await;
        ended
    }
    .await;
    let _ = tokio::time::timeout(CLOSE_WAIT, publishing.close(200, "session over".into())).await;
    ended
}

/// Connects to the first node that answers, trying the nodes after `lost`
/// first (see [`Nodes::order`]), each under [`CONNECT_WAIT`]: a node that
/// accepts TCP but never answers is a timeout (an I/O error), not a hang.
async fn connect(
    nodes: &Nodes,
    lost: Option<usize>,
) -> Result<(Arc<Connection>, usize), amqp::Unreachable> {
    let (conn, index) = nodes
        .connect(lost, "switchboard-worker", CONNECT_WAIT)
        .await?;
    Ok((Arc::new(conn), index))
}

/// Declares the topology on a channel of its own, under [`CONNECT_WAIT`].
/// The partitions are bound to `P.inbound.hash` only when it is not there yet
/// (a new deployment, or a broker that restarted: it is transient): once it
/// exists, only `switchboard partitions` changes its bindings, so a worker
/// reconnecting during a change of the count cannot disturb the new order of
/// buckets. Inbound exchanges that exist are not declared again (see
/// [`amqp::Existing`]).
async fn declare(conn: &Connection, names: &Names, partitions: u16) -> Result<(), lapin::Error> {
    let existing = amqp::Existing {
        ring: exchange_exists(conn, &names.inbound_hash(), "x-consistent-hash").await?,
        inbound: exchange_exists(conn, &names.inbound(), "fanout").await?,
    };
    if existing.ring && !ring_is_transient(conn, names).await? {
        warn!(
            exchange = %names.inbound_hash(),
            "The inbound ring is durable (declared by an earlier version): a broker restart \
             rebuilds it in another order and moves accounts to other partitions. Stop the \
             workers, delete P.inbound and P.inbound.hash, and start them again."
        );
    }
    let channel = bounded(conn.create_channel()).await?;
    bounded(amqp::declare_with(&channel, names, partitions, existing)).await?;
    let _ = tokio::time::timeout(CLOSE_WAIT, channel.close(200, "declared".into())).await;
    Ok(())
}

/// Whether the existing `P.inbound.hash` is transient, as this version declares
/// it: declared again as such, it is accepted; one an earlier version made
/// durable is refused with 406 PRECONDITION_FAILED.
async fn ring_is_transient(conn: &Connection, names: &Names) -> Result<bool, lapin::Error> {
    let names = names.clone();
    probe(
        conn,
        |channel| async move { amqp::declare_ring(&channel, &names).await },
        amqp::is_precondition_failed,
    )
    .await
}

/// Whether `exchange` exists, asked with a passive declare.
async fn exchange_exists(
    conn: &Connection,
    exchange: &str,
    kind: &str,
) -> Result<bool, lapin::Error> {
    let (exchange, kind) = (exchange.to_owned(), kind.to_owned());
    probe(
        conn,
        |channel| async move {
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    lapin::ExchangeKind::Custom(kind),
                    lapin::options::ExchangeDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await
        },
        is_not_found,
    )
    .await
}

/// Runs `declare` on a channel of its own, under [`CONNECT_WAIT`]: true if the
/// broker accepted it, false if it refused it as `refused` tells (the refusal
/// closed the channel); any other error is returned.
async fn probe<F>(
    conn: &Connection,
    declare: impl FnOnce(lapin::Channel) -> F,
    refused: fn(&lapin::Error) -> bool,
) -> Result<bool, lapin::Error>
where
    F: std::future::Future<Output = Result<(), lapin::Error>>,
{
    let channel = bounded(conn.create_channel()).await?;
    match bounded(declare(channel.clone())).await {
        Ok(()) => {
            let _ = tokio::time::timeout(CLOSE_WAIT, channel.close(200, "probed".into())).await;
            Ok(true)
        }
        Err(e) if refused(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A request to the broker under [`CONNECT_WAIT`]; a timeout is an I/O error.
pub(crate) async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, lapin::Error>>,
) -> Result<T, lapin::Error> {
    tokio::time::timeout(CONNECT_WAIT, work)
        .await
        .unwrap_or_else(|_| {
            Err(lapin::Error::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("RabbitMQ did not answer within {CONNECT_WAIT:?}"),
            )))
        })
}

/// The broker answered NOT_FOUND (a missing queue or exchange).
fn is_not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e) if e.get_id() == 404)
}

/// Pauses between reconnection attempts: 100 ms doubling to 10 s, jittered, forever.
fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Pauses between retries of one event after a passing failure.
pub(crate) fn retry_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_password_of_a_seed_list_is_hidden() {
        assert_eq!(
            crate::config::redact("redis://u:secret@a:7000,redis://:other@b:7001,redis://c:7002"),
            "redis://u:***@a:7000,redis://:***@b:7001,redis://c:7002"
        );
    }
}
