//! Declares everything the worker consumes from or publishes to.
//!
//! `P.inbound` leads to a consistent-hash exchange over `P.inbound.{n}` quorum
//! queues with a single active consumer: an event's routing key (its
//! `{accountId}`) always picks the same partition, so all events of one
//! account stay in one queue, in order, and are handled by one worker at a
//! time. Quorum queues because they are replicated, and with publisher
//! confirms faster than classic durable queues on this broker.

use lapin::options::{
    ExchangeBindOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
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

/// Declares the exchanges and queues of the contract.
///
/// The inbound side is declared back to front, so that nothing published at
/// any instant after `P.inbound` exists is lost or lands in the wrong partition:
/// first the internal consistent-hash exchange `P.inbound.hash` with every
/// partition bound to it, and only then `P.inbound` itself, a fanout whose
/// alternate exchange is `P.inbound.hash` from its first instant. Its binding
/// to `P.inbound.hash` follows; until then (and should it ever be removed)
/// the alternate exchange routes the same way.
pub async fn declare(
    channel: &Channel,
    names: &Names,
    partitions: u16,
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
    let queue = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    for n in 0..partitions {
        let partition = names.inbound_partition(n);
        channel
            .queue_declare(partition.as_str().into(), queue, single_active())
            .await?;
        // With a consistent-hash exchange the binding key is the partition's weight.
        channel
            .queue_bind(
                partition.as_str().into(),
                names.inbound_hash().into(),
                "1".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
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
    channel
        .exchange_bind(
            names.inbound_hash().into(),
            names.inbound().into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
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
        .queue_declare(names.dead().into(), queue, quorum())
        .await?;
    Ok(())
}
