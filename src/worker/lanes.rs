//! Consuming with bounded concurrency and per-chat order.
//!
//! Deliveries are spread over `concurrency` lanes by their routing key; a lane
//! handles its deliveries one after another. Two events of one chat (same
//! routing key) therefore never run at once in this worker and keep the order
//! in which their partition delivered them, while different chats run in
//! parallel. The prefetch equals the lane count, which bounds the work held.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use futures_util::StreamExt;
use futures_util::stream::select_all;
use lapin::Channel;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::pipeline::{Input, Outcome, Pipeline};
use super::retry_backoff;
use crate::config::Config;
use crate::names::Names;

/// Why a session ended other than by shutdown: the worker reconnects.
#[derive(Debug, thiserror::Error)]
pub enum Broken {
    #[error(transparent)]
    Broker(#[from] lapin::Error),
    #[error("the broker ended the consumers")]
    ConsumersEnded,
    #[error("the publishing channel closed")]
    PublisherClosed,
}

/// Consumes every inbound partition until shutdown (Ok) or a broker failure (Err).
pub async fn consume(
    config: &Config,
    names: &Names,
    pipeline: Pipeline,
    channel: &Channel,
    shutdown: &CancellationToken,
) -> Result<(), Broken> {
    channel
        .basic_qos(config.concurrency, BasicQosOptions::default())
        .await?;
    let mut consumers = Vec::new();
    let mut tags = Vec::new();
    for n in 0..config.partitions {
        let consumer = channel
            .basic_consume(
                names.inbound_partition(n).into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tags.push(consumer.tag().clone());
        consumers.push(consumer);
    }
    let mut deliveries = select_all(consumers);

    // The session's own token: cancelled on shutdown, or when the broker fails,
    // so lanes stop retrying on a dead channel. A lane that finds the publishing
    // channel closed cancels `broken`, which ends the session for a reconnect.
    let session = shutdown.child_token();
    let broken = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let lanes: Vec<mpsc::Sender<Delivery>> = (0..config.concurrency)
        .map(|_| {
            let (tx, rx) = mpsc::channel(usize::from(config.concurrency));
            tasks.spawn(lane(rx, pipeline.clone(), session.clone(), broken.clone()));
            tx
        })
        .collect();

    let mut failure = None;
    let mut cancelled = false;
    loop {
        tokio::select! {
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => {
                    let lane = lane_of(delivery.routing_key.as_str(), lanes.len());
                    if lanes[lane].send(delivery).await.is_err() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    failure = Some(Broken::Broker(e));
                    break;
                }
                None => {
                    if !cancelled {
                        failure = Some(Broken::ConsumersEnded);
                    }
                    break;
                }
            },
            () = broken.cancelled() => {
                failure = Some(Broken::PublisherClosed);
                break;
            }
            () = shutdown.cancelled(), if !cancelled => {
                // Phase 1: stop consuming; deliveries already on their way still arrive and are handled.
                cancelled = true;
                info!("Shutdown: no longer consuming; finishing in-flight events.");
                for tag in &tags {
                    let _ = channel.basic_cancel(tag.clone(), BasicCancelOptions::default()).await;
                }
            }
        }
    }
    drop(lanes);
    if failure.is_some() {
        session.cancel();
    }
    // Phase 2: drain the lanes, up to the grace period; then abort what is left.
    // An event cut short is safe: its apply is atomic and its redelivery replays it.
    let drained = tokio::time::timeout(config.shutdown_grace(), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            unfinished = tasks.len(),
            "Shutdown grace period over; unfinished events go back to the queue."
        );
        session.cancel();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn lane_of(routing_key: &str, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    routing_key.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

async fn lane(
    mut rx: mpsc::Receiver<Delivery>,
    pipeline: Pipeline,
    session: CancellationToken,
    broken: CancellationToken,
) {
    while let Some(delivery) = rx.recv().await {
        if !settle(&delivery, &pipeline, &session, &broken).await {
            // The session is over; the broker requeues what was not acked.
            return;
        }
    }
}

/// Handles one delivery until it can be acked; false if the session ended first.
async fn settle(
    delivery: &Delivery,
    pipeline: &Pipeline,
    session: &CancellationToken,
    broken: &CancellationToken,
) -> bool {
    let mut backoff = retry_backoff();
    loop {
        let input = Input {
            body: &delivery.data,
            properties: &delivery.properties,
        };
        let result = match pipeline.handle(input).await {
            Outcome::Done { kind, replayed } => {
                tracing::debug!(kind, replayed, "Event handled.");
                Ok(())
            }
            Outcome::DeadLetter(rejection) => {
                warn!(reason = %rejection.header(), routing_key = %delivery.routing_key, "Input dead-lettered.");
                pipeline
                    .publisher
                    .dead_letter(
                        &delivery.data,
                        &delivery.properties,
                        delivery.routing_key.as_str(),
                        &rejection.header(),
                    )
                    .await
                    .map_err(|e| e.to_string())
            }
            Outcome::Retry(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => {
                if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                    error!(error = %e, "Ack failed; the event will be redelivered and replayed.");
                    return false;
                }
                return true;
            }
            Err(error) => {
                if !pipeline.publisher.channel().status().connected() {
                    // Retrying on a closed channel cannot succeed: end the session.
                    broken.cancel();
                    return false;
                }
                let pause = backoff.next().unwrap_or(std::time::Duration::from_secs(5));
                warn!(%error, pause_ms = pause.as_millis() as u64, "Passing failure; retrying the event.");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = session.cancelled() => return false,
                }
            }
        }
    }
}
