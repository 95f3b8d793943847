//! [`TestApp`]: workers on the test's own prefix, the test's connection to
//! the broker and Redis, and what a gateway, a CRM and a user's client do
//! with them: publish to `P.inbound`, bind queues, take messages.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde_json::Value;
use switchboard::Config;
use switchboard::ids::Id;
use switchboard::names::Names;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{AMQP, Prefix, REDIS, account_key, inbound, timed};

/// How long waits for a queue, a set-up or a message last by default.
pub(super) const WAIT: Duration = Duration::from_secs(20);

/// How many times a gateway publish the broker refuses is made before the test fails.
const PUBLISH_TRIES: usize = 20;

/// How long a worker may take to stop when a test ends by a panic.
const STOP: Duration = Duration::from_secs(15);

/// A worker task and the token that stops it.
type Worker = (CancellationToken, JoinHandle<()>);

pub struct TestApp {
    pub prefix: String,
    pub names: Names,
    pub conn: Connection,
    pub channel: Channel,
    pub redis: redis::Client,
    /// When set, [`TestApp::redis_cmd`] goes through this cluster instead of
    /// `redis` (the harness's waits then reach every account's master).
    redis_cluster: Option<redis::cluster::ClusterClient>,
    /// The broker node the test itself talks to (publishes, takes, cleans up).
    pub(super) broker: String,
    config: Config,
    /// Behind a lock (never held across an await), so that workers can join
    /// while the test publishes.
    workers: Mutex<Vec<Worker>>,
    /// Queues bound so far.
    bound: usize,
    /// The connection messages are taken on (see `messages.rs`), opened again
    /// when the broker closes it.
    pub(super) getter: tokio::sync::Mutex<Option<(Connection, Channel)>>,
    /// Declared last, dropped last: removes the prefix after the workers stopped.
    guard: Prefix,
}

