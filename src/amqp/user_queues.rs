//! Users' notification queues `P.user.{accountId}.{userId}`, declared as soon
//! as a user becomes known so nothing sent to him is lost before his client
//! first connects.
//!
//! The worker declares them durable, as quorum queues or, with
//! `--user-queue-type classic`, classic ones. But a client may have declared
//! his queue first, with other arguments (another type, a length limit): the
//! broker then answers 406 PRECONDITION_FAILED and closes the channel. That is
//! the client's choice, not a fault, so the worker uses the queue as it is: it
//! checks that it exists (passive declare), binds it and delivers to it, with
//! one warning. Declaring happens on channels of their own, so a refused
//! declare never closes the channel that publishes.
//!
//! A `users.upserted` may bring thousands of users. Their queues are declared
//! [`DECLARE_CHANNELS`] at a time, on a small pool of channels shared by the
//! whole worker and handed out first come, first served: another account's
//! declare waits for a few declares, not for a whole large event.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ErrorKind};
use tokio::sync::Semaphore;
use tracing::warn;

use crate::config::UserQueueType;
use crate::ids::Id;
use crate::names::{self, Names};

/// How long one declare, bind or channel opening may take.
const DECLARE_WAIT: Duration = Duration::from_secs(10);

/// Declares running at once in a worker, each on a channel of the pool; also
/// the most one event runs at once.
pub const DECLARE_CHANNELS: usize = 8;

/// Declares user queues on a pool of channels; a channel the broker closed
/// is replaced by a fresh one.
#[derive(Clone)]
pub struct UserQueues {
    conn: Arc<Connection>,
    names: Names,
    kind: UserQueueType,
    /// One permit per channel of the pool: a declare holds one while it runs.
    turns: Arc<Semaphore>,
    /// Open channels not in use (at most [`DECLARE_CHANNELS`]).
    idle: Arc<std::sync::Mutex<Vec<Channel>>>,
    /// Foreign queues already warned about on this connection.
    warned: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl UserQueues {
    /// Declares quorum queues; see [`UserQueues::of_type`].
    pub fn new(conn: Arc<Connection>, names: Names) -> Self {
        Self {
            conn,
            names,
            kind: UserQueueType::default(),
            turns: Arc::new(Semaphore::new(DECLARE_CHANNELS)),
            idle: Arc::default(),
            warned: Arc::default(),
        }
    }

    /// The same pool, declaring queues of type `kind`.
    pub fn of_type(self, kind: UserQueueType) -> Self {
        Self { kind, ..self }
    }

    /// Closes the pool's channels (before the connection closes, so the
    /// client library has nothing left to close on its own).
    pub async fn close(&self) {
        let idle: Vec<Channel> = lock(&self.idle).drain(..).collect();
        for channel in idle.iter().filter(|c| c.status().connected()) {
            let _ = tokio::time::timeout(DECLARE_WAIT, channel.close(200, "closing".into())).await;
        }
    }

    /// Makes sure the queue of every user in `users` exists and is bound to
    /// `P.notify`, at most [`DECLARE_CHANNELS`] at a time; stops at the first failure.
    pub async fn declare_all(&self, account: &Id, users: &[Id]) -> Result<(), lapin::Error> {
        let mut waiting = users.iter();
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < DECLARE_CHANNELS
                && let Some(user) = waiting.next()
            {
                running.push(self.declare(account, user));
            }
            match running.next().await {
                Some(declared) => declared?,
                None => return Ok(()),
            }
        }
    }

    /// Makes sure the user's queue exists and is bound to `P.notify`.
    pub async fn declare(&self, account: &Id, user: &Id) -> Result<(), lapin::Error> {
        let queue = self.names.user_queue(account, user);
        let _turn = self
            .turns
            .acquire()
            .await
            .expect("the pool is never closed");
        let idle = lock(&self.idle).pop();
        let channel = self.open(idle).await?;
        let result = self.declare_on(channel, &queue, account, user).await;
        // Only a channel that came through is used again: whatever failed may have closed it.
        if let Ok(channel) = &result
            && channel.status().connected()
        {
            lock(&self.idle).push(channel.clone());
        }
        result.map(drop)
    }

    /// Declares and binds on `channel` (or on a fresh one after a 406, which
    /// closes it); returns the channel the work ended on.
    async fn declare_on(
        &self,
        channel: Channel,
        queue: &str,
        account: &Id,
        user: &Id,
    ) -> Result<Channel, lapin::Error> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let declared = bounded(channel.queue_declare(queue.into(), durable, arguments(self.kind)));
        let channel = match declared.await {
            Ok(_) => channel,
            Err(error) if is_precondition_failed(&error) => {
                // The broker closed that channel; the queue exists with other arguments.
                let channel = self.open(None).await?;
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                };
                bounded(channel.queue_declare(queue.into(), passive, FieldTable::default()))
                    .await?;
                self.warn_once(queue, &error);
                channel
            }
            Err(error) => return Err(error),
        };
        bounded(channel.queue_bind(
            queue.into(),
            self.names.notify().into(),
            names::user_key(account, user).into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ))
        .await?;
        Ok(channel)
    }

    /// `idle` if it is still open, else a new channel.
    async fn open(&self, idle: Option<Channel>) -> Result<Channel, lapin::Error> {
        match idle.filter(|c| c.status().connected()) {
            Some(channel) => Ok(channel),
            None => bounded(self.conn.create_channel()).await,
        }
    }

    fn warn_once(&self, queue: &str, error: &lapin::Error) {
        if lock(&self.warned).insert(queue.to_owned()) {
            warn!(%queue, %error, "A user queue exists with other arguments than the worker's; delivering to it as it is.");
        }
    }
}

/// A std mutex's contents, also after a panic elsewhere (the data stays usable).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The declare arguments of a user queue of type `kind`.
fn arguments(kind: UserQueueType) -> FieldTable {
    match kind {
        UserQueueType::Quorum => super::quorum(),
        UserQueueType::Classic => {
            let mut args = FieldTable::default();
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString(LongString::from("classic")),
            );
            args
        }
    }
}

/// A broker's 406 PRECONDITION_FAILED: the queue or exchange exists with other
/// arguments or properties.
pub(crate) fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)))
}

/// `work` under [`DECLARE_WAIT`]; a broker that does not answer is an I/O timeout.
async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, lapin::Error>>,
) -> Result<T, lapin::Error> {
    match tokio::time::timeout(DECLARE_WAIT, work).await {
        Ok(result) => result,
        Err(_) => Err(lapin::Error::from(io::Error::new(
            io::ErrorKind::TimedOut,
            "the broker did not answer a declare in time",
        ))),
    }
}
