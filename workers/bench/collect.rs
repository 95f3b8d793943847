//! The client side of a phase: consumers of the queues a client would read
//! (users, the gateway's, the CRM's), counting every message and its bytes by
//! kind and forwarding each message's mark to one collector that counts
//! distinct arrivals of the measured copy, records publish -> received
//! latency and checks that every queue received each chat's messages in the
//! order they were published.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use lapin::{Connection, Consumer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::amqp;
use crate::load::{Mark, micros, read_mark};
use crate::shape::TO_GATEWAY;

/// Whose queue a consumer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// A manager: the copy measured on, unless the mark names someone else.
    Manager,
    /// Quality control: never measured on.
    Observer,
    /// The gateway's queue on `P.outbound`: measured on for a claim.
    Gateway,
}

/// Messages and bytes that reached one kind of queue.
#[derive(Debug, Default)]
pub struct Tally {
    messages: AtomicU64,
    bytes: AtomicU64,
}

impl Tally {
    fn add(&self, bytes: usize) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Messages and bytes received so far, by kind: (messages, bytes).
#[derive(Debug, Default, Clone, Copy)]
pub struct Outputs {
    pub notifications: (u64, u64),
    pub outbound: (u64, u64),
    pub crm: (u64, u64),
}

impl Outputs {
    /// The average size of `(messages, bytes)`, 0 when there were none.
    pub fn average(kind: (u64, u64)) -> u64 {
        kind.1.checked_div(kind.0).unwrap_or(0)
    }

    pub fn since(&self, before: &Outputs) -> Outputs {
        let d = |a: (u64, u64), b: (u64, u64)| (a.0 - b.0, a.1 - b.1);
        Outputs {
            notifications: d(self.notifications, before.notifications),
            outbound: d(self.outbound, before.outbound),
            crm: d(self.crm, before.crm),
        }
    }
}

#[derive(Debug)]
struct Sample {
    mark: Mark,
    recv_us: u64,
    /// Whether this is the copy of the event that is measured.
    measured: bool,
    /// Which watched queue it came from.
    queue: usize,
}

#[derive(Debug, Default)]
pub struct Collected {
    /// Distinct measured copies of the phase (a redelivery can repeat one).
    pub primaries: u64,
    pub duplicates: u64,
    /// Measured copies that arrived after one of a later-published event of
    /// the same chat on the same queue: the contract's per-chat order, broken.
    pub out_of_order: u64,
    /// The same for every other marked copy (quality control, other managers).
    pub out_of_order_others: u64,
    pub last_us: u64,
    /// Publish -> received, µs, of each distinct primary.
    pub latencies: Vec<u64>,
    pub stalled: bool,
}

/// Per-chat order of the first arrival of each event on each queue. A repeat
/// (the same event again, as at-least-once allows) is not a reordering.
#[derive(Debug, Default)]
struct Order {
    /// Per queue, the events already received there.
    seen: HashMap<usize, Vec<bool>>,
    /// Per queue and chat, the latest-published event received so far.
    latest: HashMap<(usize, String), u64>,
}

impl Order {
    /// `Some(true)` when a later-published event of the same chat reached this
    /// queue before this one did; `None` for a repeat.
    fn overtaken(&mut self, queue: usize, chat: &str, seq: u64, n: u64) -> Option<bool> {
        let seen = self
            .seen
            .entry(queue)
            .or_insert_with(|| vec![false; n as usize]);
        let first = seen.get_mut(seq as usize).filter(|s| !**s)?;
        *first = true;
        match self.latest.get_mut(&(queue, chat.to_owned())) {
            Some(latest) if *latest > seq => Some(true),
            Some(latest) => {
                *latest = seq;
                Some(false)
            }
            None => {
                self.latest.insert((queue, chat.to_owned()), seq);
                Some(false)
            }
        }
    }
}

impl Collected {
    fn take(&mut self, s: Sample, phase: u8, seen: &mut [bool], order: &mut Order) {
        if s.mark.phase != phase {
            return;
        }
        let overtaken = order.overtaken(s.queue, &s.mark.chat, s.mark.seq, seen.len() as u64);
        if !s.measured {
            self.out_of_order_others += u64::from(overtaken == Some(true));
            return;
        }
        match seen.get_mut(s.mark.seq as usize) {
            Some(seen) if !*seen => {
                *seen = true;
                self.primaries += 1;
                self.out_of_order += u64::from(overtaken == Some(true));
                self.latencies
                    .push(s.recv_us.saturating_sub(s.mark.sent_us));
                self.last_us = self.last_us.max(s.recv_us);
            }
            _ => self.duplicates += 1,
        }
    }
}

/// Receives the samples of every watched queue, stamped on the bench clock `base`.
pub struct Collector {
    base: Instant,
    tx: mpsc::UnboundedSender<Sample>,
    rx: mpsc::UnboundedReceiver<Sample>,
    watched: usize,
    notifications: Arc<Tally>,
    outbound: Arc<Tally>,
    crm: Arc<Tally>,
}

impl Collector {
    pub fn new(base: Instant) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            base,
            tx,
            rx,
            watched: 0,
            notifications: Arc::default(),
            outbound: Arc::default(),
            crm: Arc::default(),
        }
    }

    /// Consumes `queue`, `user`'s (or the gateway's), counting its messages
    /// and forwarding each marked one; the task runs until its consumer ends
    /// or is aborted. One consumer per queue, so the samples of a queue reach
    /// the collector in the order they arrived.
    pub async fn watch(
        &mut self,
        conn: &Connection,
        queue: &str,
        who: Who,
        user: &str,
    ) -> Result<JoinHandle<()>> {
        let consumer = amqp::consume(conn, queue).await?;
        self.watched += 1;
        let tally = match who {
            Who::Gateway => self.outbound.clone(),
            Who::Manager | Who::Observer => self.notifications.clone(),
        };
        let forward = Forward {
            base: self.base,
            tx: self.tx.clone(),
            who,
            user: user.to_owned(),
            queue: self.watched,
            tally,
        };
        Ok(tokio::spawn(forward.run(consumer)))
    }

    /// Counts the messages of `queue` (the CRM's), marked or not.
    pub async fn count_crm(&self, conn: &Connection, queue: &str) -> Result<JoinHandle<()>> {
        let mut consumer = amqp::consume(conn, queue).await?;
        let tally = self.crm.clone();
        Ok(tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                tally.add(delivery.data.len());
            }
        }))
    }

    /// Every message received so far, by kind.
    pub fn outputs(&self) -> Outputs {
        let read = |t: &Tally| {
            (
                t.messages.load(Ordering::Relaxed),
                t.bytes.load(Ordering::Relaxed),
            )
        };
        Outputs {
            notifications: read(&self.notifications),
            outbound: read(&self.outbound),
            crm: read(&self.crm),
        }
    }

    /// Gathers the samples of `phase` (events `0..n`) until `n` distinct
    /// primaries arrived, or nothing arrived for `stall`; then listens a
    /// moment longer for observers.
    pub async fn collect(&mut self, phase: u8, n: u64, stall: Duration) -> Collected {
        let mut seen = vec![false; n as usize];
        let mut order = Order::default();
        let mut c = Collected {
            latencies: Vec::with_capacity(n as usize),
            ..Collected::default()
        };
        while c.primaries < n {
            match tokio::time::timeout(stall, self.rx.recv()).await {
                Ok(Some(s)) => c.take(s, phase, &mut seen, &mut order),
                Ok(None) => break,
                Err(_) => {
                    c.stalled = true;
                    break;
                }
            }
        }
        let quiet = Duration::from_millis(300);
        while let Ok(Some(s)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            c.take(s, phase, &mut seen, &mut order);
        }
        c
    }
}

