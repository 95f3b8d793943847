//! The test harness: real workers (the same `run` as the binary) against the
//! real RabbitMQ and Redis, each test on its own random prefix.
#![allow(dead_code)]

pub mod ops;
pub mod proxy;
pub mod redis_server;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{Value, json};
use switchboard::Config;
use switchboard::ids::Id;
use switchboard::names::Names;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const REDIS: &str = "redis://127.0.0.1:6379/0";
pub const TS: &str = "2026-11-25T10:00:00Z";

/// How long to keep listening after the expected messages arrived, to catch extras.
pub const SETTLE: Duration = Duration::from_millis(700);

pub struct TestApp {
    pub prefix: String,
    pub names: Names,
    pub conn: Connection,
    pub channel: Channel,
    pub redis: redis::Client,
    workers: Vec<(CancellationToken, JoinHandle<()>)>,
    extra_queues: Vec<String>,
    partitions: u16,
}

/// The routing key of every event of `account` on `P.inbound`.
pub fn account_key(account: &str) -> String {
    switchboard::names::inbound_key(&Id::parse(account).expect("a valid account id"))
}

/// A fresh event id.
pub fn eid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An event of `kind` for `account` with the given fields and a fresh eventId.
pub fn event(kind: &str, account: &str, fields: Value) -> Value {
    let mut body =
        json!({ "eventId": eid(), "type": kind, "accountId": account, "occurredAt": TS });
    for (k, v) in fields.as_object().expect("fields are an object") {
        body[k] = v.clone();
    }
    body
}

