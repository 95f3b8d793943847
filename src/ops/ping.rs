//! `switchboard ping`: whether this host can work on a prefix: Redis answers,
//! RabbitMQ answers, and the prefix's topology exists (`P.inbound` and
//! `P.dead`, which every worker declares at start).
//!
//! The container's HEALTHCHECK runs it until the worker serves its own
//! readiness endpoint: it says the worker's services are there, not that the
//! worker process itself is consuming (a worker that stops exits, and the
//! container with it).

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ExchangeKind};

use super::{OpsError, Target, close_channel, within};

/// Checks Redis, the broker and the topology; the first failure is the error.
pub async fn ping(target: &Target) -> Result<(), OpsError> {
    drop(super::redis(target).await?);
    let conn = super::amqp(target).await?;
    let result = topology(&conn, target).await;
    super::close(&conn).await;
    result
}

async fn topology(conn: &Connection, target: &Target) -> Result<(), OpsError> {
    let names = target.names();
    let channel = within("opening a channel", conn.create_channel()).await?;
    let exchange = within(
        "exchange.declare",
        channel.exchange_declare(
            names.inbound().as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        ),
    )
    .await;
    let queue = match exchange {
        Ok(()) => {
            within(
                "queue.declare",
                channel.queue_declare(
                    names.dead().as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                ),
            )
            .await
        }
        Err(e) => Err(e),
    };
    close_channel(&channel).await;
    match queue {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Err(OpsError::NotFound(format!(
            "the topology of prefix {:?} is missing ({}): no worker has started on it",
            target.prefix, e
        ))),
        Err(e) => Err(e),
    }
}
