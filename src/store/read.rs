//! The reads: an account event's items (one MULTI/EXEC pipeline), a channel's
//! state (`channel.lua`) and a chat event's snapshot (`snapshot.lua`), each at
//! one instant, each decoded from Redis's JSON into the domain's values. The
//! scripts answer one JSON object, decoded here by name. Both scripts start
//! with `layout.lua`, which builds the channel indexes of older accounts.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::backend::Conn;
use super::keys::{AccountKeys, Key, bucket_of, chat_field};
use super::{Loaded, Store, StoreError, compact, corrupt, parse, within};
use crate::ids::Id;
use crate::model::{Chat, Contact, Role, RoundRobin, Seat};
use crate::monitor::counters;
use crate::state::{
    ChannelState, ChatQuery, ChatSnapshot, Item, ItemValue, Read, Reads, Stored, Version,
    WaitingChat,
};

impl Store {
    /// The reads of an account event, plus whether it was applied, at one instant.
    pub async fn read(
        &self,
        account: &Id,
        event_id: &Id,
        reads: Vec<Read>,
    ) -> Result<Loaded<Reads>, StoreError> {
        within(self.read_now(account, event_id, reads)).await
    }

    async fn read_now(
        &self,
        account: &Id,
        event_id: &Id,
        reads: Vec<Read>,
    ) -> Result<Loaded<Reads>, StoreError> {
        let keys = self.keys(account);
        let mut items = Vec::new();
        let mut channels = Vec::new();
        for read in reads {
            match read {
                Read::Item(item) => items.push(item),
                Read::ChannelState(channel) => channels.push(channel),
            }
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .get(keys.event(event_id))
            .get(keys.key(&Key::Config));
        let queried = items_to(&mut pipe, &keys, &items);
        let mut conn = self.backend.get().await?;
        counters::redis_round_trip("read");
        let mut values: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        if values.len() != queried + 2 {
            return Err(StoreError::Corrupt(
                "pipeline answered the wrong number of values".into(),
            ));
        }
        let rest = items_from(&items, values.split_off(2));
        if let Some(record) = &values[0] {
            return Ok(Loaded::Applied(parse(record)?));
        }
        let mut loaded = Reads {
            config: Version::stored(values[1].take()),
            ..Reads::default()
        };
        for (item, raw) in items.into_iter().zip(rest) {
            let value = raw.as_deref().map(|raw| decode(&item, raw)).transpose()?;
            let version = Version::stored(raw);
            loaded.items.insert(item, Stored { version, value });
        }
        // Each channel is read at one instant of its own; the plan guards what
        // it relies on (config, chats, contacts, pool), so a change in between
        // makes the apply answer `conflict` and the event is decided again.
        for channel in channels {
            let state = self.channel_state(&keys, &channel, &mut conn).await?;
            loaded.channels.insert(channel, state);
        }
        Ok(Loaded::Fresh(loaded))
    }

    /// A channel's seats, pool and waiting chats (`channel.lua`).
    async fn channel_state(
        &self,
        keys: &AccountKeys,
        channel: &Id,
        conn: &mut Conn,
    ) -> Result<ChannelState, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            entry: String,
            chat: Option<String>,
            contact: Option<String>,
        }
        // A waiting chat's contact is found through the chat.
        #[derive(Deserialize)]
        struct Reply {
            #[serde(default)]
            seats: HashMap<String, String>,
            #[serde(default)]
            pool: HashMap<String, String>,
            turn: Option<String>,
            #[serde(default)]
            waiting: Vec<Row>,
        }
        let names = [
            keys.key(&Key::Seats(channel.clone())),
            keys.key(&Key::Pool(channel.clone())),
            keys.key(&Key::Turn(channel.clone())),
            keys.key(&Key::Waiting(channel.clone())),
        ];
        let mut invocation = super::eval::Eval::new(&self.channel, &names);
        invocation.arg(keys.base());
        counters::redis_round_trip("channel");
        let raw: String = invocation.run(conn).await?;
        let reply: Reply = parse(&raw)?;
        let mut waiting = Vec::with_capacity(reply.waiting.len());
        for row in reply.waiting {
            let chat: Stored<Chat> = stored(row.chat)?;
            let contact = stored_contact(&chat, row.contact)?;
            waiting.push(WaitingChat {
                entry: parse(&row.entry)?,
                chat,
                contact,
            });
        }
        let mut pool = RoundRobin {
            turn: reply.turn.as_deref().map(number).transpose()?.unwrap_or(0),
            ..RoundRobin::default()
        };
        for (manager, last) in reply.pool {
            pool.last
                .insert(Id::parse(manager).map_err(corrupt)?, number(&last)?);
        }
        Ok(ChannelState {
            seats: seats(reply.seats)?,
            round_robin: Stored {
                version: Version::stored(reply.turn),
                value: Some(pool),
            },
            waiting,
        })
    }

    /// The snapshot of a chat event, or the record of its earlier application.
    pub async fn snapshot(
        &self,
        account: &Id,
        event_id: &Id,
        q: &ChatQuery,
    ) -> Result<Loaded<ChatSnapshot>, StoreError> {
        within(self.snapshot_now(account, event_id, q)).await
    }

    async fn snapshot_now(
        &self,
        account: &Id,
        event_id: &Id,
        q: &ChatQuery,
    ) -> Result<Loaded<ChatSnapshot>, StoreError> {
        let keys = self.keys(account);
        let chat_field = chat_field(&q.chat);
        let channel = q
            .channel_id
            .clone()
            .unwrap_or_else(|| Id::parse("-").expect("valid"));
        let names = [
            keys.event(event_id),
            keys.key(&Key::Config),
            keys.key(&Key::Settings),
            keys.key(&Key::Channels),
            keys.key(&Key::Seats(channel.clone())),
            keys.key(&Key::Observers(channel.clone())),
            keys.key(&Key::Pool(channel)),
            keys.key(&Key::Chats(bucket_of(&chat_field))),
            keys.key(&Key::Users),
            keys.key(&Key::Chat(q.chat.clone())),
        ];
        let mut invocation = super::eval::Eval::new(&self.snapshot, &names);
        invocation
            .arg(q.channel_id.as_ref().map_or("", Id::as_str))
            .arg(q.user_id.as_ref().map_or("", Id::as_str))
            .arg(keys.base())
            .arg(if q.with_deals { "1" } else { "0" })
            .arg(&chat_field);
        #[derive(Deserialize)]
        struct Reply {
            applied: Option<String>,
            config: Option<String>,
            settings: Option<String>,
            channel: Option<String>,
            #[serde(default)]
            observers: HashMap<String, String>,
            #[serde(default)]
            seats: HashMap<String, String>,
            #[serde(default)]
            eligible: Vec<String>,
            chat: Option<String>,
            contact: Option<String>,
            user: Option<String>,
            #[serde(default)]
            deals: Vec<(String, String)>,
        }
        let mut conn = self.backend.get().await?;
        counters::redis_round_trip("snapshot");
        let raw: String = invocation.run(&mut conn).await?;
        let reply: Reply = parse(&raw)?;
        if let Some(record) = reply.applied {
            return Ok(Loaded::Applied(parse(&record)?));
        }
        let mut deals = Vec::with_capacity(reply.deals.len());
        for (id, raw) in &reply.deals {
            deals.push(compact::deal(
                &Id::parse(id.as_str()).map_err(corrupt)?,
                raw,
            )?);
        }
        let chat: Stored<Chat> = stored(reply.chat)?;
        let contact = stored_contact(&chat, reply.contact)?;
        Ok(Loaded::Fresh(ChatSnapshot {
            config: Version::stored(reply.config),
            settings: reply.settings.as_deref().map(parse).transpose()?,
            channel: reply.channel.as_deref().map(parse).transpose()?,
            seats: known_seats(reply.observers, reply.seats, reply.eligible)?,
            chat,
            contact,
            user: reply.user.as_deref().map(parse).transpose()?,
            deals,
        }))
    }
}

