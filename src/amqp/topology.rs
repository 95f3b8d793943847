//! Declares everything the worker consumes from or publishes to.
//!
//! `P.inbound` leads to a consistent-hash exchange over `P.inbound.{n}` quorum
//! queues with a single active consumer: an event's routing key (its
//! `{accountId}`) always picks the same partition, so all events of one
//! account stay in one queue, in order, and are handled by one worker at a
//! time. Quorum queues because they are replicated, and with publisher
//! confirms faster than classic durable queues on this broker.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use super::quorum;
use crate::names::Names;

/// A partition is consumed by one consumer at a time, whatever the number of
/// workers subscribed to it: the broker activates the next one in line only
/// when the active one goes away. That keeps an account's events in order across
/// workers; which worker is active is balanced by `worker::partitions`.
fn single_active() -> FieldTable {
    let mut args = quorum();
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    args
}

/// Declares the exchanges and queues of the contract, binding the partitions
/// to `P.inbound.hash` (see [`declare_with`]).
pub async fn declare(
    channel: &Channel,
    names: &Names,
    partitions: u16,
) -> Result<(), lapin::Error> {
    declare_with(channel, names, partitions, true).await
}

/// Declares the exchanges and queues of the contract.
///
/// The inbound side is declared back to front, so that nothing published at
/// any instant after `P.inbound` exists is lost or lands in the wrong partition:
/// first the internal consistent-hash exchange `P.inbound.hash` with every
/// partition bound to it, and only then `P.inbound` itself, a fanout whose
/// alternate exchange is `P.inbound.hash` from its first instant. `P.inbound`
/// has no binding of its own: all it gets goes on to its alternate exchange,
/// except while `switchboard partitions` binds it to `P.inbound.next` for a
/// change of the count.
///
/// The consistent hash gives each binding its buckets in the order the
/// bindings were made, so partition `n` must be the `n`-th bound. `bind_ring`
/// is false where `P.inbound.hash` already existed: its bindings are then left
/// alone, since a change of the count may be rebuilding them.
pub async fn declare_with(
    channel: &Channel,
    names: &Names,
    partitions: u16,
    bind_ring: bool,
) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            names.inbound_hash().into(),
            ExchangeKind::Custom("x-consistent-hash".into()),
            ExchangeDeclareOptions {
                internal: true,
                ..durable
            },
            FieldTable::default(),
        )
        .await?;
    for n in 0..partitions {
        declare_partition(channel, names, n).await?;
        if bind_ring {
            bind_partition(channel, names, &names.inbound_hash(), n).await?;
        }
    }
    let mut inbound_args = FieldTable::default();
    inbound_args.insert(
        "alternate-exchange".into(),
        AMQPValue::LongString(names.inbound_hash().into()),
    );
    channel
        .exchange_declare(
            names.inbound().into(),
            ExchangeKind::Fanout,
            durable,
            inbound_args,
        )
        .await?;
    for (exchange, kind) in [
        (names.notify(), ExchangeKind::Direct),
        (names.crm(), ExchangeKind::Topic),
        (names.outbound(), ExchangeKind::Topic),
    ] {
        channel
            .exchange_declare(exchange.into(), kind, durable, FieldTable::default())
            .await?;
    }
    channel
        .queue_declare(names.dead().into(), durable_queue(), quorum())
        .await?;
    Ok(())
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Declares partition `n`: a durable quorum queue with a single active consumer.
pub async fn declare_partition(
    channel: &Channel,
    names: &Names,
    n: u16,
) -> Result<(), lapin::Error> {
    channel
        .queue_declare(
            names.inbound_partition(n).into(),
            durable_queue(),
            single_active(),
        )
        .await?;
    Ok(())
}

/// Binds partition `n` to the consistent-hash exchange `ring` with weight 1
/// (with this exchange type the binding key is the weight), so it takes the
/// next bucket.
pub async fn bind_partition(
    channel: &Channel,
    names: &Names,
    ring: &str,
    n: u16,
) -> Result<(), lapin::Error> {
    channel
        .queue_bind(
            names.inbound_partition(n).into(),
            ring.into(),
            "1".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}
