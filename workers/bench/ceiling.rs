//! The broker-ceiling phase: the least any worker must do per event, with no
//! Redis and no logic, on the same path and in the same shape.
//!
//! The ceiling declares the worker's own topology (under `P.ceiling`): events
//! go to `P.inbound` with their account's key, so the consistent hash puts
//! each account's stream on the same number of partitions as for Switchboard.
//! Stand-in consumers (a connection to consume and one to publish each, as a
//! worker has, the worker's prefetch, single
//! active consumer per partition) take each event and publish it, persistent
//! and confirmed, wherever the worker publishes for that event
//! ([`Shape::outputs`]: through `P.notify` to each user told, to `P.crm` for
//! new contacts and deals, to `P.outbound` for a reply), pipelined as the
//! worker's lanes are: the next delivery's messages go out before the earlier
//! ones are confirmed, and each delivery is acked once its own are confirmed,
//! in delivery order. Where to publish rides in a header, with the size to pad
//! the body to (the average the worker published to that exchange in the
//! same run; JSON allows trailing spaces), so the relay needs neither Redis
//! nor JSON. The client side reads the same queues.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Result;
use futures_util::StreamExt;
use futures_util::future::maybe_done;
use futures_util::stream::FuturesOrdered;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, Consumer};
use redis::aio::MultiplexedConnection;
use switchboard::ids::Id;
use switchboard::names::Names;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::account::outgoing;
use crate::amqp;
use crate::args::Args;
use crate::cleanup::Topology;
use crate::collect::{Collector, Outputs};
use crate::limit::within;
use crate::load::{MEASURED, Probes, measure};
use crate::report::PhaseResult;
use crate::session::Bench;
use crate::shape::{Exchange, Shape, Target};

/// The header listing where an event is relayed, space-separated: `n:`, `c:`
/// or `o:` (for `P.notify`, `P.crm`, `P.outbound`), the routing key, `:` and
/// the size in bytes to pad the body to.
const OUTPUTS_HEADER: &str = "x-bench-outputs";

impl Bench {
    pub async fn ceiling(
        &mut self,
        args: &Args,
        shape: &Shape,
        rconn: &mut MultiplexedConnection,
        sizes: Option<Sizes>,
    ) -> Result<PhaseResult> {
        let sizes = sizes.unwrap_or_default();
        let names = Names::new(&format!("{}.ceiling", self.prefix()));
        let mut users = Vec::new();
        for (account, user, _) in shape.users() {
            users.push((account.id.clone(), Id::parse(user)?));
        }
        // Recorded before anything is declared, so cleanup removes whatever got made.
        self.topologies.push(Topology {
            names: names.clone(),
            partitions: args.partitions,
            user_queues: users.iter().map(|(a, u)| names.user_queue(a, u)).collect(),
        });
        let setup = within("open a channel", self.conn().create_channel()).await?;
        within(
            "declare the ceiling's topology",
            switchboard::amqp::declare(&setup, &names, args.partitions),
        )
        .await?;
        amqp::close(&setup).await;
        // The worker's own way of declaring user queues, on a connection of its own.
        let declaring =
            std::sync::Arc::new(amqp::connect(&args.amqp_url, "switchboard-bench declare").await?);
        let user_queues = switchboard::amqp::UserQueues::new(declaring.clone(), names.clone());
        for (account, user) in &users {
            within("declare a user queue", user_queues.declare(account, user)).await?;
        }
        user_queues.close().await;
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            declaring.close(200, "declared".into()),
        )
        .await;

        let mut collector = Collector::new(self.base);
        let mut tasks = self.watch_all(&mut collector, &names, shape).await?;
        let session = CancellationToken::new();
        for w in 0..args.workers {
            // Like a worker: consume on one connection, publish on another.
            let conn = amqp::connect(&args.amqp_url, "switchboard-bench ceiling").await?;
            let publishing =
                amqp::connect(&args.amqp_url, "switchboard-bench ceiling publisher").await?;
            let relays = stand_in(&conn, &publishing, args, &names, w, session.clone()).await;
            self.side_connections.push(conn);
            self.side_connections.push(publishing);
            tasks.push(relays?);
        }

