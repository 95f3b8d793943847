//! Consuming the inbound partitions, balanced across workers.
//!
//! Each delivery is admitted (parsed) by its partition's forwarder, then
//! offered to the [`Sequencer`], which starts it at once or holds it behind an
//! earlier event of its account it may not overtake. Started events run as
//! tasks, at most `concurrency` at a time; a task tells when its outputs are on
//! the publishing channel ([`Sent`]), which may start the next event of its
//! chat, and reports when it finished.
//!
//! Each partition is a queue with a single active consumer. This worker keeps
//! one subscription (channel + consumer) per partition, so it is either the
//! active consumer of a partition or waits in line for it; the broker alone
//! decides, so two workers never handle one partition at once, and a dead
//! worker's partitions pass to the next in line at once.
//!
//! Balance: once a second, the worker renews its entry in the Redis registry
//! of live workers and reads the partition state, in a task of its own so the
//! loop that starts events never waits on Redis for it ([`Probe`]); with the
//! answer it computes each partition's owner ([`partitions::owners`]).
//! When it may be active on a partition it does not own, it hands it over
//! without breaking order: it stops starting that partition's deliveries, lets
//! the ones in flight finish, then closes the subscription, which returns the
//! deliveries it held to the head of the queue and activates the next worker
//! in line; finally it subscribes again, at the back of the line.
//!
//! A change of the partition count ([`crate::partitioning`]) reaches the
//! session on the same tick: fence markers are settled in `fence.rs`, and when
//! the recorded count differs from the session's, the session ends like a
//! shutdown (in-flight events finish, held ones go back to their queues) and
//! the worker consumes the new set of partitions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lapin::Connection;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::partitions;
use super::pipeline::Processor;
use super::sequencer::{Sequencer, Ticket};
use super::subscription::{Fence, Incoming, Opener, Subscription, Work};
use super::tasks::{Summary, Tasks};
use super::turn::{Lanes, Sent};
use crate::config::Config;
use crate::monitor::counters;
use crate::names::Names;
use crate::partitioning::State;
use crate::store::Store;

/// How long a worker's registry entry lives without a heartbeat.
const HEARTBEAT_TTL: Duration = Duration::from_secs(5);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A worker cannot see whether it is the active consumer of a quiet partition.
/// So when it waits on a partition it does not own, it also steps back from
/// time to time: leaving a line it merely waits in changes nothing, and
/// leaving one it leads (unknowingly) hands the partition on. Either way the
/// owner moves to the front within a few rounds.
const STEP_BACK_EVERY: Duration = Duration::from_secs(3);
/// How long reading the registry or the partition state may hold up a tick.
pub(super) const REGISTRY_WAIT: Duration = HEARTBEAT_TTL;

/// Why a session ended other than by shutdown: the worker reconnects.
#[derive(Debug, thiserror::Error)]
pub enum Broken {
    #[error(transparent)]
    Broker(#[from] lapin::Error),
    #[error("the broker ended a consumer")]
    ConsumerEnded,
    #[error("the publishing channel closed")]
    PublisherClosed,
    #[error("handling an event failed unexpectedly: {0}")]
    Panicked(String),
}

/// How a session ended when nothing failed.
#[derive(Debug)]
pub enum Ended {
    Shutdown,
    /// The recorded partition count is now this: consume the new set.
    Repartitioned(u16),
}

pub struct Consumer<'a> {
    pub config: &'a Config,
    pub names: &'a Names,
    pub pipeline: Processor,
    pub conn: &'a Connection,
    pub worker_id: &'a str,
    pub health: &'a crate::monitor::Health,
}

