//! The end of a change to fewer partitions: the partitions no longer used are
//! emptied and deleted (step 6 of [`super`]).

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};

use super::POLL;
use crate::names::Names;
use crate::ops::{OpsError, close_channel, within};
use crate::partitioning::FENCE_HEADER;

/// Step 6: the partitions `to..from` still there, once no worker consumes them, emptied
/// and deleted. They hold only markers, unless an event routed by the old
/// count reached one after its marker; such an event goes back to `P.inbound`.
pub(super) async fn remove(
    conn: &Connection,
    channel: &Channel,
    names: &Names,
    to: u16,
    from: u16,
    wait: Duration,
) -> Result<(Vec<String>, usize), OpsError> {
    let mut removed = Vec::new();
    let mut republished = 0;
    for n in to..from {
        let partition = names.inbound_partition(n);
        if !queue_exists(conn, &partition).await? {
            continue;
        }
        let deadline = tokio::time::Instant::now() + wait;
        let left = loop {
            let declared = within(
                "queue.declare",
                channel.queue_declare(
                    partition.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                ),
            )
            .await?;
            if declared.consumer_count() == 0 {
                break declared.message_count();
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OpsError::Refused(format!(
                    "workers still consume {partition} after {} s; run this command again to remove it",
                    wait.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        };
        if left > 0 {
            republished += drain(conn, channel, names, &partition, left).await?;
        }
        within(
            "queue.delete",
            channel.queue_delete(partition.as_str().into(), QueueDeleteOptions::default()),
        )
        .await?;
        removed.push(partition);
    }
    Ok((removed, republished))
}

/// Takes the `left` messages of a removed partition (nothing else can come:
/// no ring routes there and no worker consumes it): markers are dropped,
/// events published again to `P.inbound` (confirmed on `channel`) before they
/// are acked. A consumer, since quorum queues with a single active consumer
/// refuse `basic.get`.
async fn drain(
    conn: &Connection,
    channel: &Channel,
    names: &Names,
    partition: &str,
    left: u32,
) -> Result<usize, OpsError> {
    let reader = within("channel.open", conn.create_channel()).await?;
    let result = async {
        let mut consumer = within(
            "basic.consume",
            reader.basic_consume(
                partition.into(),
                "switchboard-partitions".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        let mut republished = 0;
        for _ in 0..left {
            let delivery = match within("a message of a removed partition", async {
                consumer.next().await.transpose()
            })
            .await?
            {
                Some(delivery) => delivery,
                None => {
                    return Err(OpsError::Ended(format!(
                        "the consumer of {partition} ended"
                    )));
                }
            };
            let is_marker = delivery
                .properties
                .headers()
                .as_ref()
                .is_some_and(|h| h.inner().contains_key(FENCE_HEADER));
            if !is_marker {
                let confirm = within(
                    "basic.publish",
                    channel.basic_publish(
                        names.inbound().as_str().into(),
                        delivery.routing_key.as_str().into(),
                        BasicPublishOptions::default(),
                        &delivery.data,
                        delivery.properties.clone(),
                    ),
                )
                .await?;
                within("the confirm of an event", confirm).await?;
                republished += 1;
            }
            within("basic.ack", delivery.acker.ack(BasicAckOptions::default())).await?;
        }
        Ok(republished)
    }
    .await;
    close_channel(&reader).await;
    result
}

/// Whether a queue exists, asked on a channel of its own (NOT_FOUND closes it).
pub(super) async fn queue_exists(conn: &Connection, queue: &str) -> Result<bool, OpsError> {
    let probe = within("channel.open", conn.create_channel()).await?;
    let answer = within(
        "queue.declare",
        probe.queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        ),
    )
    .await;
    close_channel(&probe).await;
    match answer {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}