/// A value as stored, with its version for a later guard.
fn stored<T: DeserializeOwned>(raw: Option<String>) -> Result<Stored<T>, StoreError> {
    let value = raw.as_deref().map(parse).transpose()?;
    Ok(Stored {
        version: Version::stored(raw),
        value,
    })
}

/// The contact of `chat` as stored (found through the chat's contact id).
fn stored_contact(chat: &Stored<Chat>, raw: Option<String>) -> Result<Stored<Contact>, StoreError> {
    let value = match (
        &raw,
        chat.value.as_ref().and_then(|c| c.contact_id.as_ref()),
    ) {
        (Some(raw), Some(id)) => Some(compact::contact(id, raw)?),
        (Some(_), None) => {
            return Err(StoreError::Corrupt(
                "a contact was read for a chat without one".into(),
            ));
        }
        (None, _) => None,
    };
    Ok(Stored {
        version: Version::stored(raw),
        value,
    })
}

/// Queues on `pipe` the reads of `items`: one value each, and for an item of
/// the older layout ([`Key::legacy`]) its older key too. Returns how many
/// values they answer.
pub(super) fn items_to(pipe: &mut redis::Pipeline, keys: &AccountKeys, items: &[Item]) -> usize {
    let mut n = 0;
    for item in items {
        match Key::of(item) {
            (key, None) => pipe.get(keys.key(&key)),
            (key, Some(field)) => pipe.hget(keys.key(&key), field.as_ref()),
        };
        n += 1;
        if let Some(old) = Key::legacy(item) {
            pipe.get(keys.key(&old));
            n += 1;
        }
    }
    n
}