        let publisher = amqp::confirm_channel(self.conn()).await?;
        let inbound = names.inbound();
        let probes = Probes {
            rconn,
            workers: Vec::new(),
        };
        let result = measure(
            &publisher,
            &mut collector,
            args,
            self.base,
            probes,
            |seq, at| {
                let target = shape.event(seq);
                let mut out = outgoing(&inbound, shape, &target, MEASURED, (seq, at));
                out.props = out
                    .props
                    .with_headers(outputs_header(shape, &target, &sizes));
                out
            },
        )
        .await;

        session.cancel();
        for conn in self.side_connections.drain(..) {
            amqp::close_connection(&conn).await;
        }
        for task in tasks {
            task.abort();
        }
        amqp::close(&publisher).await;
        // Gone before Switchboard's phase starts, so it does not weigh on it.
        if let Some(topology) = self.topologies.pop() {
            let (queues, exchanges) = topology.names_to_delete();
            amqp::delete(self.conn(), &queues, &exchanges).await?;
        }
        result
    }
}

/// The average size of what the worker published, by exchange, bytes (0: no padding).
#[derive(Debug, Default, Clone, Copy)]
pub struct Sizes {
    notify: u64,
    crm: u64,
    outbound: u64,
}

impl Sizes {
    pub fn of(outputs: &Outputs) -> Self {
        Self {
            notify: Outputs::average(outputs.notifications),
            crm: Outputs::average(outputs.crm),
            outbound: Outputs::average(outputs.outbound),
        }
    }
}

/// Where the worker publishes for `target`, as the relay's header.
fn outputs_header(shape: &Shape, target: &Target<'_>, sizes: &Sizes) -> FieldTable {
    let entries: Vec<String> = shape
        .outputs(target)
        .into_iter()
        .map(|(exchange, key)| {
            let (tag, size) = match exchange {
                Exchange::Notify => ('n', sizes.notify),
                Exchange::Crm => ('c', sizes.crm),
                Exchange::Outbound => ('o', sizes.outbound),
            };
            format!("{tag}:{key}:{size}")
        })
        .collect();
    let mut headers = FieldTable::default();
    headers.insert(
        OUTPUTS_HEADER.into(),
        AMQPValue::LongString(LongString::from(entries.join(" "))),
    );
    headers
}

/// The exchanges of the ceiling's topology, by the tags of [`outputs_header`].
struct Exchanges {
    notify: String,
    crm: String,
    outbound: String,
}

impl Exchanges {
    /// `(exchange, routing key, size)` of each output the header lists.
    fn read(&self, props: &BasicProperties) -> Vec<(String, String, usize)> {
        let Some(AMQPValue::LongString(entries)) = props
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get(OUTPUTS_HEADER))
        else {
            return Vec::new();
        };
        String::from_utf8_lossy(entries.as_bytes())
            .split(' ')
            .filter_map(|entry| {
                let (tag, rest) = entry.split_once(':')?;
                let (key, size) = rest.rsplit_once(':')?;
                let exchange = match tag {
                    "n" => &self.notify,
                    "c" => &self.crm,
                    "o" => &self.outbound,
                    _ => return None,
                };
                Some((exchange.clone(), key.to_owned(), size.parse().ok()?))
            })
            .collect()
    }
}