impl Consumer<'_> {
    /// Consumes until shutdown or a change of the partition count (Ok), or a
    /// broker failure (Err).
    pub async fn run(self, shutdown: &CancellationToken) -> Result<Ended, Broken> {
        let config = self.config;
        let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Incoming>();
        let opener = Opener {
            conn: self.conn,
            names: self.names,
            prefetch: config.concurrency,
            worker_id: self.worker_id,
            in_tx: &in_tx,
        };
        let mut forwarders = JoinSet::new();
        let mut generation = 0u64;
        let mut subs = HashMap::new();
        for n in 0..config.partitions {
            generation += 1;
            let sub = opener.open(n, generation, &mut forwarders).await?;
            subs.insert(n, sub);
        }

        // The session's own token: cancelled on shutdown or when the broker fails,
        // so tasks stop retrying on a dead channel. A task that finds the publishing
        // channel closed cancels `broken`, which ends the session for a reconnect.
        let session = shutdown.child_token();
        let broken = CancellationToken::new();
        let (lanes, mut sent_rx) = Lanes::new();
        let mut running = Tasks {
            set: JoinSet::new(),
            permits: Arc::new(Semaphore::new(usize::from(config.concurrency))),
            pipeline: self.pipeline.clone(),
            session: session.clone(),
            broken: broken.clone(),
            lanes,
        };
        let mut sequencer: Sequencer<Work> = Sequencer::default();
        let mut tickets: Ticket = 0;
        let mut summary = Summary::default();
        self.health.set_consuming(true);

        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        // At most one probe at a time: a slow Redis skips ticks, never piles them up.
        let mut probes: JoinSet<Probe> = JoinSet::new();
        let mut probed: u64 = 0;
        let mut failure = None;
        let mut repartitioned = None;
        let mut stopping = false;
        let mut deadline = tokio::time::Instant::now();
        loop {
            tokio::select! {
                Some(incoming) = in_rx.recv() => match incoming {
                    Incoming::Delivery(mut work) => {
                        let Some(sub) = subs.get_mut(&work.partition) else { continue };
                        if sub.generation != work.generation || sub.holds() || stopping {
                            // Held: left unacked, returned to the queue when the subscription closes.
                            continue;
                        }
                        sub.active = true;
                        sub.in_flight += 1;
                        tickets += 1;
                        work.ticket = tickets;
                        let ready = match work.admitted.order.clone() {
                            Some((account, scope)) => sequencer.offer(&account, scope, tickets, *work),
                            None => Some(*work),
                        };
                        if let Some(work) = ready {
                            running.spawn(work);
                        }
                    }
                    Incoming::Marker { partition, generation, id, marker } => {
                        // Left unacked: a marker not settled here returns to the
                        // head of its queue when the subscription closes.
                        let Some(sub) = subs.get_mut(&partition) else { continue };
                        if sub.generation == generation && !stopping && sub.fence.is_none() {
                            sub.active = true;
                            sub.fence = Some(Fence { id, marker, recorded: false, first_probe: probed + 1 });
                        }
                    }
                    Incoming::Ended { partition, generation, error } => {
                        let current = subs.get(&partition).is_some_and(|s| s.generation == generation);
                        if current && !stopping {
                            failure = Some(error.map_or(Broken::ConsumerEnded, Broken::Broker));
                            break;
                        }
                    }
                },
                Some(joined) = running.set.join_next() => {
                    let finished = match joined {
                        Ok(finished) => finished,
                        Err(e) => {
                            // A bug, not a passing fault: start afresh; the redelivery
                            // counts towards the event's delivery bound.
                            failure = Some(Broken::Panicked(e.to_string()));
                            break;
                        }
                    };
                    let handover = match subs.get_mut(&finished.partition) {
                        Some(sub) if sub.generation == finished.generation => {
                            sub.in_flight -= 1;
                            sub.yielding && sub.in_flight == 0
                        }
                        _ => false,
                    };
                    summary.count(finished.outcome);
                    running.finished(&finished);
                    // An event that ended unacked (its session is ending) keeps
                    // holding what it held: nothing later of its chat or account starts.
                    if finished.outcome.is_some() && let Some((account, scope)) = &finished.order {
                        for work in sequencer.finish(account, scope, finished.ticket) {
                            running.spawn(work);
                        }
                    }
                    if stopping && running.set.is_empty() {
                        break;
                    }
                    if handover && !stopping {
                        self.hand_over(&mut subs, finished.partition, &mut generation, &opener, &mut forwarders).await?;
                    }
                }
                Some(Sent { account, scope, ticket }) = sent_rx.recv() => {
                    for work in sequencer.sent(&account, &scope, ticket) {
                        running.spawn(work);
                    }
                }
                _ = tick.tick(), if !stopping => {
                    counters::running(running.set.len());
                    counters::waiting(sequencer.waiting());
                    counters::partitions_led(subs.values().filter(|s| s.active).count());
                    summary.maybe_log(running.set.len(), sequencer.waiting());
                    if probes.is_empty() {
                        probed += 1;
                        probes.spawn(probe(self.pipeline.store.clone(), self.worker_id.to_owned(), probed));
                    }
                }
                Some(probe_done) = probes.join_next(), if !stopping => {
                    // Without Redis, balance waits; order never does.
                    let Ok(Probe { number, live: Some(live), state }) = probe_done else {
                        continue;
                    };
                    self.rebalance(&mut subs, &mut sequencer, &mut generation, &opener, &mut forwarders, &live).await?;
                    let Some(state) = state else {
                        continue;
                    };
                    let Some(count) = self.follow_partitioning(&mut subs, &mut generation, &opener, &mut forwarders, &state, number).await? else {
                        continue;
                    };
                    // Like a shutdown, but the worker goes on with the new partitions.
                    info!(from = config.partitions, to = count, "The partition count changed; finishing in-flight events.");
                    repartitioned = Some(count);
                    stopping = true;
                    stop_starting(&mut sequencer, &mut subs);
                    deadline = tokio::time::Instant::now() + config.shutdown_grace();
                    if running.set.is_empty() {
                        break;
                    }
                }
                () = broken.cancelled() => {
                    failure = Some(Broken::PublisherClosed);
                    break;
                }
                () = shutdown.cancelled(), if !stopping => {
                    // Phase 1: start nothing new; deliveries held go back to the queue on close.
                    info!("Shutdown: no longer consuming; finishing in-flight events.");
                    stopping = true;
                    stop_starting(&mut sequencer, &mut subs);
                    deadline = tokio::time::Instant::now() + config.shutdown_grace();
                    if running.set.is_empty() {
                        break;
                    }
                }
                () = tokio::time::sleep_until(deadline), if stopping => break,
            }
        }
        drop(sequencer);
        if failure.is_some() {
            session.cancel();
        }
        // Phase 2: let running events finish, up to the grace period; then abort what is left.
        // An event cut short is safe: its apply is atomic and its redelivery replays it.
        if !stopping {
            deadline = tokio::time::Instant::now() + config.shutdown_grace();
        }
        let drained = tokio::time::timeout_at(deadline, async {
            while running.set.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                unfinished = running.set.len(),
                "Shutdown grace period over; unfinished events go back to the queue."
            );
            session.cancel();
            running.set.abort_all();
            while running.set.join_next().await.is_some() {}
        }
        for sub in subs.values() {
            let _ =
                tokio::time::timeout(super::CLOSE_WAIT, sub.channel.close(200, "stopping".into()))
                    .await;
        }
        forwarders.abort_all();
        probes.abort_all();
        if failure.is_none() && repartitioned.is_none() {
            let _ = tokio::time::timeout(
                super::CLOSE_WAIT,
                self.pipeline
                    .store
                    .heartbeat(self.worker_id, HEARTBEAT_TTL, true),
            )
            .await;
        }
        match (failure, repartitioned) {
            (Some(e), _) => Err(e),
            (None, Some(count)) => Ok(Ended::Repartitioned(count)),
            (None, None) => Ok(Ended::Shutdown),
        }
    }

    /// Closes the subscription of a partition with nothing in flight (its held
    /// deliveries return to the head of the queue and the next worker in line
    /// becomes active), then subscribes again at the back of the line.
    pub(super) async fn hand_over(
        &self,
        subs: &mut HashMap<u16, Subscription>,
        n: u16,
        generation: &mut u64,
        opener: &Opener<'_>,
        forwarders: &mut JoinSet<()>,
    ) -> Result<(), lapin::Error> {
        *generation += 1;
        if let Some(old) = subs.remove(&n) {
            let _ = tokio::time::timeout(
                super::CLOSE_WAIT,
                old.channel.close(200, "handing over".into()),
            )
            .await;
        }
        let fresh = opener.open(n, *generation, forwarders).await?;
        subs.insert(n, fresh);
        debug!(
            partition = n,
            "Stepped back from a partition owned by another worker."
        );
        Ok(())
    }

    /// Starts handing over the partitions this worker is active on but does
    /// not own among the `live` workers (never one held at a fence).
    async fn rebalance(
        &self,
        subs: &mut HashMap<u16, Subscription>,
        sequencer: &mut Sequencer<Work>,
        generation: &mut u64,
        opener: &Opener<'_>,
        forwarders: &mut JoinSet<()>,
        live: &[String],
    ) -> Result<(), lapin::Error> {
        let owners = partitions::owners(self.config.partitions, live);
        for (n, owner) in owners.iter().enumerate() {
            let n = n as u16;
            let Some(sub) = subs.get_mut(&n) else {
                continue;
            };
            let may_lead = sub.active || sub.since.elapsed() >= STEP_BACK_EVERY;
            if owner.is_none_or(|o| o == self.worker_id) || !may_lead || sub.holds() {
                continue;
            }
            sub.yielding = true;
            // Events held behind earlier ones of their account are not started
            // now: they go back to the queue, in order, with the subscription.
            let held = sequencer.take_waiting(|w| w.partition == n);
            sub.in_flight -= held.len();
            if sub.in_flight == 0 {
                self.hand_over(subs, n, generation, opener, forwarders)
                    .await?;
            }
        }
        Ok(())
    }
}