impl TestApp {
    /// Starts `workers` workers on a new prefix and waits until the topology exists.
    pub async fn spawn(workers: usize) -> Self {
        let prefix = format!("sbt-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        Self::spawn_with(workers, &prefix, |_| {}).await
    }

    pub async fn spawn_with(workers: usize, prefix: &str, tune: impl Fn(&mut Config)) -> Self {
        let conn = Connection::connect(AMQP, ConnectionProperties::default())
            .await
            .expect("RabbitMQ at 127.0.0.1:5672");
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut config = Config::with_prefix(prefix);
        tune(&mut config);
        let mut app = TestApp {
            prefix: prefix.to_owned(),
            names: Names::new(prefix),
            conn,
            channel,
            redis: redis::Client::open(REDIS).unwrap(),
            workers: Vec::new(),
            extra_queues: Vec::new(),
            partitions: config.partitions,
        };
        for _ in 0..workers {
            app.start_worker(config.clone()).await;
        }
        app
    }

    /// Starts one more worker and waits until it declared the topology.
    pub async fn start_worker(&mut self, config: Config) {
        let token = CancellationToken::new();
        let handle = tokio::spawn({
            let token = token.clone();
            async move {
                if let Err(e) = switchboard::run(config, token).await {
                    panic!("worker failed: {e}");
                }
            }
        });
        self.workers.push((token, handle));
        // `P.dead` is the last thing a worker declares.
        self.wait_queue(&self.names.dead()).await;
    }

    /// Stops every worker gracefully.
    pub async fn stop_workers(&mut self) {
        for (token, _) in &self.workers {
            token.cancel();
        }
        for (_, handle) in self.workers.drain(..) {
            handle.await.expect("worker task ended cleanly");
        }
    }

    /// Whether a queue exists (checked on a throwaway channel, since a failed
    /// passive declare closes its channel).
    pub async fn queue_exists(&self, queue: &str) -> bool {
        let probe = self.conn.create_channel().await.unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let found = probe
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .is_ok();
        let _ = probe.close(200, "probe".into()).await;
        found
    }

    /// Waits until a queue exists.
    pub async fn wait_queue(&self, queue: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.queue_exists(queue).await {
            assert!(Instant::now() < deadline, "queue {queue} never appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publishes an event to `P.inbound` as a gateway would.
    pub async fn publish(&self, routing_key: &str, body: &Value) {
        self.publish_raw(
            routing_key,
            body.to_string().as_bytes(),
            BasicProperties::default(),
        )
        .await;
    }

    pub async fn publish_raw(&self, routing_key: &str, body: &[u8], props: BasicProperties) {
        let props = props
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        self.channel
            .basic_publish(
                self.names.inbound().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Publishes a chat event with the contract's routing key (its account's).
    pub async fn publish_chat(&self, body: &Value) {
        self.publish_account(body).await;
    }

    /// Publishes an event with the contract's routing key: its `accountId`,
    /// escaped as in AMQP names.
    pub async fn publish_account(&self, body: &Value) {
        self.publish(&account_key(body["accountId"].as_str().unwrap()), body)
            .await;
    }

    /// A queue of the test's own bound to `exchange` with `key` (CRMs and gateways bind theirs).
    pub async fn bind(&mut self, exchange: &str, key: &str) -> String {
        let queue = format!("{}.test.{}", self.prefix, self.extra_queues.len());
        self.channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        self.channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        self.extra_queues.push(queue.clone());
        queue
    }

    pub async fn bind_crm(&mut self) -> String {
        let exchange = self.names.crm();
        self.bind(&exchange, "#").await
    }

    pub async fn bind_outbound(&mut self) -> String {
        let exchange = self.names.outbound();
        self.bind(&exchange, "#").await
    }

    pub fn user_queue(&self, account: &str, user: &str) -> String {
        self.names
            .user_queue(&Id::parse(account).unwrap(), &Id::parse(user).unwrap())
    }

    /// Takes messages from `queue` until at least `min` arrived (or `timeout`),
    /// then keeps listening for [`SETTLE`] to catch any extra.
    pub async fn take(&self, queue: &str, min: usize, timeout: Duration) -> Vec<Got> {
        self.wait_queue(queue).await;
        let mut got = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut quiet_since = Instant::now();
        loop {
            match self
                .channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                Some(message) => {
                    let delivery = message.delivery;
                    got.push(Got {
                        body: delivery.data.clone(),
                        json: serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
                        properties: delivery.properties.clone(),
                        routing_key: delivery.routing_key.to_string(),
                    });
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
        self.take(&queue, min, Duration::from_secs(20))
            .await
            .into_iter()
            .map(|g| g.json)
            .collect()
    }

    pub async fn dead(&self, min: usize) -> Vec<Got> {
        let queue = self.names.dead();
        self.take(&queue, min, Duration::from_secs(20)).await
    }

    /// Waits until `n` account-configuration events of `account` were applied.
    /// (Account and chat events travel on different partitions, so a test must
    /// let the set-up land before the clients write, as a real CRM would.)
    pub async fn wait_config(&self, account: &str, n: u64) {
        let key = format!(
            "{}:{{{}}}:config",
            self.prefix,
            Id::parse(account).unwrap().key_part()
        );
        let mut conn = self.redis.get_multiplexed_async_connection().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let current: Option<u64> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            if current.unwrap_or(0) >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "account {account} set-up not applied ({current:?} of {n})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the worker applied the event (its record exists in Redis);
    /// for events with no visible output, such as `contact.upserted`.
    pub async fn wait_applied(&self, body: &Value) {
        let account = Id::parse(body["accountId"].as_str().unwrap()).unwrap();
        let event = Id::parse(body["eventId"].as_str().unwrap()).unwrap();
        let key = format!(
            "{}:{{{}}}:event:{}",
            self.prefix,
            account.key_part(),
            event.key_part()
        );
        let mut conn = self.redis.get_multiplexed_async_connection().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let exists: bool = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            if exists {
                return;
            }
            assert!(Instant::now() < deadline, "event {event} never applied");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Publishes an account event and waits until it is applied.
    pub async fn apply_account(&self, body: &Value) {
        self.publish_account(body).await;
        self.wait_applied(body).await;
    }

    /// Asserts that `n` new clients of account `acc` under round robin were each
    /// handled exactly once, whatever faults happened meanwhile: one contact and
    /// one deal per client on `crm`, each client given to exactly one of
    /// `managers`, and the round robin even. Repeats after a fault carry the same
    /// ids, so causes are counted, not copies.
    pub async fn assert_each_client_once(&self, crm: &str, n: usize, managers: &[&str]) {
        let crm = self.take(crm, 2 * n, Duration::from_secs(60)).await;
        let mut contacts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in crm.iter().filter(|m| m.json["type"] == "contact.created") {
            let chat = m.json["contactData"][0]["chatId"]
                .as_str()
                .unwrap()
                .to_owned();
            contacts
                .entry(chat)
                .or_default()
                .insert(m.json["contactId"].to_string());
        }
        assert_eq!(contacts.len(), n, "every client got a contact");
        assert!(
            contacts.values().all(|ids| ids.len() == 1),
            "no client got two contacts"
        );
        let deals: BTreeSet<_> = crm
            .iter()
            .filter(|m| m.json["type"] == "deal.created")
            .map(|m| m.json["dealId"].to_string())
            .collect();
        assert_eq!(deals.len(), n, "one deal per client");

        let mut owner: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut per_manager = Vec::new();
        for m in managers {
            let notes = self.notes("acc", m, n / managers.len()).await;
            let causes: BTreeSet<_> = notes
                .iter()
                .map(|n| n["notificationId"].to_string())
                .collect();
            for note in &notes {
                owner
                    .entry(note["chatId"].to_string())
                    .or_default()
                    .insert((*m).to_owned());
            }
            per_manager.push(causes.len());
        }
        assert_eq!(owner.len(), n, "every client reached a manager");
        assert!(
            owner.values().all(|ms| ms.len() == 1),
            "a client was given to two managers"
        );
        assert_eq!(
            per_manager,
            vec![n / managers.len(); managers.len()],
            "the round robin stayed even"
        );
    }

    /// Stops the workers and removes every queue, exchange and key of the prefix.
    pub async fn cleanup(mut self) {
        self.stop_workers().await;
        let channel = self.conn.create_channel().await.unwrap();
        let mut queues = self.extra_queues.clone();
        queues.push(self.names.dead());
        queues.extend((0..self.partitions).map(|n| self.names.inbound_partition(n)));
        let mut conn = self.redis.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        // User queues: every user the worker knew of.
        for key in keys.iter().filter(|k| k.ends_with(":users")) {
            let users: Vec<String> = redis::cmd("HKEYS")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            let escaped = key
                .split('{')
                .nth(1)
                .and_then(|s| s.split('}').next())
                .unwrap_or_default();
            let account = Id::parse(unescape(escaped)).unwrap();
            for user in users {
                queues.push(self.names.user_queue(&account, &Id::parse(user).unwrap()));
            }
        }
        for queue in queues {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in [
            self.names.inbound(),
            self.names.inbound_hash(),
            self.names.notify(),
            self.names.crm(),
            self.names.outbound(),
        ] {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
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

impl Got {
    pub fn header(&self, name: &str) -> Option<String> {
        let headers = self.properties.headers().as_ref()?;
        match headers.inner().get(name)? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.to_string()),
            other => Some(format!("{other:?}")),
        }
    }
}

/// Types of notifications, in order.
pub fn kinds(notes: &[Value]) -> Vec<&str> {
    notes
        .iter()
        .map(|n| n["type"].as_str().unwrap_or("?"))
        .collect()
}

/// A standard account: one WhatsApp channel "wa", the given users (id, role,
/// receivesNewClients), one pipeline "p"/"s1" and, unless `None`, settings
/// with that distribution. Waits until it is applied.
pub async fn setup_account(
    app: &TestApp,
    account: &str,
    users: &[(&str, &str, bool)],
    distribution: Option<&str>,
) {
    app.publish_account(&event(
        "channels.upserted",
        account,
        json!({ "channels": [{ "channelId": "wa", "chatType": "whatsapp", "name": "Support" }] }),
    ))
    .await;
    app.wait_config(account, 1).await;
    let users: Vec<Value> = users
        .iter()
        .map(|(id, role, rnc)| {
            json!({ "userId": id, "name": format!("User {id}"),
                    "access": [{ "channelId": "wa", "role": role, "receivesNewClients": rnc }] })
        })
        .collect();
    app.publish_account(&event("users.upserted", account, json!({ "users": users })))
        .await;
    app.publish_account(&event(
        "pipelines.loaded",
        account,
        json!({ "pipelines": [{ "pipelineId": "p", "name": "Sales", "stages": [{ "stageId": "s1", "name": "New" }, { "stageId": "s2", "name": "Won" }] }] }),
    ))
    .await;
    app.wait_config(account, 3).await;
    if let Some(distribution) = distribution {
        app.publish_account(&event(
            "settings.updated",
            account,
            json!({ "newClients": { "pipelineId": "p", "stageId": "s1", "distribution": distribution },
                    "links": { "deal": "https://crm.example/deals/{dealId}", "newDeal": "https://crm.example/deals/new?contact={contactId}" } }),
        ))
        .await;
        app.wait_config(account, 4).await;
    }
}

/// A client's message on channel "wa".
pub fn inbound(account: &str, chat_id: &str, text: &str) -> Value {
    event(
        "message.inbound",
        account,
        json!({ "messageId": eid(), "channelId": "wa", "chatType": "whatsapp", "chatId": chat_id, "text": text,
                "contact": { "name": format!("Client {chat_id}") } }),
    )
}

/// A user's reply on channel "wa".
pub fn outbound(account: &str, chat_id: &str, user: &str, text: &str) -> Value {
    event(
        "message.outbound",
        account,
        json!({ "messageId": eid(), "channelId": "wa", "chatType": "whatsapp", "chatId": chat_id, "userId": user, "text": text }),
    )
}

/// Reverses `Id::key_part`.
fn unescape(escaped: &str) -> String {
    let bytes = escaped.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&escaped[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Runs a test's scenario under a deadline and catches its panic, so that the
/// test can clean its prefix up before failing: `let r = bounded(..).await;
/// app.cleanup().await; r.unwrap();` (a timeout is a panic too).
pub async fn bounded<T>(
    limit: Duration,
    scenario: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    use futures_util::FutureExt;
    let caught = std::panic::AssertUnwindSafe(tokio::time::timeout(limit, scenario))
        .catch_unwind()
        .await;
    match caught {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(format!("the scenario did not finish within {limit:?}")),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the scenario panicked".into())),
    }
}

/// Deletes queues a test declared itself, each under a timeout.
pub async fn delete_queues(conn: &Connection, queues: &[String]) {
    let Ok(Ok(channel)) = tokio::time::timeout(Duration::from_secs(5), conn.create_channel()).await
    else {
        return;
    };
    for queue in queues {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()),
        )
        .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), channel.close(200, "done".into())).await;
}
