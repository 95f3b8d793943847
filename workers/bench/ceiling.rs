//! The broker-ceiling phase: the least any worker must do per event, with no
//! Redis and no logic. Stand-in consumers take each message from a quorum
//! in-queue, publish it persistent and confirmed to a quorum out-queue, then
//! ack; the client side reads the out-queues.

use std::sync::Arc;

use anyhow::Result;
use futures_util::StreamExt;
use futures_util::stream::{SelectAll, select_all};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Confirmation, Connection, Consumer};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::account::inbound_body;
use crate::amqp;
use crate::args::Args;
use crate::collect::{Collector, Who};
use crate::load::measure;
use crate::report::PhaseResult;
use crate::session::Bench;

impl Bench {
    pub async fn ceiling(&mut self, args: &Args) -> Result<PhaseResult> {
        let ins: Vec<String> = (0..args.partitions)
            .map(|n| format!("{}.ceiling.in.{n}", self.prefix()))
            .collect();
        let outs: Vec<String> = (0..args.managers)
            .map(|n| format!("{}.ceiling.out.{n}", self.prefix()))
            .collect();
        let setup = self.conn().create_channel().await?;
        for queue in ins.iter().chain(&outs) {
            self.queues.push(queue.clone());
            amqp::declare_quorum(&setup, queue).await?;
        }
        let mut collector = Collector::new(self.base);
        // The client side: one channel per out queue, as for the user queues.
        let mut tasks = Vec::new();
        for queue in &outs {
            tasks.push(collector.watch(self.conn(), queue, Who::Primary).await?);
        }
        // The "workers": consume, publish one confirmed message, ack.
        let session = CancellationToken::new();
        for _ in 0..args.workers {
            let conn = amqp::connect(&args.amqp_url, "switchboard-bench ceiling").await?;
            tasks.push(stand_in(&conn, args, &ins, &outs, session.clone()).await?);
            self.side_connections.push(conn);
        }

        let publisher = amqp::confirm_channel(self.conn()).await?;
        let result = measure(&publisher, &mut collector, args, self.base, |seq, mark| {
            let body = inbound_body(&format!("c{}", seq % 1000), mark);
            (String::new(), ins[seq as usize % ins.len()].clone(), body)
        })
        .await?;

        session.cancel();
        for conn in self.side_connections.drain(..) {
            let _ = conn.close(200, "ceiling done".into()).await;
        }
        for task in tasks {
            task.abort();
        }
        let _ = publisher.close(200, "done".into()).await;
        let mine: Vec<String> = ins.into_iter().chain(outs).collect();
        amqp::delete(self.conn(), &mine, &[]).await?;
        self.queues.retain(|q| !mine.contains(q));
        let _ = setup.close(200, "done".into()).await;
        Ok(result)
    }
}

/// One stand-in worker on its own connection: the worker's prefetch over all
/// in-queues, and as many relays at once as it has lanes.
async fn stand_in(
    conn: &Connection,
    args: &Args,
    ins: &[String],
    outs: &[String],
    session: CancellationToken,
) -> Result<JoinHandle<()>> {
    let channel = conn.create_channel().await?;
    channel
        .basic_qos(args.concurrency, BasicQosOptions::default())
        .await?;
    let publish = amqp::confirm_channel(conn).await?;
    let mut consumers = Vec::new();
    for queue in ins {
        consumers.push(
            channel
                .basic_consume(
                    queue.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?,
        );
    }
    let slots = Arc::new(Semaphore::new(
        args.ceiling_slots().unwrap_or(Semaphore::MAX_PERMITS),
    ));
    Ok(tokio::spawn(relay(
        select_all(consumers),
        publish,
        outs.to_vec(),
        slots,
        session,
    )))
}

/// For each delivery, one persistent confirmed publish to an out queue, then
/// the ack; up to `slots` at once, as the worker's lanes.
async fn relay(
    mut deliveries: SelectAll<Consumer>,
    publish: Channel,
    outs: Vec<String>,
    slots: Arc<Semaphore>,
    session: CancellationToken,
) {
    let mut next = 0;
    loop {
        let delivery = tokio::select! {
            d = deliveries.next() => match d { Some(Ok(d)) => d, _ => return },
            () = session.cancelled() => return,
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let publish = publish.clone();
        let out = outs[next % outs.len()].clone();
        next += 1;
        tokio::spawn(async move {
            let sent = async {
                amqp::publish(&publish, "", &out, &delivery.data)
                    .await?
                    .await
            };
            if let Ok(Confirmation::Ack(_)) = sent.await {
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
            drop(slot);
        });
    }
}
