//! `switchboard dead list|show`: the dead letters of `P.dead`, read without
//! taking any.
//!
//! Reading is `basic.get` without acknowledgement on a channel of its own;
//! when the channel closes, the broker returns every message it handed out to
//! the queue. Nothing is ever acked here, so a crash, a timeout or Ctrl-C in the
//! middle loses nothing either. Only the messages that were in the queue when
//! the reading started are read, so dead letters that arrive meanwhile (even
//! from a replay) cannot make it loop.

use std::time::SystemTime;

use lapin::options::BasicGetOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection};
use serde_json::Value;

use super::{OpsError, close_channel, within};
use crate::ids::Id;
use crate::names::{Names, inbound_key};

/// Why the worker refused the input (`code: why`).
pub const REASON: &str = "x-switchboard-error";
/// The routing key the input was published with.
pub const ROUTING_KEY: &str = "x-switchboard-routing-key";
/// An undelivered output's exchange (its key is in [`ROUTING_KEY`]).
pub const EXCHANGE: &str = "x-switchboard-exchange";
/// When it was dead-lettered (RFC 3339).
pub const DEAD_AT: &str = "x-switchboard-dead-at";

/// One dead letter as it sits in `P.dead`.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// 1-based place in the queue at the time of reading.
    pub position: usize,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
    pub(crate) delivery_tag: u64,
}

impl DeadLetter {
    pub fn header(&self, name: &str) -> Option<String> {
        header(self.properties.headers().as_ref()?, name)
    }

    pub fn reason(&self) -> Option<String> {
        self.header(REASON)
    }

    pub fn routing_key(&self) -> Option<String> {
        self.header(ROUTING_KEY)
    }

    /// For an output the worker could not deliver (its destination kept
    /// refusing), the exchange it was for; `None` for an input.
    pub fn exchange(&self) -> Option<String> {
        self.header(EXCHANGE)
    }

    /// The body as JSON, when it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The event's `accountId`, when the body has one.
    pub fn account(&self) -> Option<String> {
        Some(self.json()?.get("accountId")?.as_str()?.to_owned())
    }

    pub fn event_id(&self) -> Option<String> {
        Some(self.json()?.get("eventId")?.as_str()?.to_owned())
    }

    /// When it died: the worker's header, else the publisher's timestamp.
    pub fn died(&self) -> Option<SystemTime> {
        if let Some(at) = self.header(DEAD_AT)
            && let Ok(at) = chrono::DateTime::parse_from_rfc3339(&at)
        {
            return Some(SystemTime::from(at));
        }
        let secs = (*self.properties.timestamp())?;
        Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }
}

/// Which dead letters a command is about.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only those whose reason starts with this (`invalid_field`, `unknown_user: `…).
    pub reason: Option<String>,
    /// Only those of this account.
    pub account: Option<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.reason.is_none() && self.account.is_none()
    }

    pub fn matches(&self, letter: &DeadLetter) -> bool {
        if let Some(prefix) = &self.reason
            && !letter
                .reason()
                .unwrap_or_default()
                .starts_with(prefix.as_str())
        {
            return false;
        }
        if let Some(account) = &self.account {
            let by_body = letter.account().as_deref() == Some(account.as_str());
            // A body that is not JSON has no account but its routing key.
            let by_key = letter.account().is_none()
                && Id::parse(account.as_str()).is_ok_and(|id| {
                    letter.routing_key().as_deref() == Some(inbound_key(&id).as_str())
                });
            if !by_body && !by_key {
                return false;
            }
        }
        true
    }
}

/// What a reading found.
#[derive(Debug)]
pub struct Peek {
    /// Messages in the queue when reading started.
    pub total: usize,
    /// The ones read that match the filter, in queue order.
    pub letters: Vec<DeadLetter>,
}

/// Reads up to `max` matching dead letters and gives every one back.
pub async fn peek(
    conn: &Connection,
    names: &Names,
    filter: &Filter,
    max: usize,
) -> Result<Peek, OpsError> {
    let channel = within("opening a channel", conn.create_channel()).await?;
    let result = read(&channel, names, filter, max).await;
    // Closing the channel returns every message read to the queue.
    close_channel(&channel).await;
    result
}

async fn read(
    channel: &lapin::Channel,
    names: &Names,
    filter: &Filter,
    max: usize,
) -> Result<Peek, OpsError> {
    let mut reader = Reader::new(names);
    let mut letters = Vec::new();
    while letters.len() < max {
        let Some(letter) = reader.next(channel).await? else {
            break;
        };
        if filter.matches(&letter) {
            letters.push(letter);
        }
    }
    Ok(Peek {
        total: reader.total.unwrap_or(0),
        letters,
    })
}

/// Takes the dead letters one by one (unacked), only those that were in
/// `P.dead` when the first was taken: a letter that dies again while a replay
/// runs goes to the back and is not met twice.
pub(crate) struct Reader {
    queue: String,
    /// How many were there at the first take.
    pub total: Option<usize>,
    /// How many were taken so far.
    pub position: usize,
}

impl Reader {
    pub fn new(names: &Names) -> Self {
        Self {
            queue: names.dead(),
            total: None,
            position: 0,
        }
    }

    /// The next dead letter, or `None` when all that were there are taken.
    pub async fn next(&mut self, channel: &lapin::Channel) -> Result<Option<DeadLetter>, OpsError> {
        if self.total.is_some_and(|t| self.position >= t) {
            return Ok(None);
        }
        let queue = &self.queue;
        let got = within(
            &format!("basic.get on {queue}"),
            channel.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false }),
        )
        .await
        .map_err(|e| missing_queue(e, queue))?;
        let Some(message) = got else {
            return Ok(None);
        };
        self.position += 1;
        self.total.get_or_insert(message.message_count as usize + 1);
        Ok(Some(DeadLetter {
            position: self.position,
            properties: message.delivery.properties.clone(),
            body: message.delivery.data.clone(),
            delivery_tag: message.delivery.delivery_tag,
        }))
    }
}

/// A 404 on `P.dead` means no worker ever ran on the prefix.
pub(crate) fn missing_queue(error: OpsError, queue: &str) -> OpsError {
    match error {
        e if e.is_not_found() => OpsError::NotFound(format!(
            "queue {queue} does not exist: has a worker ever run with this --prefix?"
        )),
        other => other,
    }
}

/// A header's value as text.
pub(crate) fn header(headers: &FieldTable, name: &str) -> Option<String> {
    headers.inner().get(name).map(value_text)
}

pub(crate) fn value_text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::Timestamp(t) => t.to_string(),
        other => format!("{other:?}"),
    }
}
