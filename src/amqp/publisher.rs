//! Publishing with confirms: a batch is published at once and counts as done
//! only when the broker confirmed every message of it.

use futures_util::future::try_join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use crate::names::Names;
use crate::output::{Publish, Target};

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

/// How long a confirm may take before the channel counts as stuck.
const CONFIRM_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A confirm-mode channel with the exchange names.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    names: Names,
}

impl Publisher {
    pub async fn open(connection: &Connection, names: Names) -> Result<Self, lapin::Error> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self { channel, names })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Publishes every output and waits until the broker confirmed all of them.
    pub async fn publish_all(&self, outputs: &[Publish]) -> Result<(), PublishError> {
        let confirms = outputs.iter().map(|output| async move {
            let exchange = match output.target {
                Target::Notify => self.names.notify(),
                Target::Crm => self.names.crm(),
                Target::Outbound => self.names.outbound(),
                Target::Reply => String::new(),
            };
            let mut props = json_props();
            if let Some(correlation_id) = &output.correlation_id {
                props = props.with_correlation_id(ShortString::from(correlation_id.as_str()));
            }
            self.confirmed(
                &exchange,
                &output.routing_key,
                output.body.as_bytes(),
                props,
            )
            .await
        });
        try_join_all(confirms).await?;
        Ok(())
    }

    /// Puts an input the worker cannot accept on `P.dead`, body untouched, with
    /// the reason in `x-switchboard-error`.
    pub async fn dead_letter(
        &self,
        body: &[u8],
        original: &BasicProperties,
        routing_key: &str,
        reason: &str,
    ) -> Result<(), PublishError> {
        let mut headers = original.headers().clone().unwrap_or_default();
        headers.insert(
            "x-switchboard-error".into(),
            AMQPValue::LongString(LongString::from(reason)),
        );
        headers.insert(
            "x-switchboard-routing-key".into(),
            AMQPValue::LongString(LongString::from(routing_key)),
        );
        // When it died, for an operator's `switchboard dead list` (its age).
        headers.insert(
            "x-switchboard-dead-at".into(),
            AMQPValue::LongString(LongString::from(
                chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )),
        );
        let mut props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_headers(headers);
        if let Some(content_type) = original.content_type() {
            props = props.with_content_type(content_type.clone());
        }
        if let Some(id) = original.message_id() {
            props = props.with_message_id(id.clone());
        }
        self.confirmed("", &self.names.dead(), body, props).await
    }

    async fn confirmed(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), PublishError> {
        let publish = async {
            self.channel
                .basic_publish(
                    exchange.into(),
                    key.into(),
                    BasicPublishOptions::default(),
                    body,
                    props,
                )
                .await?
                .await
        };
        let confirm = tokio::time::timeout(CONFIRM_WAIT, publish)
            .await
            .map_err(|_| PublishError::ConfirmTimeout(CONFIRM_WAIT))??;
        match confirm {
            Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
            Confirmation::Nack(_) => Err(PublishError::Nacked(format!("{exchange:?} {key:?}"))),
        }
    }
}

fn json_props() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_app_id("switchboard".into())
}
