//! Removing what the bench created, whatever happened before: the workers are
//! stopped, then every queue and exchange of the prefix and every Redis key
//! under it (the preloaded contacts too) goes, so nothing of a run outlives
//! it (also after Ctrl-C or a failed phase).

use anyhow::Result;
use switchboard::names::Names;

use crate::amqp;
use crate::limit::within;
use crate::session::Bench;

/// The worker's topology under one prefix (declared by the workers, or by the
/// ceiling for its relay), with the user queues declared on it.
#[derive(Debug)]
pub struct Topology {
    pub names: Names,
    pub partitions: u16,
    pub user_queues: Vec<String>,
}

impl Topology {
    /// Its queues and exchanges, whether or not each was declared yet.
    pub fn names_to_delete(&self) -> (Vec<String>, Vec<String>) {
        let names = &self.names;
        let mut queues = vec![names.dead()];
        queues.extend((0..self.partitions).map(|n| names.inbound_partition(n)));
        queues.extend(self.user_queues.iter().cloned());
        let exchanges = vec![
            names.inbound(),
            names.inbound_hash(),
            names.notify(),
            names.crm(),
            names.outbound(),
        ];
        (queues, exchanges)
    }
}

impl Bench {
    /// Stops the workers and removes every queue, exchange and Redis key of
    /// the prefix; the worker processes' logs are kept when the run `failed`.
    pub async fn cleanup(&mut self, failed: bool) -> Result<()> {
        self.stop_workers(failed).await;
        for conn in self.side_connections.drain(..) {
            amqp::close_connection(&conn).await;
        }
        if self.conn.is_none() {
            return Ok(());
        }
        // A run that failed because the broker went away left a dead connection.
        if !self.conn().status().connected() {
            self.conn = Some(amqp::connect(&self.amqp_url, "switchboard-bench cleanup").await?);
        }
        let mut queues = std::mem::take(&mut self.queues);
        let mut exchanges = Vec::new();
        for topology in self.topologies.drain(..) {
            let (q, e) = topology.names_to_delete();
            queues.extend(q);
            exchanges.extend(e);
        }
        let conn = self.conn();
        amqp::delete(conn, &queues, &exchanges).await?;
        if let Some(redis) = &self.redis {
            unlink_prefix(redis, self.prefix()).await?;
        }
        amqp::close_connection(conn).await;
        Ok(())
    }
}

/// Removes every key `{prefix}:*`, a batch at a time.
async fn unlink_prefix(redis: &redis::Client, prefix: &str) -> Result<()> {
    let mut rconn = within("Redis connect", redis.get_multiplexed_async_connection()).await?;
    let pattern = format!("{prefix}:*");
    let mut cursor: u64 = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(5000);
        let (next, keys): (u64, Vec<String>) =
            within("Redis SCAN", scan.query_async(&mut rconn)).await?;
        if !keys.is_empty() {
            let mut unlink = redis::cmd("UNLINK");
            unlink.arg(&keys);
            let (): () = within("Redis UNLINK", unlink.query_async(&mut rconn)).await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(())
}
