//! Removing what the bench created, whatever happened before: the workers are
//! stopped, then every queue and exchange of the prefix and every Redis key
//! under it goes, so nothing of a run outlives it (also after Ctrl-C).

use std::time::Duration;

use anyhow::Result;

use crate::amqp;
use crate::session::Bench;

impl Bench {
    /// Stops the workers and removes every queue, exchange and Redis key of the prefix.
    pub async fn cleanup(&mut self) -> Result<()> {
        for (token, _) in &self.workers {
            token.cancel();
        }
        for (_, handle) in self.workers.drain(..) {
            if tokio::time::timeout(Duration::from_secs(15), handle)
                .await
                .is_err()
            {
                eprintln!("switchboard-bench: a worker did not stop in time");
            }
        }
        for conn in self.side_connections.drain(..) {
            let _ = conn.close(200, "cleanup".into()).await;
        }
        let Some(conn) = &self.conn else {
            return Ok(());
        };
        let mut queues = std::mem::take(&mut self.queues);
        let mut exchanges = Vec::new();
        if self.topology {
            queues.push(self.names.dead());
            queues.extend((0..self.partitions).map(|n| self.names.inbound_partition(n)));
            queues.extend(self.users.iter().map(|user| self.user_queue(user)));
            exchanges = vec![
                self.names.inbound(),
                self.names.inbound_hash(),
                self.names.notify(),
                self.names.crm(),
                self.names.outbound(),
            ];
        }
        amqp::delete(conn, &queues, &exchanges).await?;
        if let Some(redis) = &self.redis {
            unlink_prefix(redis, self.prefix()).await?;
        }
        let _ = conn.close(200, "bye".into()).await;
        Ok(())
    }
}

/// Removes every key `{prefix}:*`, a batch at a time.
async fn unlink_prefix(redis: &redis::Client, prefix: &str) -> Result<()> {
    let mut rconn = redis.get_multiplexed_async_connection().await?;
    let pattern = format!("{prefix}:*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut rconn)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut rconn)
                .await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(())
}
