//! Publishing with confirms: a batch is handed to the channel at once, in
//! order ([`Publisher::send`]), and counts as done only when the broker
//! confirmed every message of it ([`Unconfirmed::confirmed`]). One channel
//! carries every publish of a session (until a nack renews it, see
//! [`Publisher`]), so batches reach the broker in the order they were sent.
//!
//! Suitcase replies are the exception. They go to a queue the requester owns
//! (server-named or direct reply-to), published `mandatory`: a reply the broker
//! refuses (a full queue with `x-overflow: reject-publish`) or cannot route
//! (the requester is gone) is dropped with a warning and counted, never
//! retried, since no retry can change it and the requester may simply ask again.
//!
//! A destination that keeps refusing (see [`super::refusing`]) gets its
//! messages put on `P.dead` as `undelivered` instead, so that one full queue
//! does not hold up the events that tell its user.
//!
//! Every publish on a channel of a [`Publisher`] starts under its
//! `numbering` lock ([`Numbered`]). lapin numbers a publish for its confirm
//! (`register_pending`) and then queues its frames, in the same poll but not
//! under one lock: two tasks publishing on one channel from two threads could
//! be numbered in one order and reach the broker in the other. The broker
//! numbers messages as they arrive, so each confirm then went to the other
//! message: a refused notification counted as confirmed and was lost (seen
//! with the worker on several threads, `--threads` or in-process under a
//! multi-threaded runtime, whenever the broker refused publishes).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::future::try_join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, PublisherConfirm};
use tracing::warn;

use super::refusing::{Refusing, Route};
use super::user_queues::UserQueues;
use crate::clip::{MAX_REASON_BYTES, MAX_SHORT_BYTES, clip};
use crate::config::UserQueueType;
use crate::ids::Id;
use crate::names::Names;
use crate::ops::dead::{DEAD_AT, EXCHANGE, REASON, ROUTING_KEY};
use crate::output::{Destination, Message, Outputs};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The channel or connection failed: the batch may be partly published; retry it whole.
    #[error("publish failed: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker refused a message.
    #[error("the broker refused a message to {0}")]
    Nacked(String),
    /// No confirm in time: the channel is stuck; only a new connection helps.
    #[error("no publisher confirm within {0:?}")]
    ConfirmTimeout(std::time::Duration),
}

/// How long opening a fresh publishing channel may take.
const RENEW_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a confirm may take before the channel counts as stuck.
const CONFIRM_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the broker did with one message.
enum Delivery {
    Confirmed,
    /// Nacked: the broker would not take it (e.g. a full queue that rejects publishes).
    Refused,
}

/// A confirm-mode channel with the exchange names, plus the channels that
/// declare user queues.
///
/// A refused (nacked) message gets the channel replaced by a fresh one before
/// the event is retried: RabbitMQ 3.10 lets a channel whose first publish to
/// a quorum queue came during a leader election refuse every later publish to
/// that queue, for as long as the channel lives, though the queue has a new
/// leader (seen when a cluster node dies; `tests/api/rabbit_cluster.rs`).
#[derive(Clone)]
pub struct Publisher {
    /// Shared as an `Arc`: a send takes the channel in use, and cloning a
    /// lapin `Channel` clones a dozen `Arc`s of its own.
    channel: Arc<std::sync::RwLock<Arc<Channel>>>,
    connection: Arc<Connection>,
    /// Held while a publish is numbered and queued (see the module's docs).
    numbering: Arc<Mutex<()>>,
    /// Held while the channel is renewed (see [`Publisher::renew`]).
    renewing: Arc<tokio::sync::Mutex<()>>,
    names: Names,
    user_queues: UserQueues,
    dropped_replies: Arc<AtomicU64>,
    /// Destinations that keep refusing messages (see [`super::refusing`]).
    refusing: Arc<Refusing>,
}

impl Publisher {
    pub async fn open(connection: &Arc<Connection>, names: Names) -> Result<Self, lapin::Error> {
        let channel = confirm_channel(connection).await?;
        Ok(Self {
            channel: Arc::new(std::sync::RwLock::new(Arc::new(channel))),
            connection: connection.clone(),
            numbering: Arc::default(),
            renewing: Arc::default(),
            user_queues: UserQueues::new(connection.clone(), names.clone()),
            names,
            dropped_replies: Arc::default(),
            refusing: Arc::default(),
        })
    }

