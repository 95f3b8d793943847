//! Whether a queue or an exchange exists, asked by a passive declare. A
//! passive declare of something missing closes its channel, so each probe
//! opens a channel of its own and closes it after; NOT_FOUND becomes `None`
//! (or `false`), any other failure is the caller's.

use std::future::Future;

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};

use super::{OpsError, close_channel, within};

/// `(messages, consumers)` of `queue`, or `None` when it does not exist.
/// `what` names the request if it times out.
pub(crate) async fn queue(
    conn: &Connection,
    queue: &str,
    what: &str,
) -> Result<Option<(u32, u32)>, OpsError> {
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = passive(conn, what, |channel| async move {
        channel
            .queue_declare(queue.into(), options, FieldTable::default())
            .await
    })
    .await?;
    Ok(declared.map(|q| (q.message_count(), q.consumer_count())))
}

/// Whether `exchange` exists. `what` names the request if it times out.
pub(crate) async fn exchange(
    conn: &Connection,
    exchange: &str,
    what: &str,
) -> Result<bool, OpsError> {
    let options = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    let declared = passive(conn, what, |channel| async move {
        // The kind is not checked by a passive declare.
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Direct,
                options,
                FieldTable::default(),
            )
            .await
    })
    .await?;
    Ok(declared.is_some())
}

async fn passive<T, F>(
    conn: &Connection,
    what: &str,
    declare: impl FnOnce(Channel) -> F,
) -> Result<Option<T>, OpsError>
where
    F: Future<Output = Result<T, lapin::Error>>,
{
    let channel = within("opening a channel", conn.create_channel()).await?;
    let result = within(what, declare(channel.clone())).await;
    close_channel(&channel).await;
    match result {
        Ok(found) => Ok(Some(found)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
