//! The reads: an account event's items (one MULTI/EXEC pipeline), a channel's
//! state (`channel.lua`) and a chat event's snapshot (`snapshot.lua`), each at
//! one instant, each decoded from Redis's JSON into the domain's values.
//! `channel.lua` answers one JSON object, decoded by name; `snapshot.lua`, on
//! every chat event, answers its stored values as they are, each behind a tag
//! byte ([`Fields`]), so none is escaped by the script and decoded twice here.
//! Both scripts start with `layout.lua`, which builds the channel indexes of
//! older accounts.

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
        let mut conn = self.backend.get().await?;
        counters::redis_round_trip("snapshot");
        let raw: String = invocation.run(&mut conn).await?;
        snapshot_from(&raw)
    }
}

/// The tags of `snapshot.lua`'s reply: control characters that are not JSON's
/// whitespace, so no stored value holds one (JSON escapes them in strings, and
/// ids refuse them).
mod tag {
    pub const APPLIED: u8 = 1;
    pub const CONFIG: u8 = 2;
    pub const SETTINGS: u8 = 3;
    pub const CHANNEL: u8 = 4;
    pub const USER: u8 = 5;
    pub const CHAT: u8 = 6;
    pub const CONTACT: u8 = 7;
    pub const ELIGIBLE: u8 = 8;
    pub const OBSERVER: u8 = 14;
    pub const NAMED: u8 = 15;
    pub const DEAL: u8 = 16;
    pub const VALUE: u8 = 17;

    /// Whether `b` starts a field.
    pub fn is_tag(b: u8) -> bool {
        b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')
    }
}

/// A snapshot (or the record of an earlier application) from `snapshot.lua`'s
/// reply: one string of fields, each a [`tag`] byte and the value as stored.
fn snapshot_from(raw: &str) -> Result<Loaded<ChatSnapshot>, StoreError> {
    if let Some(record) = raw.strip_prefix(char::from(tag::APPLIED)) {
        return Ok(Loaded::Applied(parse(record)?));
    }
    let mut config = None;
    let mut settings = None;
    let mut channel = None;
    let mut user = None;
    let mut chat = None;
    let mut contact = None;
    let mut observers = Vec::new();
    let mut named = Vec::new();
    let mut eligible = Vec::new();
    let mut deals = Vec::new();
    let mut fields = Fields(raw);
    while let Some((t, value)) = fields.next_field()? {
        match t {
            tag::CONFIG => config = Some(value),
            tag::SETTINGS => settings = Some(value),
            tag::CHANNEL => channel = Some(value),
            tag::USER => user = Some(value),
            tag::CHAT => chat = Some(value),
            tag::CONTACT => contact = Some(value),
            tag::ELIGIBLE => eligible.push(value),
            tag::OBSERVER => observers.push((value, fields.paired()?)),
            tag::NAMED => named.push((value, fields.paired()?)),
            tag::DEAL => {
                let id = Id::parse(value).map_err(corrupt)?;
                deals.push(compact::deal(&id, fields.paired()?)?);
            }
            other => {
                return Err(StoreError::Corrupt(format!(
                    "the snapshot has a field tagged {other}"
                )));
            }
        }
    }
    let chat: Stored<Chat> = stored(chat.map(str::to_owned))?;
    let contact = stored_contact(&chat, contact.map(str::to_owned))?;
    Ok(Loaded::Fresh(ChatSnapshot {
        config: Version::stored(config.map(str::to_owned)),
        settings: settings.map(parse).transpose()?,
        channel: channel.map(parse).transpose()?,
        seats: known_seats(observers, named, eligible)?,
        chat,
        contact,
        user: user.map(parse).transpose()?,
        deals,
    }))
}

/// The fields of `snapshot.lua`'s reply, one after another: a [`tag`] byte,
/// then the value up to the next tag.
struct Fields<'a>(&'a str);

impl<'a> Fields<'a> {
    /// The next field's tag and value; `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u8, &'a str)>, StoreError> {
        let rest = self.0.as_bytes();
        let Some(&t) = rest.first() else {
            return Ok(None);
        };
        if !tag::is_tag(t) {
            return Err(StoreError::Corrupt(
                "the snapshot's reply does not start with a field".into(),
            ));
        }
        let end = rest[1..]
            .iter()
            .position(|&b| tag::is_tag(b))
            .map_or(rest.len(), |at| at + 1);
        // Tags are ASCII, so both ends are character boundaries.
        let value = &self.0[1..end];
        self.0 = &self.0[end..];
        Ok(Some((t, value)))
    }

    /// The value ([`tag::VALUE`]) that goes with the field just read.
    fn paired(&mut self) -> Result<&'a str, StoreError> {
        match self.next_field()? {
            Some((tag::VALUE, value)) => Ok(value),
            _ => Err(StoreError::Corrupt(
                "the snapshot's reply lacks a field's value".into(),
            )),
        }
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

