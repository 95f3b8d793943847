//! The account's state as the decisions see it: which pieces of it there are
//! ([`Key`]), what an event reads ([`Read`], [`Reads`], [`ChatSnapshot`],
//! [`ChannelState`]) and what it changes ([`Plan`]: guards, writes, outputs).
//!
//! Plain data shared by the pure decisions (`handlers`) and the store (`store`),
//! which alone turns keys into Redis key names and plans into commands.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

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
    /// [`crate::handlers::waiting::field`] -> [`crate::model::WaitingEntry`].
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

/// What a chat event needs in its snapshot besides the common parts.
pub struct ChatQuery {
    pub channel_id: Option<Id>,
    pub chat: ChatRef,
    pub user_id: Option<Id>,
    pub with_deals: bool,
}
