//! The publisher: the stream goes to `P.inbound` in batches on a confirm
//! channel, paced, each batch counted only once the broker confirmed all of
//! it. When the broker goes away (its restart is one of the faults) the
//! publisher reconnects with backoff and publishes the whole batch again: the
//! events keep their `eventId`s, so a copy has no further effect, and the
//! first copy of every event still enters the stream in publish order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

use crate::plan::Event;

const BATCH: usize = 100;
const LIMIT: Duration = Duration::from_secs(10);

/// Runs `fut` under [`LIMIT`], naming `what` when it overruns.
pub async fn within<T, E: Into<anyhow::Error>>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(LIMIT, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(anyhow!("{what} took over {LIMIT:?}")),
    }
}

/// Connects to RabbitMQ under [`LIMIT`].
pub async fn connect(url: &str, name: &str) -> Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    within("connecting to RabbitMQ", Connection::connect(url, props)).await
}

pub struct Publisher {
    url: String,
    exchange: String,
    channel: Option<(Connection, Channel)>,
    pub republished_batches: u32,
}

impl Publisher {
    pub fn new(url: String, exchange: String) -> Self {
        Self {
            url,
            exchange,
            channel: None,
            republished_batches: 0,
        }
    }

    /// Publishes every event at about `rate` per second; `progress` counts
    /// the confirmed ones. Gives up at `deadline`.
    pub async fn publish_all(
        &mut self,
        events: &[Event],
        rate: u32,
        progress: Arc<AtomicUsize>,
        deadline: Instant,
    ) -> Result<()> {
        let start = Instant::now();
        let mut backoff = Duration::from_millis(200);
        for batch in events.chunks(BATCH) {
            loop {
                match self.batch(batch).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(200);
                        break;
                    }
                    Err(e) => {
                        if Instant::now() > deadline {
                            bail!("publishing stopped at the deadline: {e:#}");
                        }
                        self.drop_connection().await;
                        self.republished_batches += 1;
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
            let done = progress.fetch_add(batch.len(), Ordering::SeqCst) + batch.len();
            let due = start + Duration::from_secs_f64(done as f64 / f64::from(rate.max(1)));
            tokio::time::sleep_until(due.into()).await;
        }
        self.drop_connection().await;
        Ok(())
    }

    async fn batch(&mut self, batch: &[Event]) -> Result<()> {
        if self.channel.is_none() {
            let conn = connect(&self.url, "switchboard-chaos publisher").await?;
            let channel = within("opening a channel", conn.create_channel()).await?;
            within(
                "confirm.select",
                channel.confirm_select(ConfirmSelectOptions::default()),
            )
            .await?;
            self.channel = Some((conn, channel));
        }
        let Some((_, channel)) = &self.channel else {
            bail!("no channel")
        };
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        let mut confirms = Vec::with_capacity(batch.len());
        for event in batch {
            let publish = channel.basic_publish(
                self.exchange.as_str().into(),
                event.key.as_str().into(),
                BasicPublishOptions::default(),
                &event.body,
                props.clone(),
            );
            confirms.push(within("a publish", publish).await?);
        }
        for confirm in confirms {
            if let Confirmation::Nack(_) = within("a publisher confirm", confirm).await? {
                bail!("the broker refused an event (nack)");
            }
        }
        Ok(())
    }

    async fn drop_connection(&mut self) {
        if let Some((conn, _)) = self.channel.take() {
            let _ =
                tokio::time::timeout(Duration::from_secs(2), conn.close(200, "bye".into())).await;
        }
    }
}
