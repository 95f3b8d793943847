//! Destinations the broker keeps refusing, and what goes there meanwhile.
//!
//! A notification the broker refuses (nacks) fails its event, which is tried
//! again with backoff: a refusal can pass (a quorum queue electing a leader).
//! A queue that *stays* full (`max-length` with `x-overflow: reject-publish`, a
//! user who reads nothing) does not pass, though, and every event that tells
//! its user would hold its delivery, its place in `--concurrency` and its
//! chat for 10 tries. A stream of them fills the worker's window, and other
//! accounts wait: one odd queue would stall them.
//!
//! So each publisher remembers destinations (exchange and routing key) whose
//! messages the broker refused with none accepted in between, for at least
//! [`OPEN_AFTER`] and [`MIN_REFUSALS`] times. Such a destination is
//! *refusing*: its messages go to `P.dead` instead, marked `undelivered` with
//! the exchange and routing key they were for (`switchboard dead replay` puts
//! them there), and the event goes on. Every [`PROBE_EVERY`] one message
//! tries the destination itself (a probe); once the broker takes one, the
//! destination is no longer refusing. A probe the broker refuses goes to
//! `P.dead` then, as the messages around it did (`Unconfirmed::confirmed`),
//! so its event is not tried again for it. The check costs one atomic load per
//! message while nothing refuses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::clip::{MAX_SHORT_BYTES, clip};

/// How long a destination must have refused every message before its
/// messages go to `P.dead`: longer than a quorum queue's leader election.
pub const OPEN_AFTER: Duration = Duration::from_secs(10);
/// ... and at least this many times.
pub const MIN_REFUSALS: u32 = 3;
/// How often one message tries a refusing destination again.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Where one message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To its destination.
    Send,
    /// To its destination, which has been refusing: a probe.
    Probe,
    /// To `P.dead`: its destination has refused every message for this long.
    Divert(Duration),
}

/// One destination's run of refusals.
#[derive(Debug)]
struct Streak {
    first: Instant,
    last: Instant,
    refusals: u32,
    /// Refusing: its messages are diverted; the next probe is due then.
    probe_at: Option<Instant>,
}

impl Streak {
    /// A run with no refusal for longer than [`OPEN_AFTER`] is over (unless
    /// it made the destination refusing, which only a message taken ends).
    fn over(&self, now: Instant) -> bool {
        self.probe_at.is_none() && now.saturating_duration_since(self.last) > OPEN_AFTER
    }
}

#[derive(Debug, Default)]
pub struct Refusing {
    /// Destinations with a streak: zero on the hot path, so no lock is taken.
    streaks: AtomicUsize,
    by_destination: Mutex<HashMap<String, Streak>>,
}

fn open(streaks: &HashMap<String, Streak>) -> usize {
    streaks.values().filter(|s| s.probe_at.is_some()).count()
}

fn name(exchange: &str, key: &str) -> String {
    format!("{exchange} {key}")
}

impl Refusing {
    /// Whether any destination has refused a message lately.
    pub fn any(&self) -> bool {
        self.streaks.load(Ordering::Relaxed) > 0
    }

    /// Destinations whose messages go to `P.dead` now.
    #[cfg(test)]
    pub fn refusing(&self) -> usize {
        open(&self.lock())
    }