    /// The same publisher, declaring user queues of type `kind`.
    pub fn with_user_queue_type(self, kind: UserQueueType) -> Self {
        Self {
            user_queues: self.user_queues.of_type(kind),
            ..self
        }
    }

    /// Declares the notification queues of `users` (see [`UserQueues::declare_all`]).
    pub async fn declare_user_queues(
        &self,
        account: &Id,
        users: &[Id],
    ) -> Result<(), lapin::Error> {
        self.user_queues.declare_all(account, users).await
    }

    /// Suitcase replies dropped since this publisher opened (refused or unroutable).
    /// Closes the publishing and declaring channels (a clean shutdown closes
    /// every channel before its connection).
    pub async fn close(&self) {
        self.user_queues.close().await;
        close(&self.channel()).await;
    }

    pub fn dropped_replies(&self) -> u64 {
        self.dropped_replies.load(Ordering::Relaxed)
    }

    /// The publishing channel in use now.
    pub fn channel(&self) -> Arc<Channel> {
        self.channel
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces `refused`, if it is still the publishing channel, by a fresh
    /// one; when none can be opened the old one stays (the retry will tell).
    ///
    /// The old channel is not closed at once: every other message already on
    /// it gets the broker's own answer first (it drains, see [`retire`]).
    /// Closing it at once failed all of them, so a queue that kept refusing
    /// made every event in flight on the worker fail and send again, whatever
    /// its account. Renewals are one at a time, and a refusal on a channel
    /// that was already replaced renews nothing.
    async fn renew(&self, refused: &Arc<Channel>) {
        let _one_at_a_time = self.renewing.lock().await;
        if !Arc::ptr_eq(&self.channel(), refused) {
            return;
        }
        let Ok(Ok(fresh)) =
            tokio::time::timeout(RENEW_WAIT, confirm_channel(&self.connection)).await
        else {
            return;
        };
        let fresh = Arc::new(fresh);
        let old = std::mem::replace(
            &mut *self.channel.write().unwrap_or_else(PoisonError::into_inner),
            fresh.clone(),
        );
        warn!(
            old = old.id(),
            new = fresh.id(),
            "The broker refused a message; publishing on a fresh channel."
        );
        tokio::spawn(retire(old));
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Hands every message of `outputs` (of `account`) to the channel, in
    /// order, and returns once all are written: a later send on this
    /// publisher goes out after them. Their confirms are awaited with
    /// [`Unconfirmed::confirmed`].
    pub async fn send(
        &self,
        account: &Id,
        outputs: &Outputs,
    ) -> Result<Unconfirmed<'_>, PublishError> {
        let channel = self.channel();
        let messages = outputs.messages();
        // Only while some destination refuses: where each message went.
        let now = self.refusing.any().then(std::time::Instant::now);
        let mut routes = Vec::new();
        // Each publish puts its frames in the channel's queue at its first
        // poll, and `try_join_all` polls them in order.
        let writes = messages.iter().map(|message| {
            let (mut exchange, mut key) = self.names.destination(account, &message.to);
            let mut props = props_of(message);
            let reply = matches!(message.to, Destination::ReplyTo(_));
            if let Some(now) = now {
                let route = if reply {
                    Route::Send
                } else {
                    self.refusing.route(&exchange, &key, now)
                };
                if let Route::Divert(refusing_for) = route {
                    props = undelivered(props, &exchange, &key, refusing_for);
                    exchange = String::new();
                    key = self.names.dead();
                }
                routes.push(route);
            }
            self.write(
                &channel,
                exchange,
                key,
                message.body.as_bytes(),
                props,
                reply,
            )
        });
        let confirms = tokio::time::timeout(CONFIRM_WAIT, try_join_all(writes))
            .await
            .map_err(|_| PublishError::ConfirmTimeout(CONFIRM_WAIT))??;
        Ok(Unconfirmed {
            publisher: self,
            channel,
            account: account.clone(),
            messages,
            routes,
            confirms,
        })
    }

    /// Puts an input the worker cannot accept on `P.dead` as it came: the
    /// same body and every AMQP property (reply_to, correlation_id, message_id,
    /// headers, ...), so that an operator can replay it exactly, with the
    /// worker's headers added ([`mark_dead`]).
    pub async fn dead_letter(
        &self,
        body: &[u8],
        original: &BasicProperties,
        routing_key: &str,
        reason: &str,
    ) -> Result<(), PublishError> {
        let mut headers = original.headers().clone().unwrap_or_default();
        if headers.contains_key(EXCHANGE) {
            // Only the worker says where an undelivered output was going: an
            // input's own header would make a replay send it there.
            let mut kept = headers.inner().clone();
            kept.remove(EXCHANGE);
            headers = kept.into();
        }
        mark_dead(&mut headers, reason, routing_key);
        let mut props = original.clone().with_headers(headers);
        if original.delivery_mode().is_none() {
            props = props.with_delivery_mode(2);
        }
        let channel = self.channel();
        match self
            .confirmed(&channel, "", &self.names.dead(), body, props, false)
            .await?
        {
            Delivery::Confirmed => Ok(()),
            Delivery::Refused => {
                self.renew(&channel).await;
                Err(PublishError::Nacked(self.names.dead()))
            }
        }
    }

    /// Publishes one message and waits for its confirm, each step at most
    /// [`CONFIRM_WAIT`] (as [`Publisher::send`] bounds its writes).
    async fn confirmed(
        &self,
        channel: &Channel,
        exchange: &str,
        key: &str,
        body: &[u8],
        props: BasicProperties,
        mandatory: bool,
    ) -> Result<Delivery, PublishError> {
        let write = self.write(channel, exchange.into(), key.into(), body, props, mandatory);
        let confirm = tokio::time::timeout(CONFIRM_WAIT, write)
            .await
            .map_err(|_| PublishError::ConfirmTimeout(CONFIRM_WAIT))??;
        self.delivery(confirm).await
    }

    /// What the broker answered to one message, waiting at most [`CONFIRM_WAIT`].
    ///
    /// A message the broker returned (a mandatory suitcase reply no queue
    /// took) is counted here as a dropped reply, whichever confirm lapin hands
    /// it with: lapin gives a returned message to the next confirm it
    /// completes, which may be another message's (one `basic.ack` with
    /// `multiple` completes several, in no set order). The message the
    /// confirm belongs to is judged by the ack or nack alone, so a
    /// notification is never failed by a reply's return.
    async fn delivery(&self, confirm: PublisherConfirm) -> Result<Delivery, PublishError> {
        let confirm = tokio::time::timeout(CONFIRM_WAIT, confirm)
            .await
            .map_err(|_| PublishError::ConfirmTimeout(CONFIRM_WAIT))??;
        let (delivery, returned) = match confirm {
            Confirmation::Ack(returned) => (Delivery::Confirmed, returned),
            Confirmation::Nack(returned) => (Delivery::Refused, returned),
            Confirmation::NotRequested => (Delivery::Confirmed, None),
        };
        if let Some(returned) = returned {
            self.count_dropped_reply(returned.delivery.routing_key.as_str(), "unroutable");
        }
        Ok(delivery)
    }

    /// Hands one message to `channel`, numbered under the lock; returns once
    /// it is written.
    async fn write(
        &self,
        channel: &Channel,
        exchange: String,
        key: String,
        body: &[u8],
        props: BasicProperties,
        mandatory: bool,
    ) -> Result<PublisherConfirm, PublishError> {
        let options = BasicPublishOptions {
            mandatory,
            ..BasicPublishOptions::default()
        };
        let publish = channel.basic_publish(exchange.into(), key.into(), options, body, props);
        Ok(Numbered::new(&self.numbering, publish).await?)
    }
}

pin_project_lite::pin_project! {
    /// A future whose first poll runs under `lock`. lapin's `basic_publish`
    /// numbers the message for its confirm and queues its frames in its first
    /// poll, so under one lock per channel messages are numbered in the order
    /// they go out, whichever threads publish.
    struct Numbered<'l, F> {
        lock: &'l Mutex<()>,
        started: bool,
        #[pin]
        inner: F,
    }
}

