//! The load generator: publishes marked events with many confirms in flight
//! (optionally at a fixed rate) and measures one phase from the first publish
//! to the last message the client side received.
//!
//! The mark `"{phase}:{seq}:{publish µs}"` rides in the message `text` and
//! comes back in the notification (or the relayed ceiling message), so
//! latency needs no shared state between publisher and consumers.

use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::{Channel, Confirmation};

use crate::amqp;
use crate::args::{Args, Pace};
use crate::collect::Collector;
use crate::cpu::Cpu;
use crate::report::PhaseResult;

/// Phases, as they travel in the mark.
pub const WARMUP: u8 = b'w';
pub const MEASURED: u8 = b'm';

#[derive(Debug, Default)]
pub struct Published {
    /// Bench clock (µs) of the first publish and of the last confirm.
    pub first_us: u64,
    pub confirmed_us: u64,
    pub nacked: u64,
}

/// Microseconds on the bench clock, which starts at `base`.
pub fn micros(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

/// Reads the mark back from a message body: `(phase, seq, publish µs)`.
pub fn read_mark(body: &[u8]) -> Option<(u8, u64, u64)> {
    #[derive(serde::Deserialize)]
    struct Probe {
        text: Option<String>,
    }
    let text = serde_json::from_slice::<Probe>(body).ok()?.text?;
    let mut parts = text.splitn(3, ':');
    let phase = *parts.next()?.as_bytes().first()?;
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((phase, seq, sent))
}

/// Publishes `n` messages, keeping up to `pace.window` confirms in flight (and,
/// with a rate, no faster than that). `make(seq, mark)` gives exchange, key, body.
pub async fn publish_events(
    channel: &Channel,
    pace: Pace,
    base: Instant,
    phase: u8,
    n: u64,
    mut make: impl FnMut(u64, &str) -> (String, String, Vec<u8>),
) -> Result<Published> {
    let mut in_flight = FuturesUnordered::new();
    let mut out = Published::default();
    let start = Instant::now();
    for seq in 0..n {
        if pace.rate > 0 {
            let due = start + Duration::from_secs_f64(seq as f64 / pace.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let sent_us = micros(base);
        if seq == 0 {
            out.first_us = sent_us;
        }
        let mark = format!("{}:{seq}:{sent_us}", phase as char);
        let (exchange, key, body) = make(seq, &mark);
        in_flight.push(amqp::publish(channel, &exchange, &key, &body).await?);
        while in_flight.len() >= pace.window {
            if let Some(confirm) = in_flight.next().await
                && matches!(confirm?, Confirmation::Nack(_))
            {
                out.nacked += 1;
            }
        }
    }
    while let Some(confirm) = in_flight.next().await {
        if matches!(confirm?, Confirmation::Nack(_)) {
            out.nacked += 1;
        }
    }
    out.confirmed_us = micros(base);
    Ok(out)
}

/// The measured run of a phase: `args.events` marked publishes at the
/// requested pace, their arrivals, and the CPU spent meanwhile. Redis, dead
/// letters and CRM messages are left for the caller to fill in.
pub async fn measure(
    publisher: &Channel,
    collector: &mut Collector,
    args: &Args,
    base: Instant,
    make: impl FnMut(u64, &str) -> (String, String, Vec<u8>),
) -> Result<PhaseResult> {
    let cpu0 = Cpu::sample();
    let published =
        publish_events(publisher, args.pace(), base, MEASURED, args.events, make).await?;
    let got = collector.collect(MEASURED, args.events, args.stall()).await;
    let cpu1 = Cpu::sample();
    Ok(PhaseResult {
        published,
        got,
        cpu: cpu1.since(&cpu0),
        redis: None,
        dead: 0,
        crm: 0,
    })
}