    /// Publishes the state after a change: the count that spares the hot
    /// path the lock, and the gauge.
    fn settle(&self, streaks: &HashMap<String, Streak>) {
        self.streaks.store(streaks.len(), Ordering::Relaxed);
        crate::monitor::counters::refusing(open(streaks));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Streak>> {
        self.by_destination
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Where a message to `exchange`/`key` goes now.
    pub fn route(&self, exchange: &str, key: &str, now: Instant) -> Route {
        if !self.any() {
            return Route::Send;
        }
        let mut streaks = self.lock();
        let Some(streak) = streaks.get_mut(&name(exchange, key)) else {
            return Route::Send;
        };
        match streak.probe_at {
            None => Route::Send,
            Some(due) if now >= due => {
                streak.probe_at = Some(now + PROBE_EVERY);
                Route::Probe
            }
            Some(_) => Route::Divert(now.saturating_duration_since(streak.first)),
        }
    }

    /// The broker refused a message to `exchange`/`key`. Returns how long the
    /// destination has refused every message when it is refusing now.
    pub fn refused(&self, exchange: &str, key: &str, now: Instant) -> Option<Duration> {
        let mut streaks = self.lock();
        let streak = streaks.entry(name(exchange, key)).or_insert(Streak {
            first: now,
            last: now,
            refusals: 0,
            probe_at: None,
        });
        // Refusals far apart are not one run.
        if streak.over(now) {
            streak.first = now;
            streak.refusals = 0;
        }
        streak.refusals = streak.refusals.saturating_add(1);
        streak.last = now;
        if streak.probe_at.is_none()
            && streak.refusals >= MIN_REFUSALS
            && now.saturating_duration_since(streak.first) >= OPEN_AFTER
        {
            streak.probe_at = Some(now + PROBE_EVERY);
            warn!(
                exchange,
                routing_key = %clip(key, MAX_SHORT_BYTES),
                refusals = streak.refusals,
                "The broker refused every message to this destination for {} s; its messages go to the dead-letter queue (undelivered) until it takes one again.",
                OPEN_AFTER.as_secs()
            );
        }
        let refusing_for = streak
            .probe_at
            .map(|_| now.saturating_duration_since(streak.first));
        self.settle(&streaks);
        refusing_for
    }

    /// The broker took a message to `exchange`/`key`.
    pub fn accepted(&self, exchange: &str, key: &str, now: Instant) {
        if !self.any() {
            return;
        }
        let mut streaks = self.lock();
        if let Some(streak) = streaks.remove(&name(exchange, key))
            && streak.probe_at.is_some()
        {
            info!(
                exchange,
                routing_key = %clip(key, MAX_SHORT_BYTES),
                "The destination takes messages again."
            );
        }
        // A run that ended without making the destination refusing (a
        // refusal or two, then nothing more to it) is forgotten, so that the
        // messages of a healthy broker take no lock for it.
        streaks.retain(|_, s| !s.over(now));
        self.settle(&streaks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EX: &str = "sb.notify";
    const KEY: &str = "a.u";

    #[test]
    fn nothing_refused_sends() {
        let r = Refusing::default();
        assert_eq!(r.route(EX, KEY, Instant::now()), Route::Send);
        assert!(!r.any());
    }

    #[test]
    fn a_destination_refusing_long_enough_is_diverted_then_probed() {
        let r = Refusing::default();
        let t0 = Instant::now();
        assert_eq!(r.refused(EX, KEY, t0), None);
        assert_eq!(r.refused(EX, KEY, t0 + Duration::from_secs(5)), None);
        // Refused for 5 s only: still tried.
        assert_eq!(r.route(EX, KEY, t0 + Duration::from_secs(6)), Route::Send);
        assert_eq!(r.refused(EX, KEY, t0 + OPEN_AFTER), Some(OPEN_AFTER));
        assert_eq!(r.refusing(), 1);
        let at = t0 + OPEN_AFTER + Duration::from_secs(1);
        assert_eq!(r.route(EX, KEY, at), Route::Divert(at - t0));
        // Other destinations are not touched.
        assert_eq!(r.route(EX, "a.v", at), Route::Send);
        // One probe when due, then diverted again until the next.
        let due = t0 + OPEN_AFTER + PROBE_EVERY;
        assert_eq!(r.route(EX, KEY, due), Route::Probe);
        assert!(matches!(
            r.route(EX, KEY, due + Duration::from_secs(1)),
            Route::Divert(_)
        ));
        assert_eq!(r.route(EX, KEY, due + PROBE_EVERY), Route::Probe);
        // A probe refused: still refusing, for as long as the run.
        let refused_at = due + PROBE_EVERY + Duration::from_millis(10);
        assert_eq!(r.refused(EX, KEY, refused_at), Some(refused_at - t0));
        assert!(matches!(r.route(EX, KEY, refused_at), Route::Divert(_)));
        assert_eq!(r.route(EX, KEY, due + 2 * PROBE_EVERY), Route::Probe);
        // A probe taken: sent again.
        r.accepted(EX, KEY, due + 2 * PROBE_EVERY);
        assert_eq!(r.route(EX, KEY, due + 2 * PROBE_EVERY), Route::Send);
        assert!(!r.any());
        assert_eq!(r.refusing(), 0);
    }

    #[test]
    fn too_few_refusals_or_an_accepted_message_keep_it_open() {
        let r = Refusing::default();
        let t0 = Instant::now();
        // Two refusals, 10 s apart: not enough.
        r.refused(EX, KEY, t0);
        r.refused(EX, KEY, t0 + OPEN_AFTER);
        assert_eq!(r.route(EX, KEY, t0 + OPEN_AFTER), Route::Send);
        // A message taken ends the run.
        r.accepted(EX, KEY, t0 + OPEN_AFTER);
        r.refused(EX, KEY, t0 + OPEN_AFTER);
        r.refused(EX, KEY, t0 + OPEN_AFTER + Duration::from_secs(5));
        r.refused(EX, KEY, t0 + OPEN_AFTER + Duration::from_secs(9));
        assert_eq!(
            r.route(EX, KEY, t0 + OPEN_AFTER + Duration::from_secs(9)),
            Route::Send
        );
    }

    #[test]
    fn refusals_far_apart_are_not_one_run() {
        let r = Refusing::default();
        let t0 = Instant::now();
        r.refused(EX, KEY, t0);
        r.refused(EX, KEY, t0 + Duration::from_secs(1));
        // A quiet minute, then one more refusal: a new run starts.
        let later = t0 + Duration::from_secs(60);
        r.refused(EX, KEY, later);
        assert_eq!(r.route(EX, KEY, later), Route::Send);
    }

    #[test]
    fn a_run_that_ended_is_forgotten_when_another_destination_takes_a_message() {
        let r = Refusing::default();
        let t0 = Instant::now();
        r.refused(EX, KEY, t0);
        // Another destination's message taken, soon after: the run may go on.
        r.accepted(EX, "a.v", t0 + Duration::from_secs(1));
        assert!(r.any());
        // Long after: forgotten, the hot path takes no lock again.
        r.accepted(EX, "a.v", t0 + OPEN_AFTER + Duration::from_secs(1));
        assert!(!r.any());
        // A refusing destination is kept however long ago it last refused.
        for i in 0..3 {
            r.refused(EX, KEY, t0 + OPEN_AFTER * i);
        }
        r.accepted(EX, "a.v", t0 + OPEN_AFTER * 10);
        assert_eq!(r.refusing(), 1);
    }
}
