//! The pure decisions: one file per event type, each a plain function from the
//! event and a snapshot of the state it needs to a [`Decision`]. No I/O here:
//! the worker loads the snapshot, and the store applies the plan atomically,
//! if the state it was decided on still holds.

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

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::events::{Event, Rejection};
use crate::ids::Id;
use crate::model::{Channel, ChatRef, Contact, Deal, RoundRobin, Seat, Settings, User};
use crate::output::Publish;

/// A piece of an account's state in Redis; the store turns it into a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Counter bumped by every change of channels, users, pipelines or settings.
    Config,
    /// Hash: channelId -> [`Channel`].
    Channels,
    /// Hash: userId -> [`User`].
    Users,
    /// Hash of one channel: userId -> [`Seat`].
    Seats(Id),
    /// The account's pipelines.
    Pipelines,
    /// The account's [`Settings`].
    Settings,
    /// One chat's [`crate::model::Chat`].
    Chat(ChatRef),
    Contact(Id),
    Deal(Id),
    /// Set of the deal ids of one contact.
    ContactDeals(Id),
    /// The [`RoundRobin`] pool of one channel.
    RoundRobin(Id),
    /// Hash of one channel: the chats waiting there to be claimed,
    /// [`waiting::field`] -> [`crate::model::WaitingEntry`].
    Waiting(Id),
}

/// A read an account event needs: a whole value, or one field of a hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Read {
    Get(Key),
    HGet(Key, Id),
    /// A channel's [`ChannelState`].
    Channel(Id),
}

/// The raw values of the reads an account event asked for.
#[derive(Debug, Default)]
pub struct Reads {
    pub config: Option<String>,
    pub values: HashMap<Read, Option<String>>,
    /// The channels asked for with [`Read::Channel`].
    pub channels: HashMap<Id, ChannelState>,
}

/// A channel's seats, round-robin pool and the chats waiting on it: what
/// offering waiting chats to users who gain access needs.
#[derive(Debug, Clone, Default)]
pub struct ChannelState {
    /// Sorted by user id.
    pub seats: Vec<(Id, Seat)>,
    pub round_robin: Stored<RoundRobin>,
    pub waiting: Vec<WaitingChat>,
}

/// One entry of a channel's waiting index, with the chat (and its contact, if
/// it has one) as stored.
#[derive(Debug, Clone)]
pub struct WaitingChat {
    pub entry: crate::model::WaitingEntry,
    pub chat: Stored<crate::model::Chat>,
    pub contact: Stored<Contact>,
}

impl Reads {
    pub fn raw(&self, read: &Read) -> Option<&str> {
        self.values.get(read).and_then(|v| v.as_deref())
    }

    pub fn parsed<T: DeserializeOwned>(&self, read: &Read) -> Option<T> {
        self.raw(read)
            .and_then(|raw| serde_json::from_str(raw).ok())
    }

    /// A guard that holds while `read` still has the value it had.
    pub fn guard(&self, read: &Read) -> Guard {
        let key = match read {
            Read::Get(k) | Read::HGet(k, _) => k.clone(),
            Read::Channel(_) => unreachable!("a channel's state is guarded piece by piece"),
        };
        match read {
            Read::Get(_) | Read::Channel(_) => Guard {
                key,
                field: None,
                expect: self.raw(read).map(str::to_owned),
            },
            Read::HGet(_, f) => Guard {
                key,
                field: Some(f.clone()),
                expect: self.raw(read).map(str::to_owned),
            },
        }
    }

    pub fn config_guard(&self) -> Guard {
        Guard {
            key: Key::Config,
            field: None,
            expect: self.config.clone(),
        }
    }
}

/// "This key (or hash field) still holds exactly this value (or is absent)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub key: Key,
    pub field: Option<Id>,
    pub expect: Option<String>,
}

/// A write of the plan; members and fields are raw ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Set(Key, String),
    Del(Key),
    HSet(Key, Id, String),
    HDel(Key, Id),
    SAdd(Key, Id),
    SRem(Key, Id),
    Incr(Key),
}

/// State changes and outputs of one event, applied at once or not at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub guards: Vec<Guard>,
    pub ops: Vec<Op>,
    pub outputs: Vec<Publish>,
    /// Users whose notification queues must exist before the event is acked.
    pub declare_users: Vec<Id>,
    /// What the plan decided, for the metrics.
    pub tally: Tally,
}

/// Decisions of a plan worth counting: claims and round-robin hand-outs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub claims_won: u32,
    pub claims_lost: u32,
    pub round_robin: u32,
}

/// What becomes of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Apply the plan (if its guards hold), remember it under the event id, publish its outputs.
    Apply(Plan),
    /// A query: publish these and change nothing.
    Answer(Vec<Publish>),
    /// Input the worker cannot accept: dead-letter it.
    Reject(Rejection),
}

/// Everything a chat event (`message.*`, `suitcase.requested`) may need, read in one step.
#[derive(Debug, Clone, Default)]
pub struct ChatSnapshot {
    pub config: Option<String>,
    pub settings: Option<Settings>,
    pub channel: Option<Channel>,
    /// The channel's users and their seats, sorted by user id.
    pub seats: Vec<(Id, Seat)>,
    pub round_robin: Stored<RoundRobin>,
    pub chat: Stored<crate::model::Chat>,
    pub contact: Stored<Contact>,
    /// The user named by the event, if any.
    pub user: Option<User>,
    /// The contact's deals (suitcase only).
    pub deals: Vec<Deal>,
}

/// A value with the raw string it was read from, for the guard of a later write.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    pub raw: Option<String>,
    pub value: Option<T>,
}

impl<T> Default for Stored<T> {
    fn default() -> Self {
        Self {
            raw: None,
            value: None,
        }
    }
}

impl<T: DeserializeOwned> Stored<T> {
    pub fn from_raw(raw: Option<String>) -> Result<Self, serde_json::Error> {
        let value = raw.as_deref().map(serde_json::from_str).transpose()?;
        Ok(Self { raw, value })
    }
}

impl<T> Stored<T> {
    pub fn guard(&self, key: Key) -> Guard {
        Guard {
            key,
            field: None,
            expect: self.raw.clone(),
        }
    }
}

/// JSON of a value the worker itself made; serializing plain data cannot fail.
pub(crate) fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
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

/// What a chat event needs in its snapshot besides the common parts.
pub struct ChatQuery {
    pub channel_id: Option<Id>,
    pub chat: ChatRef,
    pub user_id: Option<Id>,
    pub with_deals: bool,
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
