//! `switchboard watch ACCOUNT USER`: a minimal client of one user's queue
//! `P.user.{account}.{user}`, printing notifications as they arrive.
//!
//! Like a real client it consumes: each notification is acked once printed,
//! so it is gone from the queue. With `keep`, nothing is acked and everything
//! shown goes back to the queue when the watch ends, for looking over a real
//! client's shoulder (while watching, those messages are held by the watch).

use futures_util::StreamExt;
use lapin::Connection;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{OpsError, close_channel, within};
use crate::ids::Id;
use crate::names::Names;

/// Consumes the user's queue until `stop` is cancelled, calling `each` with
/// every notification's body; returns how many arrived.
pub async fn watch(
    conn: &Connection,
    names: &Names,
    account: &Id,
    user: &Id,
    keep: bool,
    stop: &CancellationToken,
    mut each: impl FnMut(&[u8]),
) -> Result<usize, OpsError> {
    let queue = names.user_queue(account, user);
    let channel = within("opening a channel", conn.create_channel()).await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    if let Err(e) = within(
        "queue.declare",
        channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()),
    )
    .await
    {
        close_channel(&channel).await;
        return Err(match e {
            e if e.is_not_found() => OpsError::NotFound(format!(
                "queue {queue} does not exist: user {user:?} of account {account:?} is not known yet (a users.upserted event declares it)"
            )),
            other => other,
        });
    }
    let result = consume(&channel, &queue, keep, stop, &mut each).await;
    close_channel(&channel).await;
    result
}

async fn consume(
    channel: &lapin::Channel,
    queue: &str,
    keep: bool,
    stop: &CancellationToken,
    each: &mut impl FnMut(&[u8]),
) -> Result<usize, OpsError> {
    within(
        "basic.qos",
        channel.basic_qos(100, BasicQosOptions::default()),
    )
    .await?;
    let mut consumer = within(
        "basic.consume",
        channel.basic_consume(
            queue.into(),
            "switchboard-watch".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    let mut seen = 0;
    loop {
        // Waiting for the next notification has no deadline: that is the point
        // of watching. A dead connection ends the stream (heartbeats).
        let delivery = tokio::select! {
            () = stop.cancelled() => return Ok(seen),
            next = consumer.next() => match next {
                Some(delivery) => delivery?,
                None => return Err(OpsError::Ended("the broker ended the subscription".into())),
            },
        };
        each(&delivery.data);
        seen += 1;
        if !keep {
            within("basic.ack", delivery.acker.ack(BasicAckOptions::default())).await?;
        }
    }
}

/// One line per notification: time, type, chat, and what it says.
pub fn line(body: &[u8]) -> String {
    let Ok(note) = serde_json::from_slice::<Value>(body) else {
        return format!("(not JSON) {}", String::from_utf8_lossy(body));
    };
    let s = |k: &str| {
        note.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let time = s("occurredAt");
    let time = time.get(11..19).unwrap_or(&time).to_owned();
    let mut out = format!(
        "{time}  {:<16} {}:{} on {}",
        s("type"),
        s("chatType"),
        s("chatId"),
        s("channelId")
    );
    for (key, label) in [
        ("contactId", "contact"),
        ("dealId", "deal"),
        ("reason", "reason"),
    ] {
        if let Some(v) = note.get(key).and_then(Value::as_str) {
            out.push_str(&format!("  {label} {v}"));
        }
    }
    if let Some(text) = note.get("text").and_then(Value::as_str) {
        out.push_str(&format!("  {text:?}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_reads_as_one_line() {
        let body = br#"{"notificationId":"n","type":"message.rejected","accountId":"a","userId":"u","channelId":"wa","chatType":"whatsapp","chatId":"c1","reason":"read_only","occurredAt":"2026-11-25T10:00:01Z"}"#;
        assert_eq!(
            line(body),
            "10:00:01  message.rejected whatsapp:c1 on wa  reason read_only"
        );
        let body = br#"{"type":"chat.new","chatType":"vk","chatId":"c","channelId":"v","text":"hi","occurredAt":"x"}"#;
        assert_eq!(line(body), "x  chat.new         vk:c on v  \"hi\"");
        assert!(line(b"nope").starts_with("(not JSON)"));
    }
}