impl<'l, F> Numbered<'l, F> {
    fn new(lock: &'l Mutex<()>, inner: F) -> Self {
        Self {
            lock,
            started: false,
            inner,
        }
    }
}

impl<F: Future> Future for Numbered<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if *this.started {
            return this.inner.poll(cx);
        }
        *this.started = true;
        let _numbering = this.lock.lock().unwrap_or_else(PoisonError::into_inner);
        this.inner.poll(cx)
    }
}

/// The messages of one [`Publisher::send`], on the channel in order, their
/// confirms still to come.
#[must_use = "a batch counts as published only once confirmed"]
pub struct Unconfirmed<'a> {
    publisher: &'a Publisher,
    /// The channel they went on: renewed if the broker refuses one of them.
    channel: Arc<Channel>,
    account: Id,
    messages: Vec<Message>,
    /// Where each message went while a destination refused (empty when none
    /// did): to its destination, as a probe of it, or to `P.dead`.
    routes: Vec<Route>,
    confirms: Vec<PublisherConfirm>,
}

impl std::fmt::Debug for Unconfirmed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unconfirmed({} messages)", self.messages.len())
    }
}

impl Unconfirmed<'_> {
    /// Waits until the broker confirmed every message (a suitcase reply the
    /// broker refuses or cannot route counts as done; so does a message to a
    /// refusing destination once `P.dead` took it).
    pub async fn confirmed(self) -> Result<(), PublishError> {
        let Unconfirmed {
            publisher,
            channel,
            account,
            messages,
            routes,
            confirms,
        } = self;
        let refusing = &publisher.refusing;
        let route = |i: usize| routes.get(i).copied().unwrap_or(Route::Send);
        let answers =
            confirms
                .into_iter()
                .zip(&messages)
                .enumerate()
                .map(|(i, (confirm, message))| {
                    let account = &account;
                    let channel = &channel;
                    let route = route(i);
                    let diverted = matches!(route, Route::Divert(_));
                    let probe = route == Route::Probe;
                    // Ok(whether it counts as published to its destination).
                    async move {
                        let delivery = publisher.delivery(confirm).await?;
                        match (delivery, &message.to) {
                            (Delivery::Confirmed, _) if diverted => {
                                crate::monitor::counters::undelivered(message.to.label());
                                Ok(false)
                            }
                            (Delivery::Refused, _) if diverted => {
                                Err(PublishError::Nacked(publisher.names.dead()))
                            }
                            (Delivery::Confirmed, Destination::ReplyTo(_)) => Ok(true),
                            (Delivery::Confirmed, to) => {
                                if refusing.any() {
                                    let (exchange, key) = publisher.names.destination(account, to);
                                    refusing.accepted(&exchange, &key, std::time::Instant::now());
                                }
                                Ok(true)
                            }
                            (Delivery::Refused, Destination::ReplyTo(queue)) => {
                                publisher.count_dropped_reply(queue, "refused");
                                Ok(true)
                            }
                            (Delivery::Refused, to) => {
                                let (exchange, key) = publisher.names.destination(account, to);
                                let now = std::time::Instant::now();
                                match refusing.refused(&exchange, &key, now) {
                                    // A probe the destination refused goes where
                                    // the messages around it went, now: its event
                                    // does not pay a retry for the probe.
                                    Some(refusing_for) if probe => {
                                        publisher.renew(channel).await;
                                        publisher
                                            .divert(message, &exchange, &key, refusing_for)
                                            .await?;
                                        Ok(false)
                                    }
                                    _ => Err(PublishError::Nacked(format!("{exchange:?} {key:?}"))),
                                }
                            }
                        }
                    }
                });
        let published = match try_join_all(answers).await {
            Ok(published) => published,
            Err(error) => {
                if matches!(error, PublishError::Nacked(_)) {
                    publisher.renew(&channel).await;
                }
                return Err(error);
            }
        };
        for (message, published) in messages.iter().zip(published) {
            if published {
                crate::monitor::counters::published(message.to.label(), 1);
            }
        }
        Ok(())
    }
}

