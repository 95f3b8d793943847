//! One event's way through the worker, top to bottom:
//! bytes -> parse (typed event or dead letter) -> snapshot -> decide (pure)
//! -> apply (atomic, guarded) -> the earlier event of its chat acked -> send
//! (on the channel: the next event of its chat may start) -> confirmed -> ack.
//!
//! [`admit`] is the edge: it runs as a delivery arrives and tells the consumer
//! what the event may not overtake ([`Scope`]); [`Processor::process`] is the
//! rest, up to the ack.

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicAckOptions;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

mod admit;

pub use admit::{Admitted, MAX_DELIVERIES, admit};

use super::retry_backoff;

use super::turn::Turn;
use crate::amqp::{PublishError, Publisher, Unconfirmed};
use crate::events::{Event, Rejection};
use crate::handlers::{self, Decision, ReplyTo, Tally};
use crate::ids::Id;
use crate::monitor::counters;
use crate::output::Outputs;
use crate::store::{Applied, Loaded, Record, Store, StoreError};

/// How many times an event is retried after a failure that is not known to
/// pass (Redis refusing an operation, the broker refusing a message) before it
/// is dead-lettered as `failed`. Passing failures are retried as long as they last.
const MAX_REFUSALS: u32 = 10;

/// How many times a decision is retaken after losing a race before the event
/// is handed back as a passing failure (to be retried with backoff).
const MAX_CONFLICTS: u32 = 64;

/// What should become of a delivery.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// Every effect is applied and every output is on the channel: ack once
    /// they are confirmed.
    Sent {
        kind: &'static str,
        replayed: bool,
        sent: Unconfirmed<'a>,
    },
    /// The input cannot be accepted: dead-letter it, then ack.
    DeadLetter(Rejection),
    /// A passing failure: keep the delivery and try again after a pause.
    Retry(Transient),
    /// The session ended while the event waited for the earlier event of its
    /// chat, which was not acked: nothing was sent; the broker redelivers both.
    Ended,
}

#[derive(Debug, thiserror::Error)]
pub enum Transient {
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("queue declaration failed: {0}")]
    Declare(#[from] lapin::Error),
    #[error("still conflicting after {MAX_CONFLICTS} fresh decisions")]
    Contention,
}

impl Transient {
    /// A failure that passes by itself (Redis or the broker away, busy, out of
    /// memory, failing over; a lost race): retried for as long as it lasts.
    pub fn is_passing(&self) -> bool {
        match self {
            Transient::Store(e) => e.is_passing(),
            Transient::Publish(PublishError::Nacked(_)) => false,
            Transient::Publish(_) | Transient::Declare(_) | Transient::Contention => true,
        }
    }

    /// A label for the retry metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Transient::Store(_) => "store",
            Transient::Publish(_) => "publish",
            Transient::Declare(_) => "declare",
            Transient::Contention => "contention",
        }
    }

    /// A failure that retrying on the same connection cannot fix.
    pub fn needs_reconnect(&self) -> bool {
        matches!(self, Transient::Publish(PublishError::ConfirmTimeout(_)))
    }
}

/// What takes an admitted event the rest of its way; shared by every event a
/// session handles.
#[derive(Clone)]
pub struct Processor {
    pub store: Store,
    pub publisher: Publisher,
}

