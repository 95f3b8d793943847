//! One event's way through the worker, top to bottom:
//! bytes -> parse -> snapshot -> decide (pure) -> apply (atomic, guarded)
//! -> publish (confirmed) -> the outcome that decides the ack.

use std::time::Duration;

use lapin::BasicProperties;
use tracing::debug;

use super::pools::PoolLocks;
use crate::amqp::{PublishError, Publisher};
use crate::events::{self, Event, Rejection};
use crate::handlers::{self, Decision, Key, Op, Plan, ReplyTo};
use crate::ids::Id;
use crate::store::{Applied, Loaded, Record, Store, StoreError};

/// How many times a decision is retaken after losing a race before the event
/// is handed back as a passing failure (to be retried with backoff).
const MAX_CONFLICTS: u32 = 64;

/// What should become of a delivery.
#[derive(Debug)]
pub enum Outcome {
    /// Every effect is applied and every output confirmed: ack.
    Done { kind: &'static str, replayed: bool },
    /// The input cannot be accepted: dead-letter it, then ack.
    DeadLetter(Rejection),
    /// A passing failure: keep the delivery and try again after a pause.
    Retry(Transient),
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
    /// A failure that retrying on the same connection cannot fix.
    pub fn needs_reconnect(&self) -> bool {
        matches!(self, Transient::Publish(PublishError::ConfirmTimeout(_)))
    }
}

/// The round-robin pool (channel) a plan takes a turn of, if any.
fn round_robin_pool(plan: &Plan) -> Option<&Id> {
    plan.ops.iter().find_map(|op| match op {
        Op::Set(Key::RoundRobin(channel), _) => Some(channel),
        _ => None,
    })
}

/// The worker's view of one delivery.
pub struct Input<'a> {
    pub body: &'a [u8],
    pub properties: &'a BasicProperties,
}

/// Shared by every lane of a session.
#[derive(Clone)]
pub struct Pipeline {
    pub store: Store,
    pub publisher: Publisher,
    pub pools: std::sync::Arc<PoolLocks>,
}

impl Pipeline {
    pub async fn handle(&self, input: Input<'_>) -> Outcome {
        let event = match events::parse(input.body) {
            Ok(event) => event,
            Err(rejection) => return Outcome::DeadLetter(rejection),
        };
        let reply = ReplyTo {
            reply_to: input.properties.reply_to().as_ref().map(|s| s.to_string()),
            correlation_id: input
                .properties
                .correlation_id()
                .as_ref()
                .map(|s| s.to_string()),
        };
        match self.settle(&event, &reply).await {
            Ok(outcome) => outcome,
            Err(Transient::Store(e)) if !e.is_transient() => {
                // Redis holds data this worker cannot read: keep the input for an operator.
                Outcome::DeadLetter(Rejection::Invalid(format!("internal: {e}")))
            }
            Err(e) => Outcome::Retry(e),
        }
    }

    async fn settle(&self, event: &Event, reply: &ReplyTo) -> Result<Outcome, Transient> {
        let envelope = event.envelope();
        let (account, event_id) = (&envelope.account_id, &envelope.event_id);
        let kind = event.type_name();
        // This worker's turn on a round-robin pool, taken after a lost race (see `pools`).
        let mut turn = None;
        for attempt in 0..MAX_CONFLICTS {
            if attempt > 2 {
                // Many workers racing for one chat or pool: spread them out a little.
                tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(20)))).await;
            }
            let decision = if let Some(reads) = handlers::reads(event) {
                match self
                    .store
                    .read(account, event_id, reads)
                    .await
                    .map_err(Transient::Store)?
                {
                    Loaded::Applied(record) => return self.replay(account, kind, record).await,
                    Loaded::Fresh(reads) => handlers::decide_account(event, &reads),
                }
            } else {
                let query = handlers::chat_query(event).expect("chat events have a chat query");
                match self
                    .store
                    .snapshot(account, event_id, &query)
                    .await
                    .map_err(Transient::Store)?
                {
                    Loaded::Applied(record) => return self.replay(account, kind, record).await,
                    Loaded::Fresh(snapshot) => handlers::decide_chat(event, &snapshot, reply),
                }
            };
            match decision {
                Decision::Reject(rejection) => return Ok(Outcome::DeadLetter(rejection)),
                Decision::Answer(outputs) => {
                    self.publisher.publish_all(&outputs).await?;
                    return Ok(Outcome::Done {
                        kind,
                        replayed: false,
                    });
                }
                Decision::Apply(plan) => {
                    // Queues first: once the users exist in Redis, other events may
                    // already route notifications to them. Declaring is idempotent.
                    self.declare_queues(account, &plan.declare_users).await?;
                    match self
                        .store
                        .apply(account, event_id, &plan)
                        .await
                        .map_err(Transient::Store)?
                    {
                        Applied::Ok => {
                            drop(turn);
                            self.publisher.publish_all(&plan.outputs).await?;
                            return Ok(Outcome::Done {
                                kind,
                                replayed: false,
                            });
                        }
                        Applied::Already(record) => {
                            return self.replay(account, kind, record).await;
                        }
                        Applied::Conflict => {
                            debug!(event_id = %event_id, attempt, "State moved under the decision; deciding again.");
                            if turn.is_none()
                                && let Some(pool) = round_robin_pool(&plan)
                            {
                                turn = Some(self.pools.lock(format!("{account}\u{0}{pool}")).await);
                            }
                        }
                    }
                }
            }
        }
        Err(Transient::Contention)
    }

    /// An event applied before (a redelivery, a republish, or a worker that died
    /// before its outputs were confirmed): publish exactly what it published.
    async fn replay(
        &self,
        account: &Id,
        kind: &'static str,
        record: Record,
    ) -> Result<Outcome, Transient> {
        self.publish(account, &record).await?;
        Ok(Outcome::Done {
            kind,
            replayed: true,
        })
    }

    /// Declares the queues the event introduced, then publishes its outputs, confirmed.
    async fn publish(&self, account: &Id, record: &Record) -> Result<(), Transient> {
        self.declare_queues(account, &record.declare_users).await?;
        self.publisher.publish_all(&record.outputs).await?;
        Ok(())
    }

    async fn declare_queues(&self, account: &Id, users: &[Id]) -> Result<(), Transient> {
        for user in users {
            self.publisher.declare_user_queue(account, user).await?;
        }
        Ok(())
    }
}
