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
            let get = self
                .channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true });
            match timed("basic.get", get).await.unwrap() {
                Some(message) => {
                    got.push(Got::from(message.delivery));
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
