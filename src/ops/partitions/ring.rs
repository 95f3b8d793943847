//! The routing side of a change of the partition count: the switch to
//! `P.inbound.next`, the rebuild of `P.inbound.hash` and the switch back
//! (steps 2 and 4 of [`super`]).

use lapin::options::{ExchangeBindOptions, ExchangeDeclareOptions, ExchangeUnbindOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};

use super::remove::queue_exists;
use crate::amqp::{bind_partition, declare_partition};
use crate::names::Names;
use crate::ops::{OpsError, within};

fn ring_options() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        internal: true,
        ..ExchangeDeclareOptions::default()
    }
}

/// Step 2: `P.inbound.next` over the partitions `0..to`, then `P.inbound`
/// bound to it. A `P.inbound.next` left by an earlier run is made afresh (no
/// event passes it before the switch: `P.inbound` is bound to it last).
pub(super) async fn switch(channel: &Channel, names: &Names, to: u16) -> Result<(), OpsError> {
    let next = names.inbound_next();
    within(
        "exchange.delete",
        channel.exchange_delete(next.as_str().into(), Default::default()),
    )
    .await?;
    within(
        "exchange.declare",
        channel.exchange_declare(
            next.as_str().into(),
            ExchangeKind::Custom("x-consistent-hash".into()),
            ring_options(),
            FieldTable::default(),
        ),
    )
    .await?;
    for n in 0..to {
        within("queue.declare", declare_partition(channel, names, n)).await?;
        within("queue.bind", bind_partition(channel, names, &next, n)).await?;
    }
    // Deployments of earlier versions bound P.inbound to P.inbound.hash; its
    // alternate exchange does the same, and a binding would outrank the switch.
    inbound_binding(channel, names, &names.inbound_hash(), false).await?;
    inbound_binding(channel, names, &next, true).await
}

/// Binds `P.inbound` to the exchange `ring`, or removes that binding (which is
/// no error when there is none).
async fn inbound_binding(
    channel: &Channel,
    names: &Names,
    ring: &str,
    bind: bool,
) -> Result<(), OpsError> {
    let (destination, source) = (ring.into(), names.inbound().into());
    if bind {
        let options = ExchangeBindOptions::default();
        let request = channel.exchange_bind(
            destination,
            source,
            "".into(),
            options,
            FieldTable::default(),
        );
        within("exchange.bind", request).await
    } else {
        let options = ExchangeUnbindOptions::default();
        let request = channel.exchange_unbind(
            destination,
            source,
            "".into(),
            options,
            FieldTable::default(),
        );
        within("exchange.unbind", request).await
    }
}

/// Step 4: `P.inbound.hash` emptied and bound to `0..to` in order, so its
/// buckets are those of `P.inbound.next`.
pub(super) async fn rebuild(
    conn: &Connection,
    channel: &Channel,
    names: &Names,
    upto: u16,
    to: u16,
) -> Result<(), OpsError> {
    let hash = names.inbound_hash();
    for n in 0..upto {
        let partition = names.inbound_partition(n);
        if queue_exists(conn, &partition).await? {
            within(
                "queue.unbind",
                channel.queue_unbind(
                    partition.as_str().into(),
                    hash.as_str().into(),
                    "1".into(),
                    FieldTable::default(),
                ),
            )
            .await?;
        }
    }
    for n in 0..to {
        within("queue.bind", bind_partition(channel, names, &hash, n)).await?;
    }
    Ok(())
}

/// Step 4, end: `P.inbound` without a binding routes through `P.inbound.hash` again.
pub(super) async fn switch_back(channel: &Channel, names: &Names) -> Result<(), OpsError> {
    let next = names.inbound_next();
    inbound_binding(channel, names, &next, false).await?;
    within(
        "exchange.delete",
        channel.exchange_delete(next.as_str().into(), Default::default()),
    )
    .await?;
    Ok(())
}
