//! One partition's subscription: a channel and consumer of its own, and the
//! task that forwards what it delivers to the session's dispatcher.
//!
//! The forwarder tells events from the fence markers of a change of the
//! partition count ([`crate::partitioning`]): a marker is published by the
//! command straight to the partition's queue (the default exchange) with the
//! header [`FENCE_HEADER`]; events come through `P.inbound`.

use futures_util::StreamExt;
use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::bounded;
use super::pipeline::{Admitted, admit};
use crate::names::Names;
use crate::partitioning::FENCE_HEADER;

/// A delivery and where it came from: its partition and that partition's
/// subscription (a partition is re-subscribed when it is handed over).
pub struct Work {
    pub admitted: Admitted,
    pub partition: u16,
    pub generation: u64,
    /// Numbered by the consumer as it offers the work to the sequencer.
    pub ticket: super::sequencer::Ticket,
}

/// A fence marker this worker holds (unacked) during a change of the count.
pub(super) struct Fence {
    pub id: String,
    pub marker: Acker,
    /// Every delivery before the marker finished, and Redis knows it.
    pub recorded: bool,
    /// The first tick's probe that read Redis after this marker arrived, so
    /// after the change it belongs to was recorded (the command records a
    /// change before it places the markers): an earlier probe's state may not
    /// know the change yet.
    pub first_probe: u64,
}

/// One partition's subscription and what is in flight from it.
pub(super) struct Subscription {
    pub channel: Channel,
    pub generation: u64,
    pub in_flight: usize,
    /// Something was delivered since subscribing: this worker may be the active one.
    pub active: bool,
    pub since: tokio::time::Instant,
    /// Handing over: deliveries are held (left unacked), not started.
    pub yielding: bool,
    /// A marker came: what follows it is held until the change is over.
    pub fence: Option<Fence>,
}

impl Subscription {
    /// Whether a new delivery of this subscription must be held, not started.
    pub fn holds(&self) -> bool {
        self.yielding || self.fence.is_some()
    }
}

/// What the per-partition forwarders send to the dispatcher.
pub(super) enum Incoming {
    Delivery(Box<Work>),
    Marker {
        partition: u16,
        generation: u64,
        id: String,
        marker: Acker,
    },
    Ended {
        partition: u16,
        generation: u64,
        error: Option<lapin::Error>,
    },
}

/// Where a subscription is opened and what it reports to.
pub(super) struct Opener<'a> {
    pub conn: &'a Connection,
    pub names: &'a Names,
    pub prefetch: u16,
    pub worker_id: &'a str,
    pub in_tx: &'a mpsc::UnboundedSender<Incoming>,
}

impl Opener<'_> {
    /// Opens a subscription to partition `n` on a channel of its own.
    pub async fn open(
        &self,
        n: u16,
        generation: u64,
        forwarders: &mut JoinSet<()>,
    ) -> Result<Subscription, lapin::Error> {
        let channel = bounded(self.conn.create_channel()).await?;
        bounded(channel.basic_qos(self.prefetch, BasicQosOptions::default())).await?;
        let mut consumer = bounded(channel.basic_consume(
            self.names.inbound_partition(n).into(),
            // Operators (and tests) see in `rabbitmqctl list_consumers` which worker is active where.
            format!("{}.p{n}.g{generation}", self.worker_id).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await?;
        let tx = self.in_tx.clone();
        forwarders.spawn(async move {
            let error = loop {
                let incoming = match consumer.next().await {
                    Some(Ok(delivery)) => match fence_id(&delivery) {
                        Some(id) => Incoming::Marker {
                            partition: n,
                            generation,
                            id,
                            marker: delivery.acker,
                        },
                        None => Incoming::Delivery(Box::new(Work {
                            admitted: admit(delivery),
                            partition: n,
                            generation,
                            ticket: 0,
                        })),
                    },
                    Some(Err(e)) => break Some(e),
                    None => break None,
                };
                if tx.send(incoming).is_err() {
                    return;
                }
            };
            let _ = tx.send(Incoming::Ended {
                partition: n,
                generation,
                error,
            });
        });
        Ok(Subscription {
            channel,
            generation,
            in_flight: 0,
            active: false,
            since: tokio::time::Instant::now(),
            yielding: false,
            fence: None,
        })
    }
}

/// The change id of a fence marker: published to the queue itself (the
/// default exchange, which publishers of events do not use) with the header.
fn fence_id(delivery: &Delivery) -> Option<String> {
    if !delivery.exchange.as_str().is_empty() {
        return None;
    }
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(FENCE_HEADER)? {
        AMQPValue::LongString(id) => Some(String::from_utf8_lossy(id.as_bytes()).into_owned()),
        AMQPValue::ShortString(id) => Some(id.as_str().to_owned()),
        _ => None,
    }
}