/// One watched queue's consumer loop.
struct Forward {
    base: Instant,
    tx: mpsc::UnboundedSender<Sample>,
    who: Who,
    user: String,
    queue: usize,
    tally: Arc<Tally>,
}

impl Forward {
    async fn run(self, mut consumer: Consumer) {
        while let Some(Ok(delivery)) = consumer.next().await {
            let recv_us = micros(self.base);
            self.tally.add(delivery.data.len());
            let Some(mark) = read_mark(&delivery.data) else {
                continue;
            };
            let measured = match mark.to.as_deref() {
                None => self.who == Who::Manager,
                Some(TO_GATEWAY) => self.who == Who::Gateway,
                Some(user) => self.who == Who::Manager && user == self.user,
            };
            let sample = Sample {
                mark,
                recv_us,
                measured,
                queue: self.queue,
            };
            if self.tx.send(sample).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(queue: usize, chat: &str, seq: u64, measured: bool) -> Sample {
        Sample {
            mark: Mark {
                phase: b'm',
                seq,
                sent_us: 0,
                chat: chat.into(),
                to: None,
            },
            recv_us: 1,
            measured,
            queue,
        }
    }

    #[test]
    fn counts_a_chat_overtaken_on_its_queue_but_not_repeats_or_other_chats() {
        let mut c = Collected::default();
        let (mut seen, mut order) = (vec![false; 10], Order::default());
        for (queue, chat, seq) in [
            (1, "a", 0),
            (1, "b", 3),
            (1, "a", 2),
            (1, "a", 1),
            (1, "a", 2),
        ] {
            c.take(sample(queue, chat, seq, true), b'm', &mut seen, &mut order);
        }
        // QC sees the same events on its own queue, in order there.
        for seq in [0, 1, 2] {
            c.take(sample(2, "a", seq, false), b'm', &mut seen, &mut order);
        }
        assert_eq!((c.primaries, c.duplicates), (4, 1));
        assert_eq!((c.out_of_order, c.out_of_order_others), (1, 0));
    }
}
