//! `channels.upserted`: registers or renames channels.

use super::{Change, Decision, Plan, Reads};
use crate::events::ChannelsUpserted;

pub fn decide(e: &ChannelsUpserted, reads: &Reads) -> Decision {
    let mut changes: Vec<Change> = e
        .channels
        .iter()
        .cloned()
        .map(Change::SaveChannel)
        .collect();
    changes.push(Change::ConfigChanged);
    Decision::Apply(Plan {
        guards: vec![reads.config_guard()],
        changes,
        ..Plan::default()
    })
}