impl Processor {
    /// Handles one admitted delivery until it is acked, retrying passing
    /// failures with backoff. It sends only once the earlier event of its chat
    /// was acked; once its outputs are on the channel it tells its `turn` (the
    /// next event of its chat may start); it acks once they are confirmed. Returns what
    /// became of it (`done`, `replayed`, `dead_lettered`), or `None` if the
    /// session ended first (the broker then redelivers what was not acked):
    /// only then, so a later event of the chat is never acked before it;
    /// `broken` is cancelled when only a new connection can help.
    pub async fn process(
        &self,
        admitted: &Admitted,
        session: &CancellationToken,
        broken: &CancellationToken,
        turn: &mut Turn,
    ) -> Option<&'static str> {
        let delivery = &admitted.delivery;
        let kind = admitted.event.as_ref().map_or("invalid", Event::type_name);
        let started = std::time::Instant::now();
        let mut backoff = retry_backoff();
        let mut refusals = 0;
        // The failure not known to pass of the last try, if it was one.
        let mut refused: Option<String> = None;
        loop {
            let outcome = match (&admitted.event, refused.take()) {
                // A failure not known to pass is given up after a bound, as a
                // dead letter, before the event is tried again.
                (_, Some(e)) if refusals >= MAX_REFUSALS => {
                    warn!(error = %e, "Event given up.");
                    Outcome::DeadLetter(Rejection::Failed(format!(
                        "still failing after {MAX_REFUSALS} tries: {e}"
                    )))
                }
                (Ok(event), _) => self.handle(event, &delivery.properties, turn).await,
                (Err(rejection), _) => Outcome::DeadLetter(rejection.clone()),
            };
            let result = match outcome {
                Outcome::Sent {
                    kind,
                    replayed,
                    sent,
                } => {
                    turn.sent();
                    debug!(kind, replayed, "Event handled.");
                    sent.confirmed()
                        .await
                        .map(|()| if replayed { "replayed" } else { "done" })
                        .map_err(Transient::from)
                }
                Outcome::DeadLetter(rejection) => {
                    // Nothing of its chat is published: the next event may start.
                    turn.sent();
                    warn!(reason = %rejection.header(), routing_key = %delivery.routing_key, "Input dead-lettered.");
                    counters::dead_letter(rejection.code());
                    self.publisher
                        .dead_letter(
                            &delivery.data,
                            &delivery.properties,
                            delivery.routing_key.as_str(),
                            &rejection.header(),
                        )
                        .await
                        .map(|()| "dead_lettered")
                        .map_err(Transient::from)
                }
                Outcome::Retry(e) => Err(e),
                Outcome::Ended => return None,
            };
            // Every failure not known to pass counts towards the bound, the
            // broker refusing the event's outputs included.
            if let Err(e) = &result
                && !e.is_passing()
            {
                refusals += 1;
                refused = Some(e.to_string());
            }
            match result {
                // The bound is reached: given up at once (above), no pause.
                Err(_) if refused.is_some() && refusals >= MAX_REFUSALS => {}
                Ok(outcome) => {
                    if !turn.earlier_acked().await {
                        return None;
                    }
                    counters::event(kind, outcome, started.elapsed());
                    let ack = tokio::time::timeout(
                        super::CLOSE_WAIT,
                        delivery.ack(BasicAckOptions::default()),
                    );
                    return match ack.await {
                        Ok(Ok(true)) => {
                            turn.acked();
                            Some(outcome)
                        }
                        Ok(Ok(false)) => {
                            // lapin sent no ack: the channel was closed (or the
                            // delivery acked already, which this code never does).
                            warn!(
                                "Ack not sent, the channel is closed; the event will be redelivered and replayed."
                            );
                            broken.cancel();
                            None
                        }
                        Ok(Err(e)) => {
                            warn!(error = %e, "Ack failed; the event will be redelivered and replayed.");
                            broken.cancel();
                            None
                        }
                        Err(_) => {
                            warn!("No answer to an ack; reconnecting, the event will be replayed.");
                            broken.cancel();
                            None
                        }
                    };
                }
                Err(e) if e.needs_reconnect() || !self.publisher.channel().status().connected() => {
                    // Retrying on a stuck or closed channel cannot succeed: end the session.
                    warn!(error = %e, "The broker stopped answering; reconnecting.");
                    broken.cancel();
                    return None;
                }
                Err(error) => {
                    counters::retry(error.kind());
                    let pause = backoff.next().unwrap_or(Duration::from_secs(5));
                    warn!(%error, pause_ms = pause.as_millis() as u64, "Passing failure; retrying the event.");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = session.cancelled() => return None,
                    }
                }
            }
        }
    }

    /// Decides and applies one event, then sends its outputs once the earlier
    /// event of its chat (`turn`) was acked.
    pub async fn handle(
        &self,
        event: &Event,
        properties: &BasicProperties,
        turn: &mut Turn,
    ) -> Outcome<'_> {
        let reply = ReplyTo {
            reply_to: properties.reply_to().as_ref().map(|s| s.to_string()),
            correlation_id: properties.correlation_id().as_ref().map(|s| s.to_string()),
        };
        match self.decide_apply_publish(event, &reply, turn).await {
            Ok(outcome) => outcome,
            Err(Transient::Store(e)) if !e.is_transient() => {
                // Redis holds data this worker cannot read: keep the input for an operator.
                Outcome::DeadLetter(Rejection::Invalid(format!("internal: {e}")))
            }
            Err(e) => Outcome::Retry(e),
        }
    }

    /// Decides and applies the event, then sends what that came to.
    async fn decide_apply_publish(
        &self,
        event: &Event,
        reply: &ReplyTo,
        turn: &mut Turn,
    ) -> Result<Outcome<'_>, Transient> {
        let account = &event.envelope().account_id;
        let kind = event.type_name();
        match decide_and_apply(&self.store, self, event, reply).await? {
            Decided::Reject(rejection) => Ok(Outcome::DeadLetter(rejection)),
            Decided::Publish { outputs, tally } => {
                // Applied: counted now, since a failed send is retried as a replay.
                counters::claims(tally.claims_won, tally.claims_lost);
                counters::round_robin(tally.round_robin);
                let Some(sent) = self.send_in_turn(account, &outputs, turn).await? else {
                    return Ok(Outcome::Ended);
                };
                Ok(Outcome::Sent {
                    kind,
                    replayed: false,
                    sent,
                })
            }
            Decided::Replay(record) => self.replay(account, kind, record, turn).await,
        }
    }

    async fn replay(
        &self,
        account: &Id,
        kind: &'static str,
        record: Record,
        turn: &mut Turn,
    ) -> Result<Outcome<'_>, Transient> {
        // The queues the event introduced, declared before its outputs go.
        self.declare_queues(account, &record.declare_users).await?;
        let Some(sent) = self.send_in_turn(account, &record.outputs, turn).await? else {
            return Ok(Outcome::Ended);
        };
        Ok(Outcome::Sent {
            kind,
            replayed: true,
            sent,
        })
    }

    /// Sends `outputs` once the earlier event of the chat (`turn`) was acked,
    /// so that nothing of a chat goes out ahead of a retry of its earlier
    /// event (see `worker::turn`). `None`, having sent nothing, when that
    /// event ended unacked: the session is over.
    async fn send_in_turn(
        &self,
        account: &Id,
        outputs: &Outputs,
        turn: &mut Turn,
    ) -> Result<Option<Unconfirmed<'_>>, Transient> {
        if !turn.earlier_acked().await {
            return Ok(None);
        }
        Ok(Some(self.publisher.send(account, outputs).await?))
    }

    async fn declare_queues(&self, account: &Id, users: &[Id]) -> Result<(), Transient> {
        Ok(self.publisher.declare_user_queues(account, users).await?)
    }
}