/// The in-process workers' logs on stderr, when `SWITCHBOARD_TEST_LOG` gives
/// a filter (e.g. `switchboard=debug`): off by default, to keep test output
/// readable; for a failure to explain itself.
fn worker_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if let Ok(filter) = std::env::var("SWITCHBOARD_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

impl TestApp {
    /// Starts `workers` workers on a new prefix and waits until the topology exists.
    pub async fn spawn(workers: usize) -> Self {
        Self::spawn_with(workers, |_| {}).await
    }

    /// As [`TestApp::spawn`], with the workers' configuration changed by `tune`.
    pub async fn spawn_with(workers: usize, tune: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_on(AMQP, workers, tune).await
    }

    /// As [`TestApp::spawn_with`], the test itself talking to the broker at
    /// `broker` (a node of a cluster the workers reach through their own list).
    pub async fn spawn_on(broker: &str, workers: usize, tune: impl FnOnce(&mut Config)) -> Self {
        worker_logs();
        let mut guard = Prefix::random();
        guard.use_amqp(broker);
        let mut config = Config::with_prefix(&guard.name);
        tune(&mut config);
        let conn = timed(
            &format!("connecting to RabbitMQ at {broker}"),
            Connection::connect(broker, ConnectionProperties::default()),
        )
        .await
        .expect("RabbitMQ answers");
        let channel = timed("channel.open", conn.create_channel()).await.unwrap();
        timed(
            "confirm.select",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await
        .unwrap();
        let mut app = TestApp {
            prefix: guard.name.clone(),
            names: Names::new(&guard.name),
            conn,
            channel,
            redis: redis::Client::open(REDIS).unwrap(),
            redis_cluster: None,
            broker: broker.to_owned(),
            config: config.clone(),
            workers: Mutex::default(),
            bound: 0,
            getter: tokio::sync::Mutex::default(),
            guard,
        };
        // A cluster's seed list is no one server: such a test points the harness
        // at the node it needs itself.
        if config.redis_mode == switchboard::RedisMode::Standalone {
            app.use_redis(&config.redis_url);
        }
        for _ in 0..workers {
            app.start_worker(config.clone()).await;
        }
        app
    }

    /// The workers' configuration: for starting more of them.
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// Reads and cleans up keys in this Redis (a test's own server).
    pub fn use_redis(&mut self, url: &str) {
        self.redis = redis::Client::open(url).unwrap();
        self.guard.use_redis(url);
    }

    /// Reads keys through the cluster of `seeds` (keys are still cleaned up
    /// in the server of [`TestApp::use_redis`]).
    pub fn use_redis_cluster(&mut self, seeds: &str) {
        let seeds: Vec<&str> = seeds.split(',').collect();
        self.redis_cluster = Some(redis::cluster::ClusterClient::new(seeds).unwrap());
    }

    /// A queue the test declared itself, to be removed with the prefix.
    pub fn track_queue(&mut self, queue: &str) {
        self.guard.track(queue);
    }

    /// Starts one more worker and waits until it declared the topology.
    pub async fn start_worker(&self, config: Config) {
        self.launch_worker(config);
        // `P.dead` is the last thing a worker declares.
        self.wait_queue(&self.names.dead()).await;
    }

    /// Starts one more worker, without waiting for anything.
    pub fn launch_worker(&self, config: Config) {
        let token = CancellationToken::new();
        let handle = tokio::spawn({
            let token = token.clone();
            async move {
                if let Err(e) = switchboard::run(config, token).await {
                    panic!("worker failed: {e}");
                }
            }
        });
        self.workers.lock().unwrap().push((token, handle));
    }

    /// Stops every worker gracefully; each must end cleanly.
    pub async fn stop_workers(&self) {
        let workers: Vec<Worker> = self.workers.lock().unwrap().drain(..).collect();
        for (token, _) in &workers {
            token.cancel();
        }
        for (_, handle) in workers {
            let ended = tokio::time::timeout(STOP + Duration::from_secs(15), handle).await;
            ended
                .expect("the worker stopped in time")
                .expect("worker task ended cleanly");
        }
    }

    /// Stops the workers (each must end cleanly) and removes every queue,
    /// exchange and key of the prefix. A test that panics before is cleaned
    /// up all the same, when the app is dropped.
    pub async fn cleanup(self) {
        self.stop_workers().await;
        if let Some((getter, _)) = self.getter.lock().await.take() {
            let _ = timed("connection.close", getter.close(200, "done".into())).await;
        }
        // Its exclusive queues (reply queues) go with it.
        let _ = timed("connection.close", self.conn.close(200, "done".into())).await;
    }

    /// Runs a Redis command on a fresh connection, under a timeout.
    pub async fn redis_cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        if let Some(cluster) = &self.redis_cluster {
            let mut conn = timed("connecting to the cluster", cluster.get_async_connection())
                .await
                .expect("the cluster answers");
            return timed("a Redis command", cmd.query_async(&mut conn))
                .await
                .expect("the Redis command succeeds");
        }
        let mut conn = timed(
            "connecting to Redis",
            self.redis.get_multiplexed_async_connection(),
        )
        .await
        .expect("Redis answers");
        timed("a Redis command", cmd.query_async(&mut conn))
            .await
            .expect("the Redis command succeeds")
    }

    /// Publishes an event with the contract's routing key: its `accountId`,
    /// escaped as in AMQP names.
    pub async fn publish_event(&self, body: &Value) {
        let key = account_key(body["accountId"].as_str().unwrap());
        self.publish_raw(
            &key,
            body.to_string().as_bytes(),
            BasicProperties::default(),
        )
        .await;
    }

    /// Publishes `n` first messages of one client (`msg 0` .. `msg n-1`) all at
    /// once, as a gateway with many connections would: they race for the
    /// client's contact, deal and manager.
    pub async fn publish_burst(&self, account: &str, chat_id: &str, n: usize) {
        let burst = (0..n).map(|i| async move {
            self.publish_event(&inbound(account, chat_id, &format!("msg {i}")))
                .await
        });
        futures_util::future::join_all(burst).await;
    }

    /// Publishes bytes to `P.inbound` as a gateway would, and waits for the
    /// confirm; a message the broker refuses (a nack, e.g. from a quorum queue
    /// electing a leader after a node died) is published again, as a gateway
    /// must, a bounded number of times.
    pub async fn publish_raw(&self, routing_key: &str, body: &[u8], props: BasicProperties) {
        let props = props
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        for _ in 0..PUBLISH_TRIES {
            let publish = async {
                self.channel
                    .basic_publish(
                        self.names.inbound().into(),
                        routing_key.into(),
                        BasicPublishOptions::default(),
                        body,
                        props.clone(),
                    )
                    .await?
                    .await
            };
            match timed("basic.publish to P.inbound", publish).await.unwrap() {
                Confirmation::Nack(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                _ => return,
            }
        }
        panic!("the broker refused a publish to P.inbound {PUBLISH_TRIES} times");
    }

    /// Publishes an account event and waits until it is applied.
    pub async fn apply_account(&self, body: &Value) {
        self.publish_event(body).await;
        self.wait_applied(body).await;
    }

    /// A queue of the test's own bound to `exchange` with `key` (CRMs and gateways bind theirs).
    pub async fn bind(&mut self, exchange: &str, key: &str) -> String {
        let queue = format!("{}.test.{}", self.prefix, self.bound);
        self.bound += 1;
        self.track_queue(&queue);
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let declare =
            self.channel
                .queue_declare(queue.as_str().into(), durable, FieldTable::default());
        timed("queue.declare", declare).await.unwrap();
        let bind = self.channel.queue_bind(
            queue.as_str().into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        );
        timed("queue.bind", bind).await.unwrap();
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

    /// Waits until `n` account-configuration events of `account` were applied.
    pub async fn wait_config(&self, account: &str, n: u64) {
        let key = format!(
            "{}:{{{}}}:config",
            self.prefix,
            Id::parse(account).unwrap().key_part()
        );
        self.wait_redis(
            &format!("account {account} set-up ({n} events)"),
            async || {
                let current: Option<u64> = self.redis_cmd(redis::cmd("GET").arg(&key)).await;
                current.unwrap_or(0) >= n
            },
        )
        .await;
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
        self.wait_redis(&format!("event {event} applied"), async || {
            self.redis_cmd::<bool>(redis::cmd("EXISTS").arg(&key)).await
        })
        .await;
    }

    async fn wait_redis(&self, what: &str, mut done: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done().await {
            assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestApp {
    /// A test that did not reach [`TestApp::cleanup`] (it panicked): its
    /// workers are stopped (aborted after [`STOP`]) before the prefix guard,
    /// dropped next, removes everything they declared.
    fn drop(&mut self) {
        let workers = self
            .workers
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (token, _) in workers.iter() {
            token.cancel();
        }
        let deadline = Instant::now() + STOP;
        for (_, handle) in workers.iter() {
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            handle.abort();
        }
        for (_, handle) in workers.iter() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