/// Stand-in worker `w` on its own connections: on `conn` a channel per
/// partition with the worker's prefetch, as the worker subscribes, and as many
/// relays at once as it has lanes; they publish on `publishing`, as the
/// worker publishes on a connection of its own. Partitions are dealt out in
/// turn (`n % workers`), one consumer each, where the workers balance theirs
/// by rendezvous hashing.
async fn stand_in(
    conn: &Connection,
    publishing: &Connection,
    args: &Args,
    names: &Names,
    w: usize,
    session: CancellationToken,
) -> Result<JoinHandle<()>> {
    let mut consumers = Vec::new();
    for n in (0..args.partitions).filter(|n| usize::from(*n) % args.workers == w) {
        let channel = within("open a channel", conn.create_channel()).await?;
        within(
            "basic.qos",
            channel.basic_qos(args.concurrency, BasicQosOptions::default()),
        )
        .await?;
        let consume = channel.basic_consume(
            names.inbound_partition(n).into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        );
        consumers.push(within("basic.consume", consume).await?);
    }
    let publish = amqp::confirm_channel(publishing).await?;
    let slots = Arc::new(Semaphore::new(
        args.ceiling_slots().unwrap_or(Semaphore::MAX_PERMITS),
    ));
    let exchanges = Arc::new(Exchanges {
        notify: names.notify(),
        crm: names.crm(),
        outbound: names.outbound(),
    });
    Ok(tokio::spawn(async move {
        // Dropped when this task is aborted, which aborts every relay.
        let mut relays = JoinSet::new();
        for consumer in consumers {
            relays.spawn(relay(
                consumer,
                publish.clone(),
                exchanges.clone(),
                slots.clone(),
                session.clone(),
            ));
        }
        while relays.join_next().await.is_some() {}
    }))
}

/// A delivery whose outputs are on the channel: its confirms, then its ack.
type Relayed = Pin<Box<dyn Future<Output = (Delivery, bool, OwnedSemaphorePermit)> + Send>>;

/// One partition's relay, pipelined as the worker's lanes are: for each
/// delivery, one persistent confirmed publish to each output its header lists,
/// put on the channel in delivery order without waiting for earlier confirms
/// (so each chat's messages reach every user in the order they were
/// published); each delivery is acked once its own confirms are in and every
/// earlier delivery of the partition was acked (acks in delivery order, so
/// per-chat order holds as in the worker). At most `slots` deliveries of the
/// connection are in flight, and the broker's prefetch bounds the partition's.
async fn relay(
    mut deliveries: Consumer,
    publish: Channel,
    exchanges: Arc<Exchanges>,
    slots: Arc<Semaphore>,
    session: CancellationToken,
) {
    let mut pending: FuturesOrdered<Relayed> = FuturesOrdered::new();
    loop {
        // A slot first; while none is free, the oldest relays finish.
        let slot = loop {
            tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(slot) => break slot,
                    Err(_) => return,
                },
                Some(done) = pending.next(), if !pending.is_empty() => ack(done).await,
                () = session.cancelled() => return,
            }
        };
        let delivery = loop {
            tokio::select! {
                d = deliveries.next() => match d { Some(Ok(d)) => break d, _ => return },
                Some(done) = pending.next(), if !pending.is_empty() => ack(done).await,
                () = session.cancelled() => return,
            }
        };
        let mut publishes = Vec::new();
        for (exchange, key, size) in exchanges.read(&delivery.properties) {
            let publish = publish.clone();
            let mut body = delivery.data.clone();
            if body.len() < size {
                body.resize(size, b' ');
            }
            let mut sent = Box::pin(maybe_done(async move {
                amqp::publish(&publish, &exchange, &key, &body).await
            }));
            // lapin queues a publish's frames on its first poll and then waits
            // for them to be written; polling here fixes the order, without
            // waiting for each write in turn.
            let _ = futures_util::poll!(sent.as_mut());
            publishes.push(sent);
        }
        pending.push_back(Box::pin(async move {
            let mut all = true;
            for mut sent in publishes {
                sent.as_mut().await;
                all &= match sent.as_mut().take_output() {
                    Some(Ok(confirm)) => amqp::confirmed(confirm).await.unwrap_or(false),
                    _ => false,
                };
            }
            (delivery, all, slot)
        }));
    }
}

/// Acks a relayed delivery whose outputs were all confirmed (else it stays
/// unacked, as the worker leaves it), then frees its slot.
async fn ack((delivery, all, slot): (Delivery, bool, OwnedSemaphorePermit)) {
    if all {
        let _ = within("basic.ack", delivery.ack(BasicAckOptions::default())).await;
    }
    drop(slot);
}
