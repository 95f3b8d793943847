//! Taking messages as a user's client, a CRM or an operator would: from a
//! user's queue, a queue bound to `P.crm` or `P.outbound`, or `P.dead`.

use std::time::{Duration, Instant};

use lapin::BasicProperties;
use lapin::options::BasicGetOptions;
use lapin::types::AMQPValue;
use serde_json::Value;

use super::{SETTLE, TestApp, timed};

/// How long a queue that just appeared is given to start.
const QUEUE_START: Duration = Duration::from_millis(500);

/// How long to wait for the first messages of a user or of `P.dead`.
const WAIT: Duration = Duration::from_secs(20);

impl TestApp {
    /// Takes messages from `queue` until at least `min` arrived (or `timeout`),
    /// then keeps listening for [`SETTLE`] to catch any extra.
    pub async fn take(&self, queue: &str, min: usize, timeout: Duration) -> Vec<Got> {
        if self.wait_queue(queue).await {
            // A quorum queue exists (a passive declare finds it) a moment
            // before it can serve: a basic.get then fails with INTERNAL_ERROR
            // `noproc`, which closes the test's connection.
            tokio::time::sleep(QUEUE_START).await;
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut quiet_since = Instant::now();
        loop {
            match self.get_one(queue).await {
                Some(delivery) => {
                    got.push(Got::from(delivery));
                    quiet_since = Instant::now();
                }
                None => {
                    let now = Instant::now();
                    if (got.len() >= min && now - quiet_since >= SETTLE) || now >= deadline {
                        return got;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// One message from `queue`, on a connection of its own: a quorum queue
    /// that has only just been declared can answer a basic.get with
    /// INTERNAL_ERROR `noproc`, a hard error that closes the connection; the
    /// get is then made again, a moment later, on a new one.
    async fn get_one(&self, queue: &str) -> Option<lapin::message::Delivery> {
        if queue.starts_with("amq.gen-") {
            // The test's own exclusive queue: only its declaring connection may read it.
            let get = self
                .channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true });
            return timed("basic.get", get).await.unwrap().map(|m| m.delivery);
        }
        for _ in 0..10 {
            let mut slot = self.getter.lock().await;
            if slot.as_ref().is_none_or(|(_, ch)| !ch.status().connected()) {
                let conn = timed(
                    "connecting to RabbitMQ",
                    lapin::Connection::connect(&self.broker, Default::default()),
                )
                .await
                .expect("RabbitMQ answers");
                let channel = timed("channel.open", conn.create_channel()).await.unwrap();
                *slot = Some((conn, channel));
            }
            let channel = slot
                .as_ref()
                .map(|(_, ch)| ch.clone())
                .expect("just opened");
            let get = channel.basic_get(queue.into(), BasicGetOptions { no_ack: true });
            match timed("basic.get", get).await {
                Ok(message) => return message.map(|m| m.delivery),
                Err(e) if is_internal_error(&e) => {
                    *slot = None;
                    drop(slot);
                    tokio::time::sleep(QUEUE_START).await;
                }
                Err(e) => panic!("basic.get on {queue}: {e}"),
            }
        }
        panic!("basic.get on {queue} kept failing with INTERNAL_ERROR");
    }

    /// Notifications of one user.
    pub async fn notes(&self, account: &str, user: &str, min: usize) -> Vec<Value> {
        let queue = self.user_queue(account, user);
        self.take(&queue, min, WAIT)
            .await
            .into_iter()
            .map(|g| g.json)
            .collect()
    }

    pub async fn dead(&self, min: usize) -> Vec<Got> {
        let queue = self.names.dead();
        self.take(&queue, min, WAIT).await
    }
}

/// A message taken from a queue.
#[derive(Debug, Clone)]
pub struct Got {
    pub body: Vec<u8>,
    pub json: Value,
    pub properties: BasicProperties,
    pub routing_key: String,
}

impl From<lapin::message::Delivery> for Got {
    fn from(delivery: lapin::message::Delivery) -> Self {
        Self {
            json: serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
            body: delivery.data,
            properties: delivery.properties,
            routing_key: delivery.routing_key.to_string(),
        }
    }
}

impl Got {
    pub fn header(&self, name: &str) -> Option<String> {
        let headers = self.properties.headers().as_ref()?;
        match headers.inner().get(name)? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.to_string()),
            other => Some(format!("{other:?}")),
        }
    }

    /// The message's `correlation_id`.
    pub fn correlation_id(&self) -> Option<String> {
        self.properties
            .correlation_id()
            .as_ref()
            .map(|c| c.to_string())
    }
}

/// The broker's INTERNAL_ERROR (541), as a queue that is still starting answers.
fn is_internal_error(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e) if e.get_id() == 541)
}
