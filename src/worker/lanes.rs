//! Lanes: bounded concurrency with per-chat order inside a worker.
//!
//! Deliveries are spread over `concurrency` lanes by their routing key; a lane
//! handles its deliveries one after another. Two events of one chat (same
//! routing key) therefore never run at once in this worker and keep the order
//! in which their partition delivered them, while different chats run in
//! parallel.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::pipeline::{Input, Outcome, Pipeline};
use super::retry_backoff;

/// A delivery and where it came from: its partition and that partition's
/// subscription (a partition is re-subscribed when it is handed over).
pub struct Work {
    pub delivery: Delivery,
    pub partition: u16,
    pub generation: u64,
}

/// Which lane handles a routing key.
pub fn lane_of(routing_key: &str, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    routing_key.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

/// Handles the lane's deliveries in order, reporting each one done on `done`.
pub async fn lane(
    mut rx: mpsc::Receiver<Work>,
    done: mpsc::UnboundedSender<(u16, u64)>,
    pipeline: Pipeline,
    session: CancellationToken,
    broken: CancellationToken,
) {
    while let Some(work) = rx.recv().await {
        if !settle(&work.delivery, &pipeline, &session, &broken).await {
            // The session is over; the broker requeues what was not acked.
            return;
        }
        let _ = done.send((work.partition, work.generation));
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
            Outcome::Retry(e) if e.needs_reconnect() => {
                warn!(error = %e, "The broker stopped answering; reconnecting.");
                broken.cancel();
                return false;
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
