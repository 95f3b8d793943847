//! What the broker has: whether a queue or an exchange exists, whether it
//! accepts a declaration, and waiting for a queue to appear. Each probe runs on
//! a throwaway channel, since a refused declare closes its channel.

use std::time::{Duration, Instant};

use lapin::ExchangeKind;
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

use super::app::WAIT;
use super::{TestApp, timed};

impl TestApp {
    /// Whether a queue exists (a passive declare, see [`TestApp::declare_accepted`]).
    pub async fn queue_exists(&self, queue: &str) -> bool {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        self.declare_accepted(queue, passive, FieldTable::default())
            .await
    }

    /// Whether the broker accepts declaring `queue` so (it refuses arguments
    /// other than an existing queue's), checked on a throwaway channel, since
    /// a refused declare closes its channel.
    pub async fn declare_accepted(
        &self,
        queue: &str,
        options: QueueDeclareOptions,
        args: FieldTable,
    ) -> bool {
        let probe = timed("channel.open", self.conn.create_channel())
            .await
            .unwrap();
        let accepted = timed(
            "queue.declare",
            probe.queue_declare(queue.into(), options, args),
        )
        .await
        .is_ok();
        let _ = timed("channel.close", probe.close(200, "probe".into())).await;
        accepted
    }

    /// Whether an exchange exists (probed as [`TestApp::queue_exists`] probes).
    pub async fn exchange_exists(&self, exchange: &str) -> bool {
        let probe = timed("channel.open", self.conn.create_channel())
            .await
            .unwrap();
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let declare = probe.exchange_declare(
            exchange.into(),
            ExchangeKind::Fanout,
            passive,
            FieldTable::default(),
        );
        let found = timed("exchange.declare (passive)", declare).await.is_ok();
        let _ = timed("channel.close", probe.close(200, "probe".into())).await;
        found
    }

    /// Waits until a queue exists; says whether it had to wait (the queue
    /// was being declared meanwhile).
    pub async fn wait_queue(&self, queue: &str) -> bool {
        let deadline = Instant::now() + WAIT;
        let mut waited = false;
        while !self.queue_exists(queue).await {
            assert!(Instant::now() < deadline, "queue {queue} never appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited = true;
        }
        waited
    }
}
