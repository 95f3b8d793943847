//! The RabbitMQ steps both phases share: connecting with a time limit,
//! persistent publishes on confirm channels, quorum queues, consuming without
//! acks, probing a queue and removing what the bench declared.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer, PublisherConfirm,
};

/// How long the broker may take to accept a connection.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// A connection named `name` (as the management UI shows it), or an error
/// naming the broker when it does not answer in time.
pub async fn connect(url: &str, name: &str) -> Result<Connection> {
    let connect = Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name(name.into()),
    );
    tokio::time::timeout(CONNECT_LIMIT, connect)
        .await
        .map_err(|_| anyhow!("RabbitMQ at {url} did not answer within {CONNECT_LIMIT:?}"))?
        .with_context(|| format!("RabbitMQ at {url}"))
}

/// A channel in confirm mode: every publish on it gets the broker's ack or nack.
pub async fn confirm_channel(conn: &Connection) -> Result<Channel> {
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// Publishes one persistent JSON message; the returned confirm resolves when
/// the broker has taken it (on a confirm channel).
pub async fn publish(
    channel: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
) -> lapin::Result<PublisherConfirm> {
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2);
    channel
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await
}

/// Declares a durable quorum queue, as the worker's own queues are.
pub async fn declare_quorum(channel: &Channel, queue: &str) -> Result<()> {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel.queue_declare(queue.into(), options, args).await?;
    Ok(())
}

/// A consumer of `queue` on its own channel, without acks: the bench's client side.
pub async fn consume(conn: &Connection, queue: &str) -> Result<Consumer> {
    let channel = conn.create_channel().await?;
    let options = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    Ok(channel
        .basic_consume(queue.into(), "".into(), options, FieldTable::default())
        .await?)
}

/// The messages ready in `queue`, or `None` when it does not exist. A failed
/// passive declare closes its channel, so each probe uses a throwaway one.
pub async fn message_count(conn: &Connection, queue: &str) -> Result<Option<u32>> {
    let probe = conn.create_channel().await?;
    let found = probe
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .ok()
        .map(|q| q.message_count());
    let _ = probe.close(200, "probe".into()).await;
    Ok(found)
}

/// Deletes queues, then exchanges, passing over those already gone: a failed
/// delete closes its channel, so the next one gets a fresh channel.
pub async fn delete(conn: &Connection, queues: &[String], exchanges: &[String]) -> Result<()> {
    let mut channel = conn.create_channel().await?;
    for queue in queues {
        if channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .is_err()
        {
            channel = conn.create_channel().await?;
        }
    }
    for exchange in exchanges {
        if channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .is_err()
        {
            channel = conn.create_channel().await?;
        }
    }
    let _ = channel.close(200, "cleanup".into()).await;
    Ok(())
}
