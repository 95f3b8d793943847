//! The deployment's partition count in Redis, as the worker reads and seeds
//! it, and the fence a worker records during a change (see
//! [`crate::partitioning`]). Keys outside the accounts' slots, like the worker
//! registry.

use std::collections::HashMap;

use super::{Store, StoreError, within};
use crate::partitioning::{FENCED_TTL_SECS, State, fenced_key, state_key};

impl Store {
    /// The count in effect, recorded as `seed` if none is yet (the first
    /// worker of a deployment records its `--partitions`).
    pub async fn partition_count(&self, seed: u16) -> Result<u16, StoreError> {
        let key = state_key(&self.prefix);
        within(async {
            let mut conn = self.backend.get().await?;
            let _: bool = redis::cmd("HSETNX")
                .arg(&key)
                .arg("count")
                .arg(seed)
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
        .await?;
        self.partition_state()
            .await?
            .count
            .ok_or_else(|| StoreError::Corrupt(format!("{key} has no count")))
    }

    /// What `P:partitions` says now.
    pub async fn partition_state(&self) -> Result<State, StoreError> {
        let key = state_key(&self.prefix);
        let fields: HashMap<String, String> = within(async {
            let mut conn = self.backend.get().await?;
            Ok(redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await?)
        })
        .await?;
        State::from_fields(&fields).map_err(StoreError::Corrupt)
    }

    /// Records that every delivery of `partition` before the marker of change
    /// `id` has finished.
    pub async fn fence(&self, id: &str, partition: u16) -> Result<(), StoreError> {
        let key = fenced_key(&self.prefix, id);
        within(async {
            let mut conn = self.backend.get().await?;
            let _: () = redis::pipe()
                .cmd("SADD")
                .arg(&key)
                .arg(partition)
                .ignore()
                .cmd("EXPIRE")
                .arg(&key)
                .arg(FENCED_TTL_SECS)
                .ignore()
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
    }
}