impl Publisher {
    /// Puts `message`, whose destination (`exchange`, `key`) has refused every
    /// message for `refusing_for`, on `P.dead` as `undelivered`, and waits for
    /// the broker to take it there.
    async fn divert(
        &self,
        message: &Message,
        exchange: &str,
        key: &str,
        refusing_for: std::time::Duration,
    ) -> Result<(), PublishError> {
        let props = undelivered(props_of(message), exchange, key, refusing_for);
        let channel = self.channel();
        let dead = self.names.dead();
        let body = message.body.as_bytes();
        match self
            .confirmed(&channel, "", &dead, body, props, false)
            .await?
        {
            Delivery::Confirmed => {
                crate::monitor::counters::undelivered(message.to.label());
                Ok(())
            }
            Delivery::Refused => Err(PublishError::Nacked(dead)),
        }
    }

    /// Counts and reports a suitcase reply to `queue` the broker refused or
    /// could not route (`why`).
    fn count_dropped_reply(&self, queue: &str, why: &'static str) {
        let dropped = self.dropped_replies.fetch_add(1, Ordering::Relaxed) + 1;
        crate::monitor::counters::dropped_reply();
        warn!(reply_to = %clip(queue, MAX_SHORT_BYTES), why, dropped_total = dropped, "Suitcase reply dropped.");
    }
}

