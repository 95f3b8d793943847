//! The load generator: publishes marked events with many confirms in flight
//! (optionally at a fixed rate) and measures one phase from the first publish
//! to the last message the client side received.
//!
//! The mark `"{phase}:{seq}:{publish µs}[:{measured at}]"` rides in the
//! message `text` and comes back in the notification (or the relayed ceiling
//! message), so latency needs no shared state between publisher and
//! consumers. "Measured at" names whose copy is measured when not any
//! manager's: the claimer's for a first-reply offer, the gateway's for a claim.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::{BasicProperties, Channel};
use redis::aio::MultiplexedConnection;

use crate::amqp;
use crate::args::{Args, Pace};
use crate::collect::Collector;
use crate::cpu::{Cpu, peak_rss_kib};
use crate::redis_stats::{RedisDelta, RedisSample};
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

/// A mark read back from a message body.
#[derive(Debug)]
pub struct Mark {
    pub phase: u8,
    pub seq: u64,
    /// Bench clock (µs) of the publish.
    pub sent_us: u64,
    /// `"{accountId} {chatId}"` as the message itself names them: the stream
    /// whose order is checked.
    pub chat: String,
    /// Whose copy is measured, when not any manager's.
    pub to: Option<String>,
}

/// The mark of event `seq` published at `sent_us`, measured at `to`.
pub fn mark(phase: u8, seq: u64, sent_us: u64, to: Option<&str>) -> String {
    match to {
        Some(to) => format!("{}:{seq}:{sent_us}:{to}", phase as char),
        None => format!("{}:{seq}:{sent_us}", phase as char),
    }
}

/// Reads the mark, account and chat back from a notification (or a relayed
/// event, which has the same fields).
pub fn read_mark(body: &[u8]) -> Option<Mark> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe<'a> {
        #[serde(borrow)]
        text: Option<Cow<'a, str>>,
        #[serde(borrow)]
        account_id: Option<Cow<'a, str>>,
        #[serde(borrow)]
        chat_id: Option<Cow<'a, str>>,
    }
    let probe = serde_json::from_slice::<Probe>(body).ok()?;
    let text = probe.text?;
    let mut parts = text.splitn(4, ':');
    let phase = *parts.next()?.as_bytes().first()?;
    let seq = parts.next()?.parse().ok()?;
    let sent_us = parts.next()?.parse().ok()?;
    let to = parts.next().map(str::to_owned);
    let chat = format!(
        "{} {}",
        probe.account_id.unwrap_or_default(),
        probe.chat_id.unwrap_or_default()
    );
    Some(Mark {
        phase,
        seq,
        sent_us,
        chat,
        to,
    })
}

/// One message the load generator publishes.
pub struct Outgoing {
    pub exchange: String,
    pub key: String,
    pub body: Vec<u8>,
    pub props: BasicProperties,
}

impl Outgoing {
    /// A persistent JSON event to `exchange` with routing key `key`.
    pub fn event(exchange: &str, key: &str, body: Vec<u8>) -> Self {
        Self {
            exchange: exchange.to_owned(),
            key: key.to_owned(),
            body,
            props: amqp::json_props(),
        }
    }
}

/// Publishes `n` messages, keeping up to `pace.window` confirms in flight (and,
/// with a rate, no faster than that). `make(seq, sent_us)` gives each message,
/// marked with [`mark`].
pub async fn publish_events(
    channel: &Channel,
    pace: Pace,
    base: Instant,
    n: u64,
    mut make: impl FnMut(u64, u64) -> Outgoing,
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
        let m = make(seq, sent_us);
        let confirm = amqp::publish_with(channel, &m.exchange, &m.key, &m.body, m.props).await?;
        in_flight.push(amqp::confirmed(confirm));
        while in_flight.len() >= pace.window {
            if let Some(acked) = in_flight.next().await {
                out.nacked += u64::from(!acked?);
            }
        }
    }
    while let Some(acked) = in_flight.next().await {
        out.nacked += u64::from(!acked?);
    }
    out.confirmed_us = micros(base);
    Ok(out)
}

/// What a measured run watches besides the client side: Redis and the
/// worker processes (none when the workers run in-process).
pub struct Probes<'a> {
    pub rconn: &'a mut MultiplexedConnection,
    pub workers: Vec<u32>,
}

/// The measured run of a phase: `args.events` marked publishes at the
/// requested pace, their arrivals and outputs, and the CPU and Redis work
/// spent meanwhile. Dead letters are left for the caller to fill in.
pub async fn measure(
    publisher: &Channel,
    collector: &mut Collector,
    args: &Args,
    base: Instant,
    probes: Probes<'_>,
    make: impl FnMut(u64, u64) -> Outgoing,
) -> Result<PhaseResult> {
    let redis0 = RedisSample::take(probes.rconn).await?;
    let out0 = collector.outputs();
    let cpu0 = Cpu::sample(&probes.workers);
    let published = publish_events(publisher, args.pace(), base, args.events, make).await?;
    let got = collector.collect(MEASURED, args.events, args.stall()).await;
    let cpu1 = Cpu::sample(&probes.workers);
    let outputs = collector.outputs().since(&out0);
    let redis1 = RedisSample::take(probes.rconn).await?;
    Ok(PhaseResult {
        published,
        got,
        outputs,
        cpu: cpu1.since(&cpu0),
        redis: RedisDelta::between(&redis0, &redis1),
        worker_peak_rss_kib: probes.workers.iter().filter_map(|p| peak_rss_kib(*p)).max(),
        dead: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_comes_back_from_a_padded_notification() {
        for to in [None, Some("manager-3"), Some("@gateway")] {
            let text = mark(MEASURED, 42, 1234, to);
            let mut body = serde_json::json!({ "accountId": "a", "chatId": "c", "text": text })
                .to_string()
                .into_bytes();
            body.resize(body.len() + 50, b' ');
            let read = read_mark(&body).expect("marked");
            assert_eq!(
                (read.phase, read.seq, read.sent_us, read.chat.as_str()),
                (MEASURED, 42, 1234, "a c")
            );
            assert_eq!(read.to.as_deref(), to);
        }
        assert!(read_mark(br#"{"text": "hello"}"#).is_none());
    }
}
