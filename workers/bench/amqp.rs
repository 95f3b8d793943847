//! The RabbitMQ steps both phases share: connecting with a time limit,
//! persistent publishes on confirm channels, quorum queues, consuming without
//! acks, probing a queue and removing what the bench declared.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    PublisherConfirm,
};

use crate::limit::{CALL_LIMIT, within};

/// How long the broker may take to accept a connection.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);
/// How long closing a channel or connection may take.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

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
    let channel = within("open a channel", conn.create_channel()).await?;
    within(
        "confirm.select",
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    Ok(channel)
}

/// The properties of every bench publish: persistent JSON.
pub fn json_props() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
}

/// Publishes one persistent JSON message; the returned confirm resolves when
/// the broker has taken it (on a confirm channel). Wait for it with [`confirmed`].
pub async fn publish(
    channel: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
) -> Result<PublisherConfirm> {
    publish_with(channel, exchange, key, body, json_props()).await
}

/// [`publish`] with the given properties.
pub async fn publish_with(
    channel: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) -> Result<PublisherConfirm> {
    let publish = channel.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body,
        props,
    );
    within("publish", publish).await
}

/// Whether the broker took a publish (ack) or refused it (nack), within the time limit.
pub async fn confirmed(confirm: PublisherConfirm) -> Result<bool> {
    Ok(matches!(
        within("publisher confirm", confirm).await?,
        Confirmation::Ack(_)
    ))
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
    within(
        "queue.declare",
        channel.queue_declare(queue.into(), options, args),
    )
    .await?;
    Ok(())
}

/// A consumer of `queue` on its own channel, without acks: the bench's client side.
pub async fn consume(conn: &Connection, queue: &str) -> Result<Consumer> {
    let channel = within("open a channel", conn.create_channel()).await?;
    let options = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    within(
        "basic.consume",
        channel.basic_consume(queue.into(), "".into(), options, FieldTable::default()),
    )
    .await
}

/// The messages ready in `queue`, or `None` when it does not exist. A failed
/// passive declare closes its channel, so each probe uses a throwaway one.
pub async fn message_count(conn: &Connection, queue: &str) -> Result<Option<u32>> {
    let probe = within("open a channel", conn.create_channel()).await?;
    let declare = probe.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    );
    // A missing queue fails the declare; a broker that does not answer fails the run.
    let found = match tokio::time::timeout(CALL_LIMIT, declare).await {
        Ok(outcome) => outcome.ok().map(|q| q.message_count()),
        Err(_) => bail!("passive queue.declare of {queue}: no answer within {CALL_LIMIT:?}"),
    };
    close(&probe).await;
    Ok(found)
}

/// Deletes queues, then exchanges, passing over those already gone: a failed
/// delete closes its channel, so the next one gets a fresh channel.
pub async fn delete(conn: &Connection, queues: &[String], exchanges: &[String]) -> Result<()> {
    let mut channel = within("open a channel", conn.create_channel()).await?;
    for queue in queues {
        let delete = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default());
        if within("queue.delete", delete).await.is_err() {
            channel = within("open a channel", conn.create_channel()).await?;
        }
    }
    for exchange in exchanges {
        let delete =
            channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default());
        if within("exchange.delete", delete).await.is_err() {
            channel = within("open a channel", conn.create_channel()).await?;
        }
    }
    close(&channel).await;
    Ok(())
}

/// Closes a channel, giving up quietly after a short while: it is only tidiness.
pub async fn close(channel: &Channel) {
    let _ = tokio::time::timeout(CLOSE_LIMIT, channel.close(200, "done".into())).await;
}

/// Closes a connection the same way.
pub async fn close_connection(conn: &Connection) {
    let _ = tokio::time::timeout(CLOSE_LIMIT, conn.close(200, "done".into())).await;
}
