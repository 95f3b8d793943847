//! The events a session is handling: each runs as a task holding one of
//! `concurrency` permits, inside a span with its ids, with its [`Turn`] in its
//! chat's lane, and reports back what became of it; and the periodic summary
//! of those outcomes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};

use super::pipeline::Processor;
use super::sequencer::{Scope, Ticket};
use super::subscription::Work;
use super::turn::{Lanes, Turn};
use crate::ids::Id;

/// How often a worker logs what it did, at `info`.
const SUMMARY_EVERY: Duration = Duration::from_secs(30);

/// What a finished task reports back.
pub(super) struct Finished {
    pub partition: u16,
    pub generation: u64,
    pub order: Option<(Id, Scope)>,
    pub ticket: Ticket,
    /// What became of it (it was acked); `None` if the session ended first.
    pub outcome: Option<&'static str>,
}

/// Events handled (acked) since the last summary line, by outcome.
#[derive(Default)]
pub(super) struct Summary {
    done: u64,
    replayed: u64,
    dead_lettered: u64,
    since: Option<tokio::time::Instant>,
}

impl Summary {
    pub fn count(&mut self, outcome: Option<&str>) {
        match outcome {
            Some("done") => self.done += 1,
            Some("replayed") => self.replayed += 1,
            Some("dead_lettered") => self.dead_lettered += 1,
            _ => {}
        }
    }

    /// Logs a summary every [`SUMMARY_EVERY`] when there was anything to tell.
    pub fn maybe_log(&mut self, running: usize, waiting: usize) {
        let now = tokio::time::Instant::now();
        let since = *self.since.get_or_insert(now);
        let elapsed = now - since;
        if elapsed < SUMMARY_EVERY {
            return;
        }
        let total = self.done + self.replayed + self.dead_lettered;
        if total > 0 || running > 0 {
            let rate = total as f64 / elapsed.as_secs_f64();
            info!(
                done = self.done,
                replayed = self.replayed,
                dead_lettered = self.dead_lettered,
                running,
                waiting,
                events_per_sec = format!("{rate:.1}"),
                "Summary."
            );
        }
        *self = Summary {
            since: Some(now),
            ..Summary::default()
        };
    }
}

/// The events running in a session, each a task holding one of `concurrency` permits.
pub(super) struct Tasks {
    pub set: JoinSet<Finished>,
    pub permits: Arc<Semaphore>,
    pub pipeline: Processor,
    pub session: CancellationToken,
    pub broken: CancellationToken,
    pub lanes: Lanes,
}

impl Tasks {
    pub fn spawn(&mut self, work: Work) {
        let mut turn: Turn = self.lanes.turn(work.admitted.order.as_ref(), work.ticket);
        let (pipeline, session, broken) = (
            self.pipeline.clone(),
            self.session.clone(),
            self.broken.clone(),
        );
        let permits = self.permits.clone();
        // Every line logged while handling the event carries its ids.
        let span = match &work.admitted.event {
            Ok(event) => {
                let envelope = event.envelope();
                info_span!("event", eventId = %envelope.event_id, accountId = %envelope.account_id, r#type = event.type_name())
            }
            Err(_) => info_span!("event", routing_key = %work.admitted.delivery.routing_key),
        };
        self.set.spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = permits.acquire_owned().await;
            // Boxed: the whole pipeline's state is large, and the task would
            // otherwise carry (and copy) it inline.
            let outcome = Box::pin(pipeline.process(&work.admitted, &session, &broken, &mut turn))
                .instrument(span)
                .await;
            Finished {
                partition: work.partition,
                generation: work.generation,
                order: work.admitted.order,
                ticket: work.ticket,
                outcome,
            }
        });
    }

    /// Takes note that a task finished; an acked event leaves its chat's lane.
    pub fn finished(&mut self, finished: &Finished) {
        if finished.outcome.is_some() {
            self.lanes.acked(finished.order.as_ref(), finished.ticket);
        }
    }
}