/// A channel's seats (user id, stored seat), sorted by user id.
fn seats<S: AsRef<str>>(
    raw: impl IntoIterator<Item = (S, S)>,
) -> Result<Vec<(Id, Seat)>, StoreError> {
    let raw = raw.into_iter();
    let mut seats = Vec::with_capacity(raw.size_hint().0);
    for (user, seat) in raw {
        let user = Id::parse(user.as_ref()).map_err(corrupt)?;
        seats.push((user, parse::<Seat>(seat.as_ref())?));
    }
    seats.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(seats)
}

/// The seats a snapshot read: observers and named users as stored, and each
/// eligible manager (a field of the pool), sorted by user id. A named user's
/// seat wins over the same user's as an observer.
fn known_seats(
    observers: Vec<(&str, &str)>,
    named: Vec<(&str, &str)>,
    eligible: Vec<&str>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as `snapshot.lua` writes it: each value behind its tag.
    fn reply(fields: &[(u8, &str)]) -> String {
        let mut out = String::new();
        for (t, value) in fields {
            out.push(char::from(*t));
            out.push_str(value);
        }
        out
    }

    #[test]
    fn fields_run_from_their_tag_to_the_next() {
        let pretty = "{\n\t\"a\": \"Мария\"\r\n}";
        let raw = reply(&[(tag::CHAT, pretty), (tag::ELIGIBLE, ""), (tag::CONFIG, "7")]);
        let mut fields = Fields(&raw);
        assert_eq!(fields.next_field().unwrap(), Some((tag::CHAT, pretty)));
        assert_eq!(fields.next_field().unwrap(), Some((tag::ELIGIBLE, "")));
        assert_eq!(fields.next_field().unwrap(), Some((tag::CONFIG, "7")));
        assert_eq!(fields.next_field().unwrap(), None);
    }

    #[test]
    fn the_snapshot_is_read_from_its_fields() {
        let seat = |role: &str| format!("{{\"role\":\"{role}\",\"receivesNewClients\":false}}");
        let qc = seat("quality_control");
        let manager = seat("manager");
        let raw = reply(&[
            (tag::CONFIG, "4"),
            (tag::OBSERVER, "qc"),
            (tag::VALUE, &qc),
            (tag::CHAT, "{\"contactId\":\"c1\"}"),
            (tag::CONTACT, "[\"Мария\",\"m1\",[]]"),
            (tag::DEAL, "d1"),
            (tag::VALUE, "[\"deal\",[\"c1\"],\"m1\",\"p\",\"s\"]"),
            (tag::NAMED, "m1"),
            (tag::VALUE, &manager),
            (tag::ELIGIBLE, "m2"),
        ]);
        let Loaded::Fresh(snapshot) = snapshot_from(&raw).unwrap() else {
            panic!("not fresh");
        };
        assert_eq!(snapshot.config.expected(), Some("4"));
        assert_eq!(
            snapshot.chat.version.expected(),
            Some("{\"contactId\":\"c1\"}")
        );
        let contact = snapshot.contact.value.unwrap();
        assert_eq!(
            (contact.name.as_str(), contact.responsible_user_id.as_str()),
            ("Мария", "m1")
        );
        assert_eq!(snapshot.deals.len(), 1);
        assert_eq!(snapshot.deals[0].deal_id.as_str(), "d1");
        let seats: Vec<(&str, Role, bool)> = snapshot
            .seats
            .iter()
            .map(|(id, s)| (id.as_str(), s.role, s.receives_new_clients))
            .collect();
        assert_eq!(
            seats,
            [
                ("m1", Role::Manager, false),
                ("m2", Role::Manager, true),
                ("qc", Role::QualityControl, false),
            ]
        );
        assert!(
            snapshot.settings.is_none() && snapshot.channel.is_none() && snapshot.user.is_none()
        );
    }

    #[test]
    fn an_applied_record_is_the_rest_of_the_reply() {
        let record = super::super::apply::Record {
            outputs: crate::output::Outputs(Vec::new()),
            declare_users: Vec::new(),
        };
        let raw = format!("\u{1}{}", record.to_json());
        assert!(matches!(snapshot_from(&raw), Ok(Loaded::Applied(_))));
        let Err(err) = snapshot_from("\u{1}{\"o\":") else {
            panic!("a cut record was read");
        };
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn a_reply_out_of_shape_is_corrupt() {
        for raw in [
            "{\"chat\":\"x\"}".to_owned(),                       // JSON, not fields
            reply(&[(tag::OBSERVER, "qc")]),                     // no seat
            reply(&[(tag::NAMED, "m1"), (tag::ELIGIBLE, "m2")]), // a seat of another kind
            reply(&[(tag::DEAL, "d1")]),                         // no deal
            reply(&[(31, "x")]),                                 // an unknown tag
            reply(&[(tag::CHAT, "{\"contactId\":")]),            // a chat cut short
        ] {
            let Err(err) = snapshot_from(&raw) else {
                panic!("{raw:?} was read");
            };
            assert!(matches!(err, StoreError::Corrupt(_)), "{raw:?}: {err:?}");
        }
    }
}
