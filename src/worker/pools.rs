//! Worker-local turns for the round-robin pools.
//!
//! Every new client of a channel rewrites that channel's pool, guarded by its
//! old value, so events handing out new clients at once keep invalidating each
//! other's decisions. After an event loses such a race once, it is decided again
//! holding this worker's lock for the pool: within a worker the retries then
//! queue instead of colliding, and only other workers can still interfere.
//! The lock is a throughput aid only; the guarded apply keeps correctness.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Beyond this many pools, idle entries are dropped from the map.
const PRUNE_ABOVE: usize = 4096;

#[derive(Default)]
pub struct PoolLocks {
    locks: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

impl PoolLocks {
    /// Waits for this worker's turn on `pool`; the turn ends when the guard drops.
    pub async fn lock(&self, pool: String) -> OwnedMutexGuard<()> {
        let lock = {
            // A std mutex, never held across an await: only the map is guarded here.
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if locks.len() > PRUNE_ABOVE {
                locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            locks.entry(pool).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_turn_at_a_time_per_pool() {
        let locks = PoolLocks::default();
        let first = locks.lock("a".into()).await;
        let other_pool =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("b".into()))
                .await;
        assert!(other_pool.is_ok(), "another pool is free");
        let same =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("a".into()))
                .await;
        assert!(same.is_err(), "the same pool waits");
        drop(first);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("a".into()))
                .await
                .is_ok()
        );
    }
}
