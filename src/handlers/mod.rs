//! The pure decisions: one file per event type, each a plain function from the
//! event and a snapshot of the state it needs to a [`Decision`]. No I/O here:
//! the worker loads the snapshot, and the store applies the plan atomically,
//! if the state it was decided on still holds.

mod assign;
mod channels_upserted;
mod chat;
mod contact_upserted;
mod deal_upserted;
mod message_inbound;
mod message_outbound;
mod pipelines_loaded;
mod settings_updated;
mod suitcase_requested;
mod users_removed;
mod users_upserted;

pub mod routing;
pub mod waiting;

#[cfg(test)]
mod tests;

use crate::events::{Event, Rejection};
use crate::output::Outputs;
pub use crate::state::{
    Change, ChannelState, ChatQuery, ChatSnapshot, Guard, Item, ItemValue, Plan, Read, Reads,
    Stored, Tally, Turn, TurnAdds, Variant, Version, WaitingChat,
};

/// What becomes of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Apply the plan (if its guards hold), remember it under the event id, publish its outputs.
    Apply(Plan),
    /// A query: publish these and change nothing.
    Answer(Outputs),
    /// Input the worker cannot accept: dead-letter it.
    Reject(Rejection),
}

/// Which reads an account event needs; `None` for chat events, which use a [`ChatSnapshot`].
pub fn reads(event: &Event) -> Option<Vec<Read>> {
    Some(match event {
        Event::ChannelsUpserted(_) | Event::PipelinesLoaded(_) => vec![],
        Event::SettingsUpdated(_) => settings_updated::reads(),
        Event::UsersUpserted(e) => users_upserted::reads(e),
        Event::UsersRemoved(e) => users_removed::reads(e),
        Event::ContactUpserted(e) => contact_upserted::reads(e),
        Event::DealUpserted(e) => deal_upserted::reads(e),
        Event::MessageInbound(_) | Event::MessageOutbound(_) | Event::SuitcaseRequested(_) => {
            return None;
        }
    })
}

/// Decides an account event from its reads.
pub fn decide_account(event: &Event, reads: &Reads) -> Decision {
    match event {
        Event::ChannelsUpserted(e) => channels_upserted::decide(e, reads),
        Event::UsersUpserted(e) => users_upserted::decide(e, reads),
        Event::UsersRemoved(e) => users_removed::decide(e, reads),
        Event::PipelinesLoaded(e) => pipelines_loaded::decide(e, reads),
        Event::SettingsUpdated(e) => settings_updated::decide(e, reads),
        Event::ContactUpserted(e) => contact_upserted::decide(e, reads),
        Event::DealUpserted(e) => deal_upserted::decide(e, reads),
        Event::MessageInbound(_) | Event::MessageOutbound(_) | Event::SuitcaseRequested(_) => {
            unreachable!("chat events are decided from a ChatSnapshot")
        }
    }
}

pub fn chat_query(event: &Event) -> Option<ChatQuery> {
    match event {
        Event::MessageInbound(e) => Some(ChatQuery {
            channel_id: Some(e.channel_id.clone()),
            chat: e.chat(),
            user_id: None,
            with_deals: false,
        }),
        Event::MessageOutbound(e) => Some(ChatQuery {
            channel_id: Some(e.channel_id.clone()),
            chat: e.chat(),
            user_id: Some(e.user_id.clone()),
            with_deals: false,
        }),
        Event::SuitcaseRequested(e) => Some(ChatQuery {
            channel_id: None,
            chat: e.chat(),
            user_id: Some(e.user_id.clone()),
            with_deals: true,
        }),
        _ => None,
    }
}

/// The AMQP properties a chat event brings that a decision may need.
#[derive(Debug, Clone, Default)]
pub struct ReplyTo {
    pub reply_to: Option<String>,
    pub correlation_id: Option<String>,
}

/// Decides a chat event from its snapshot.
pub fn decide_chat(event: &Event, snapshot: &ChatSnapshot, reply: &ReplyTo) -> Decision {
    match event {
        Event::MessageInbound(e) => message_inbound::decide(e, snapshot),
        Event::MessageOutbound(e) => message_outbound::decide(e, snapshot),
        Event::SuitcaseRequested(e) => suitcase_requested::decide(e, snapshot, reply),
        _ => unreachable!("account events are decided from Reads"),
    }
}
