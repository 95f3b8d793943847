//! The client side of a phase: consumers of the queues a client would read,
//! forwarding each message's mark to one collector that counts distinct
//! arrivals and records publish -> received latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use lapin::{Connection, Consumer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::amqp;
use crate::load::{micros, read_mark};

#[derive(Debug, Clone, Copy)]
pub enum Who {
    /// The responsible manager (or the ceiling's out queue): what latency is measured on.
    Primary,
    /// Quality control: counted only.
    Observer,
}

#[derive(Debug)]
struct Sample {
    phase: u8,
    seq: u64,
    sent_us: u64,
    recv_us: u64,
    who: Who,
}

#[derive(Debug, Default)]
pub struct Collected {
    /// Distinct primaries of the phase (a redelivery can repeat one).
    pub primaries: u64,
    pub duplicates: u64,
    pub observers: u64,
    pub last_us: u64,
    /// Publish -> received, µs, of each distinct primary.
    pub latencies: Vec<u64>,
    pub stalled: bool,
}

impl Collected {
    fn take(&mut self, s: Sample, phase: u8, seen: &mut [bool]) {
        if s.phase != phase {
            return;
        }
        match s.who {
            Who::Observer => self.observers += 1,
            Who::Primary => match seen.get_mut(s.seq as usize) {
                Some(seen) if !*seen => {
                    *seen = true;
                    self.primaries += 1;
                    self.latencies.push(s.recv_us.saturating_sub(s.sent_us));
                    self.last_us = self.last_us.max(s.recv_us);
                }
                _ => self.duplicates += 1,
            },
        }
    }
}

/// Receives the samples of every watched queue, stamped on the bench clock `base`.
pub struct Collector {
    base: Instant,
    tx: mpsc::UnboundedSender<Sample>,
    rx: mpsc::UnboundedReceiver<Sample>,
}

impl Collector {
    pub fn new(base: Instant) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { base, tx, rx }
    }

    /// Consumes `queue` and forwards each marked message as `who`; the task
    /// runs until its consumer ends or is aborted.
    pub async fn watch(&self, conn: &Connection, queue: &str, who: Who) -> Result<JoinHandle<()>> {
        let consumer = amqp::consume(conn, queue).await?;
        Ok(tokio::spawn(forward(
            consumer,
            self.base,
            self.tx.clone(),
            who,
        )))
    }

    /// Gathers the samples of `phase` until `n` distinct primaries arrived, or
    /// nothing arrived for `stall`; then listens a moment longer for observers.
    pub async fn collect(&mut self, phase: u8, n: u64, stall: Duration) -> Collected {
        let mut seen = vec![false; n as usize];
        let mut c = Collected {
            latencies: Vec::with_capacity(n as usize),
            ..Collected::default()
        };
        while c.primaries < n {
            match tokio::time::timeout(stall, self.rx.recv()).await {
                Ok(Some(s)) => c.take(s, phase, &mut seen),
                Ok(None) => break,
                Err(_) => {
                    c.stalled = true;
                    break;
                }
            }
        }
        let quiet = Duration::from_millis(300);
        while let Ok(Some(s)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            c.take(s, phase, &mut seen);
        }
        c
    }
}

async fn forward(
    mut consumer: Consumer,
    base: Instant,
    tx: mpsc::UnboundedSender<Sample>,
    who: Who,
) {
    while let Some(Ok(delivery)) = consumer.next().await {
        let recv_us = micros(base);
        if let Some((phase, seq, sent_us)) = read_mark(&delivery.data)
            && tx
                .send(Sample {
                    phase,
                    seq,
                    sent_us,
                    recv_us,
                    who,
                })
                .is_err()
        {
            return;
        }
    }
}

/// Counts the messages of `queue` (the CRM's), marked or not.
pub async fn count(
    conn: &Connection,
    queue: &str,
    counter: Arc<AtomicU64>,
) -> Result<JoinHandle<()>> {
    let mut consumer = amqp::consume(conn, queue).await?;
    Ok(tokio::spawn(async move {
        while let Some(Ok(_)) = consumer.next().await {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }))
}
