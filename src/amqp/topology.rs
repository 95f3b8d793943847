//! Declares everything the worker consumes from or publishes to.
//!
//! `P.inbound` is a consistent-hash exchange over `P.inbound.{n}` quorum
//! queues with a single active consumer: an event's routing key
//! (`{accountId}.{chatType}.{chatId}` for chat events) always picks the same
//! partition, so the messages of one chat stay in one queue, in order, and are
//! handled by one worker at a time. Quorum queues because they are replicated, and with
//! publisher confirms faster than classic durable queues on this broker.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, ExchangeKind};

use super::quorum;

/// A partition is consumed by one consumer at a time, whatever the number of
/// workers subscribed to it: the broker activates the next one in line only
/// when the active one goes away. That keeps a chat's events in order across
/// workers; which worker is active is balanced by `worker::partitions`.
fn single_active() -> FieldTable {
    let mut args = quorum();
    args.insert(
        "x-single-active-consumer".into(),
        lapin::types::AMQPValue::Boolean(true),
    );
    args
}
use crate::names::Names;

/// Declares the exchanges and queues of the contract.
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
            names.inbound().into(),
            ExchangeKind::Custom("x-consistent-hash".into()),
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            names.notify().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            names.crm().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            names.outbound().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    let queue = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(names.dead().into(), queue, quorum())
        .await?;
    for n in 0..partitions {
        let partition = names.inbound_partition(n);
        channel
            .queue_declare(partition.as_str().into(), queue, single_active())
            .await?;
        // With a consistent-hash exchange the binding key is the partition's weight.
        channel
            .queue_bind(
                partition.as_str().into(),
                names.inbound().into(),
                "1".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
