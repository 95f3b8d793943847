//! Users' notification queues `P.user.{accountId}.{userId}`, declared as soon
//! as a user becomes known so nothing sent to him is lost before his client
//! first connects.
//!
//! The worker declares them durable quorum queues. But a client may have
//! declared his queue first, with other arguments (a classic queue, a length
//! limit): the broker then answers 406 PRECONDITION_FAILED and closes the
//! channel. That is the client's choice, not a fault, so the worker uses the
//! queue as it is: it checks that it exists (passive declare), binds it and
//! delivers to it, with one warning. Declaring happens on a channel of its own,
//! so a refused declare never closes the channel that publishes.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ErrorKind};
use tokio::sync::Mutex;
use tracing::warn;

use super::quorum;
use crate::ids::Id;
use crate::names::{self, Names};

/// How long one declare, bind or channel opening may take.
const DECLARE_WAIT: Duration = Duration::from_secs(10);

/// Declares user queues on a dedicated channel, reopened after the broker closes it.
#[derive(Clone)]
pub struct UserQueues {
    conn: Arc<Connection>,
    names: Names,
    channel: Arc<Mutex<Option<Channel>>>,
    /// Foreign queues already warned about on this connection.
    warned: Arc<std::sync::Mutex<HashSet<String>>>,
}

impl UserQueues {
    pub fn new(conn: Arc<Connection>, names: Names) -> Self {
        Self {
            conn,
            names,
            channel: Arc::default(),
            warned: Arc::default(),
        }
    }

    /// Closes the declaring channel, if open (before the connection closes, so
    /// the client library has nothing left to close on its own).
    pub async fn close(&self) {
        if let Some(channel) = self.channel.lock().await.take()
            && channel.status().connected()
        {
            let _ = tokio::time::timeout(DECLARE_WAIT, channel.close(200, "closing".into())).await;
        }
    }

    /// Makes sure the user's queue exists and is bound to `P.notify`.
    /// Declares are rare (a user becoming known), so they take turns on one channel.
    pub async fn declare(&self, account: &Id, user: &Id) -> Result<(), lapin::Error> {
        let queue = self.names.user_queue(account, user);
        let mut slot = self.channel.lock().await;
        let result = self.declare_on(&mut slot, &queue, account, user).await;
        if result.is_err() {
            // Whatever failed, the channel may be closed: open a fresh one next time.
            *slot = None;
        }
        result
    }

    async fn declare_on(
        &self,
        slot: &mut Option<Channel>,
        queue: &str,
        account: &Id,
        user: &Id,
    ) -> Result<(), lapin::Error> {
        let channel = self.open(slot).await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let declared = bounded(channel.queue_declare(queue.into(), durable, quorum())).await;
        let channel = match declared {
            Ok(_) => channel,
            Err(error) if is_precondition_failed(&error) => {
                // The broker closed that channel; the queue exists with other arguments.
                *slot = None;
                let channel = self.open(slot).await?;
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
        .await
    }

    /// The declaring channel, opened if there is none (or it was closed).
    async fn open(&self, slot: &mut Option<Channel>) -> Result<Channel, lapin::Error> {
        if let Some(channel) = slot.as_ref().filter(|c| c.status().connected()) {
            return Ok(channel.clone());
        }
        let channel = bounded(self.conn.create_channel()).await?;
        *slot = Some(channel.clone());
        Ok(channel)
    }

    fn warn_once(&self, queue: &str, error: &lapin::Error) {
        let first = match self.warned.lock() {
            Ok(mut warned) => warned.insert(queue.to_owned()),
            Err(_) => true,
        };
        if first {
            warn!(%queue, %error, "A user queue exists with other arguments than the worker's; delivering to it as it is.");
        }
    }
}

/// A broker's 406: the queue exists with other arguments.
fn is_precondition_failed(error: &lapin::Error) -> bool {
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