/// The value of each of `items` from what [`items_to`] queued: the field, or
/// while it is missing the older key's value.
pub(super) fn items_from(items: &[Item], values: Vec<Option<String>>) -> Vec<Option<String>> {
    let mut values = values.into_iter();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let mut value = values.next().flatten();
        if Key::legacy(item).is_some() {
            let old = values.next().flatten();
            value = value.or(old);
        }
        out.push(value);
    }
    out
}

/// A channel's seats hash, sorted by user id.
fn seats(raw: HashMap<String, String>) -> Result<Vec<(Id, Seat)>, StoreError> {
    let mut seats = Vec::with_capacity(raw.len());
    for (user, seat) in raw {
        seats.push((Id::parse(user).map_err(corrupt)?, parse::<Seat>(&seat)?));
    }
    seats.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(seats)
}

/// The seats a snapshot read: observers and named users as stored, and each
/// eligible manager (a field of the pool), sorted by user id.
fn known_seats(
    observers: HashMap<String, String>,
    named: HashMap<String, String>,
    eligible: Vec<String>,
) -> Result<Vec<(Id, Seat)>, StoreError> {
    let mut known: BTreeMap<Id, Seat> = BTreeMap::new();
    for manager in eligible {
        let seat = Seat {
            role: Role::Manager,
            receives_new_clients: true,
        };
        known.insert(Id::parse(manager).map_err(corrupt)?, seat);
    }
    for (user, seat) in seats(observers)?.into_iter().chain(seats(named)?) {
        known.insert(user, seat);
    }
    Ok(known.into_iter().collect())
}

/// A counter as stored.
fn number(raw: &str) -> Result<u64, StoreError> {
    raw.parse().map_err(corrupt)
}

/// The value of `item` from its stored JSON.
pub(super) fn decode(item: &Item, raw: &str) -> Result<ItemValue, StoreError> {
    Ok(match item {
        Item::Config => {
            return Err(StoreError::Corrupt(
                "the config counter is read on its own".into(),
            ));
        }
        Item::Settings => ItemValue::Settings(parse(raw)?),
        Item::Pipelines => ItemValue::Pipelines(parse(raw)?),
        Item::Channel(_) => ItemValue::Channel(parse(raw)?),
        Item::User(_) => ItemValue::User(parse(raw)?),
        Item::Chat(_) => ItemValue::Chat(parse(raw)?),
        Item::Contact(id) => ItemValue::Contact(compact::contact(id, raw)?),
        Item::Deal(id) => ItemValue::Deal(compact::deal(id, raw)?),
        Item::RoundRobin(_) => {
            return Err(StoreError::Corrupt(
                "a round-robin pool is read with its channel".into(),
            ));
        }
    })
}