impl DeclareQueues for Processor {
    async fn declare(&self, account: &Id, users: &[Id]) -> Result<(), Transient> {
        self.declare_queues(account, users).await
    }
}

/// The broker side of a plan that must come before its apply: the
/// notification queues of the users it introduces (once the users exist in
/// Redis, other events may route notifications to them).
pub trait DeclareQueues {
    fn declare(
        &self,
        account: &Id,
        users: &[Id],
    ) -> impl std::future::Future<Output = Result<(), Transient>> + Send;
}

/// What deciding and applying an event came to, before anything is published.
#[derive(Debug)]
pub enum Decided {
    /// Publish these: the outputs of a fresh apply, or of an answer that changes nothing.
    Publish { outputs: Outputs, tally: Tally },
    /// Applied before (a redelivery, a republish, a worker that died before its
    /// confirms): publish exactly what it published, its queues declared first.
    Replay(Record),
    /// Input the worker cannot accept.
    Reject(Rejection),
}

/// Snapshot, decide (pure), apply (atomic, guarded; a round-robin turn is
/// taken inside the apply, so new clients at once do not conflict); on a lost
/// race, decide again on fresh state. The race tests run this same function.
pub async fn decide_and_apply(
    store: &Store,
    queues: &impl DeclareQueues,
    event: &Event,
    reply: &ReplyTo,
) -> Result<Decided, Transient> {
    let envelope = event.envelope();
    let (account, event_id) = (&envelope.account_id, &envelope.event_id);
    for attempt in 0..MAX_CONFLICTS {
        if attempt > 2 {
            // Many workers racing for one chat: spread them out a little.
            tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(20)))).await;
        }
        let decision = if let Some(reads) = handlers::reads(event) {
            match store
                .read(account, event_id, reads)
                .await
                .map_err(Transient::Store)?
            {
                Loaded::Applied(record) => return Ok(Decided::Replay(record)),
                Loaded::Fresh(reads) => handlers::decide_account(event, &reads),
            }
        } else {
            let query = handlers::chat_query(event).expect("chat events have a chat query");
            match store
                .snapshot(account, event_id, &query)
                .await
                .map_err(Transient::Store)?
            {
                Loaded::Applied(record) => return Ok(Decided::Replay(record)),
                Loaded::Fresh(snapshot) => handlers::decide_chat(event, &snapshot, reply),
            }
        };
        match decision {
            Decision::Reject(rejection) => return Ok(Decided::Reject(rejection)),
            Decision::Answer(outputs) => {
                return Ok(Decided::Publish {
                    outputs,
                    tally: Tally::default(),
                });
            }
            Decision::Apply(plan) => {
                queues.declare(account, &plan.declare_users).await?;
                match store
                    .apply(account, event_id, &plan)
                    .await
                    .map_err(Transient::Store)?
                {
                    Applied::Ok { manager } => {
                        let Some(applied) = plan.with_turn_to(manager.as_ref()) else {
                            return Err(Transient::Store(StoreError::Corrupt(format!(
                                "apply.lua gave the turn to {manager:?}, none of the plan's managers"
                            ))));
                        };
                        return Ok(Decided::Publish {
                            outputs: applied.outputs,
                            tally: applied.tally,
                        });
                    }
                    Applied::Already(record) => return Ok(Decided::Replay(record)),
                    Applied::Conflict => {
                        counters::retry("conflict");
                        debug!(event_id = %event_id, attempt, "State moved under the decision; deciding again.");
                    }
                }
            }
        }
    }
    Err(Transient::Contention)
}