/// What a tick learns from Redis: the live workers (`None` when the heartbeat
/// did not answer) and the partition state (`None` when it could not be read).
struct Probe {
    /// The probes of a session are numbered from 1 as they start.
    number: u64,
    live: Option<Vec<String>>,
    state: Option<State>,
}

/// Renews this worker's heartbeat and reads the partition state, both on the
/// store's one connection (so one round trip), each bounded by [`REGISTRY_WAIT`].
async fn probe(store: Store, worker: String, number: u64) -> Probe {
    let heartbeat = tokio::time::timeout(
        REGISTRY_WAIT,
        store.heartbeat(&worker, HEARTBEAT_TTL, false),
    );
    let state = tokio::time::timeout(REGISTRY_WAIT, store.partition_state());
    let (live, state) = tokio::join!(heartbeat, state);
    Probe {
        number,
        live: answer(live, "The heartbeat", "keeping the current balance"),
        state: answer(
            state,
            "Reading the partition state",
            "trying again next tick",
        ),
    }
}

/// The value of a bounded Redis read, or `None` (logged as `what` failed or
/// timed out, then what the worker does instead) when it has none.
fn answer<T>(
    read: Result<Result<T, crate::store::StoreError>, tokio::time::error::Elapsed>,
    what: &str,
    instead: &str,
) -> Option<T> {
    match read {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            debug!(%error, "{what} failed; {instead}.");
            None
        }
        Err(_) => {
            debug!("{what} timed out; {instead}.");
            None
        }
    }
}

/// Starts nothing more: events held behind earlier ones of their account go
/// back to their queues when the subscriptions close.
fn stop_starting(sequencer: &mut Sequencer<Work>, subs: &mut HashMap<u16, Subscription>) {
    for held in sequencer.take_waiting(|_| true) {
        if let Some(sub) = subs.get_mut(&held.partition)
            && sub.generation == held.generation
        {
            sub.in_flight -= 1;
        }
    }
}
