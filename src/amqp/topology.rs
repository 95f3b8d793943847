//! Declares everything the worker consumes from or publishes to.
//!
//! `P.inbound` leads to a consistent-hash exchange over `P.inbound.{n}` quorum
//! queues with a single active consumer: an event's routing key (its
//! `{accountId}`) always picks the same partition, so all events of one
//! account stay in one queue, in order, and are handled by one worker at a
//! time. Quorum queues because they are replicated, and with publisher
//! confirms faster than classic durable queues on this broker.
//!
//! `P.inbound` and `P.inbound.hash` are transient (not durable): they and the
//! ring's bindings go when the broker restarts, and the first worker to
//! reconnect declares them again, binding the partitions in order. A durable
//! consistent-hash exchange would survive the restart with another ring:
//! RabbitMQ 3.10 rebuilds its buckets from the bindings sorted by queue name
//! (`P.inbound.0, .1, .10, .11, ...`, plus a few moved at boot), not in the
//! order they were made. Accounts would then land in other partitions while
//! their earlier events still wait in the old ones, and two workers would
//! handle one account at once (seen in the chaos run: partition 15 became 23).
//! Without `P.inbound` a publisher's message is refused (NOT_FOUND closes its
//! channel) until a worker declared the topology again, so it retries;
//! nothing is routed by a wrong ring.

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
    declare_with(channel, names, partitions, Existing::default()).await
}

/// The inbound exchanges that already exist: they are not declared again (an
/// older deployment's are durable, and a declare as transient would fail).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Existing {
    /// `P.inbound.hash`, with its bindings, which are then left alone.
    pub ring: bool,
    /// `P.inbound`.
    pub inbound: bool,
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
/// bindings were made, so partition `n` must be the `n`-th bound. Where
/// `P.inbound.hash` already existed (`existing.ring`), its bindings are left
/// alone, since a change of the count may be rebuilding them. Workers that
/// declare at once (after a broker restart) each bind `0..N` in order, and a
/// binding made again changes nothing, so partition `n` is still bound first
/// after `n - 1`.
/// Declares `P.inbound.hash`, the internal consistent-hash exchange, transient.
/// On one that exists durable (an earlier version's) the broker answers 406
/// PRECONDITION_FAILED and closes the channel.
pub async fn declare_ring(channel: &Channel, names: &Names) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            names.inbound_hash().into(),
            ExchangeKind::Custom("x-consistent-hash".into()),
            ExchangeDeclareOptions {
                internal: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

pub async fn declare_with(
    channel: &Channel,
    names: &Names,
    partitions: u16,
    existing: Existing,
) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    // Transient, with `P.inbound`: a broker restart must not keep a ring
    // rebuilt in another order (see the module's documentation).
    let transient = ExchangeDeclareOptions::default();
    if !existing.ring {
        declare_ring(channel, names).await?;
    }
    for n in 0..partitions {
        declare_partition(channel, names, n).await?;
        if !existing.ring {
            bind_partition(channel, names, &names.inbound_hash(), n).await?;
        }
    }
    if !existing.inbound {
        let mut inbound_args = FieldTable::default();
        inbound_args.insert(
            "alternate-exchange".into(),
            AMQPValue::LongString(names.inbound_hash().into()),
        );
        channel
            .exchange_declare(
                names.inbound().into(),
                ExchangeKind::Fanout,
                transient,
                inbound_args,
            )
            .await?;
    }
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
