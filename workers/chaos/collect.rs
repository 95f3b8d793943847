//! The client side, read once the faults are over: every user's queue, the
//! run's own queues bound to `P.crm` and `P.outbound`, and `P.dead`. Messages
//! stay in those durable queues through the faults, so they are read at the
//! end, until every expected notification, CRM event and dead letter came
//! (and a short while more, for extras), or nothing came for a while.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::publish::within;

#[derive(Debug, Clone)]
pub enum Source {
    User { account: String, user: String },
    Crm,
    Outbound,
    Dead,
}

#[derive(Debug, Default)]
pub struct Received {
    /// (account, user, notification, redelivered to the run's reader)
    pub notes: Vec<(String, String, Value, bool)>,
    pub crm: Vec<Value>,
    pub sends: Vec<Value>,
    /// Dead letters: body and `x-switchboard-error`.
    pub dead: Vec<(Vec<u8>, String)>,
    pub stalled: bool,
}

/// Declares a durable quorum queue bound to `exchange` with `#`.
pub async fn bind_queue(channel: &Channel, queue: &str, exchange: &str) -> Result<()> {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    within(
        "declaring a queue",
        channel.queue_declare(queue.into(), durable, args),
    )
    .await?;
    let bind = channel.queue_bind(
        queue.into(),
        exchange.into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    );
    within("binding a queue", bind).await
}

enum Got {
    Message(usize, Vec<u8>, bool, String),
    Broken(String),
}

/// Reads `queues` until the wanted numbers of distinct notifications, CRM
/// events and dead letters came, or nothing came for `stall`, or `deadline`.
pub async fn collect(
    conn: &Connection,
    queues: &[(String, Source)],
    want: (usize, usize, usize),
    stall: Duration,
    deadline: Instant,
) -> Result<Received> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (i, (queue, _)) in queues.iter().enumerate() {
        let channel = within("opening a channel", conn.create_channel()).await?;
        let options = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let mut consumer = within(
            "basic.consume",
            channel.basic_consume(
                queue.as_str().into(),
                "".into(),
                options,
                FieldTable::default(),
            ),
        )
        .await?;
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(delivery) = consumer.next().await {
                let got = match delivery {
                    Ok(d) => Got::Message(
                        i,
                        d.data.clone(),
                        d.redelivered,
                        header(&d.properties, "x-switchboard-error"),
                    ),
                    Err(e) => Got::Broken(e.to_string()),
                };
                if tx.send(got).is_err() {
                    return;
                }
            }
            let _ = channel;
        }));
    }
    drop(tx);
    let mut r = Received::default();
    let (mut notes, mut crm, mut dead) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut complete_at: Option<Instant> = None;
    loop {
        let wait = match complete_at {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => stall.min(deadline.saturating_duration_since(Instant::now())),
        };
        let got = match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(got)) => got,
            Ok(None) => break,
            Err(_) => {
                r.stalled = complete_at.is_none();
                break;
            }
        };
        let (i, body, redelivered, reason) = match got {
            Got::Message(i, body, redelivered, reason) => (i, body, redelivered, reason),
            Got::Broken(e) => anyhow::bail!("the reader's connection broke: {e}"),
        };
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match &queues[i].1 {
            Source::User { account, user } => {
                notes.insert(json["notificationId"].to_string());
                r.notes
                    .push((account.clone(), user.clone(), json, redelivered));
            }
            Source::Crm => {
                crm.insert(json["eventId"].to_string());
                r.crm.push(json);
            }
            Source::Outbound => r.sends.push(json),
            Source::Dead => {
                dead.insert(body.clone());
                r.dead.push((body, reason));
            }
        }
        if complete_at.is_none()
            && notes.len() >= want.0
            && crm.len() >= want.1
            && dead.len() >= want.2
        {
            complete_at = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    for task in tasks {
        task.abort();
    }
    Ok(r)
}

fn header(props: &lapin::BasicProperties, name: &str) -> String {
    let value = props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned());
    match value {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
