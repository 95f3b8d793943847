//! The worker's part in a change of the partition count
//! ([`crate::partitioning`]), once a tick: settle the fence markers it holds,
//! and notice when the recorded count is no longer the session's.
//!
//! A marker is settled once every delivery of its partition that came before
//! it has finished (nothing in flight): if it belongs to the change in
//! progress, the partition is recorded as fenced and the marker stays unacked,
//! so whoever consumes the partition next (after a crash or a hand-over) meets
//! it again first and holds what follows too. A marker of a change that is
//! over is acked and dropped, and the subscription starts afresh, which returns
//! the deliveries held behind it to the head of the queue.

use std::collections::HashMap;

use lapin::options::BasicAckOptions;
use tokio::task::JoinSet;
use tracing::{debug, info};

use super::bounded;
use super::consumer::{Consumer, REGISTRY_WAIT};
use super::subscription::{Opener, Subscription};
use crate::partitioning::State;

impl Consumer<'_> {
    /// Settles the markers that are due, given the partition `state` read by
    /// probe `probe`, and returns the recorded count when it differs from the
    /// session's. A marker that arrived after that probe started waits for the
    /// next one.
    pub(super) async fn follow_partitioning(
        &self,
        subs: &mut HashMap<u16, Subscription>,
        generation: &mut u64,
        opener: &Opener<'_>,
        forwarders: &mut JoinSet<()>,
        state: &State,
        probe: u64,
    ) -> Result<Option<u16>, lapin::Error> {
        let store = &self.pipeline.store;
        let due: Vec<u16> = subs
            .iter()
            .filter(|(_, s)| {
                s.in_flight == 0
                    && s.fence
                        .as_ref()
                        .is_some_and(|f| !f.recorded && f.first_probe <= probe)
            })
            .map(|(n, _)| *n)
            .collect();
        for n in due {
            let Some(fence) = subs.get_mut(&n).and_then(|s| s.fence.as_mut()) else {
                continue;
            };
            if state.is_current(&fence.id) {
                match tokio::time::timeout(REGISTRY_WAIT, store.fence(&fence.id, n)).await {
                    Ok(Ok(())) => {
                        fence.recorded = true;
                        info!(partition = n, change = %fence.id, "Partition fenced for a change of the partition count.");
                    }
                    Ok(Err(error)) => {
                        debug!(%error, "Cannot record a fence; trying again next tick.")
                    }
                    Err(_) => debug!("Recording a fence timed out; trying again next tick."),
                }
                continue;
            }
            let Some(stale) = subs.get_mut(&n).and_then(|s| s.fence.take()) else {
                continue;
            };
            bounded(stale.marker.ack(BasicAckOptions::default())).await?;
            debug!(partition = n, change = %stale.id, "Dropped the marker of a finished change.");
            self.hand_over(subs, n, generation, opener, forwarders)
                .await?;
        }
        Ok(state.count.filter(|count| *count != self.config.partitions))
    }
}