/// `props` of a message whose destination (`exchange`, `key`) has refused
/// every message for `refusing_for`, as it goes to `P.dead`: the reason
/// (`undelivered: ...`), where it was going and when it died.
fn undelivered(
    props: BasicProperties,
    exchange: &str,
    key: &str,
    refusing_for: std::time::Duration,
) -> BasicProperties {
    let mut headers = lapin::types::FieldTable::default();
    let reason = format!(
        "undelivered: {exchange} {} refused every message for {} s",
        clip(key, MAX_SHORT_BYTES),
        refusing_for.as_secs()
    );
    mark_dead(&mut headers, &reason, key);
    headers.insert(
        EXCHANGE.into(),
        AMQPValue::LongString(LongString::from(exchange)),
    );
    props.with_headers(headers)
}

/// The headers every dead letter the worker writes carries: the reason
/// (bounded, so the dead letter always fits in a frame), the routing key
/// and when it died (for `switchboard dead list`, its age).
fn mark_dead(headers: &mut lapin::types::FieldTable, reason: &str, routing_key: &str) {
    let text = |s: String| AMQPValue::LongString(LongString::from(s));
    headers.insert(REASON.into(), text(clip(reason, MAX_REASON_BYTES)));
    headers.insert(ROUTING_KEY.into(), text(clip(routing_key, MAX_SHORT_BYTES)));
    let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    headers.insert(
        DEAD_AT.into(),
        text(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
}

/// The properties `message` is published with.
fn props_of(message: &Message) -> BasicProperties {
    let props = json_props();
    match &message.correlation_id {
        Some(correlation_id) => {
            props.with_correlation_id(ShortString::from(correlation_id.as_str()))
        }
        None => props,
    }
}

fn json_props() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_app_id("switchboard".into())
}

/// A channel in confirm mode.
async fn confirm_channel(connection: &Connection) -> Result<Channel, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// Closes a replaced publishing channel once nothing holds it any more: every
/// send and batch awaiting confirms holds its channel, and a replaced channel
/// gets no new ones, so then the broker has answered every message on it.
/// Waits at most [`CONFIRM_WAIT`] (as long as any confirm may take).
async fn retire(channel: Arc<Channel>) {
    let deadline = tokio::time::Instant::now() + CONFIRM_WAIT;
    while Arc::strong_count(&channel) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    close(&channel).await;
}

/// Closes a channel if it is open, waiting at most 5 s.
async fn close(channel: &Channel) {
    if channel.status().connected() {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            channel.close(200, "closing".into()),
        )
        .await;
    }
}
