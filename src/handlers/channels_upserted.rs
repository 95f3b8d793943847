//! `channels.upserted`: registers or renames channels.

use super::{Decision, Key, Op, Plan, Reads, json};
use crate::events::ChannelsUpserted;

pub fn decide(e: &ChannelsUpserted, reads: &Reads) -> Decision {
    let mut plan = Plan {
        guards: vec![reads.config_guard()],
        ..Plan::default()
    };
    for channel in &e.channels {
        plan.ops.push(Op::HSet(
            Key::Channels,
            channel.channel_id.clone(),
            json(channel),
        ));
    }
    plan.ops.push(Op::Incr(Key::Config));
    Decision::Apply(plan)
}
