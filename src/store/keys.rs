//! The Redis key layout: where each [`Item`] of the state lives, and the keys
//! only the store knows (a channel's seats, its indexes of observers and
//! eligible managers, its waiting index, a contact's deals).
//!
//! Every key of an account is `{prefix}:{{account}}:...`: the escaped account id
//! inside braces is the Redis Cluster hash tag, so all keys of one account share
//! one slot and each script runs unchanged on a cluster. Ids are escaped (see
//! [`Id::key_part`]), so no `{`, `}` or `:` in an id can move the tag or split a
//! key. `lua/snapshot.lua`, `lua/channel.lua` and `lua/layout.lua` build chat,
//! contact, deal and channel keys the same way.
//!
//! Chats, contacts, deals and the deals of each contact are fields of bucketed
//! hashes (`chats:<b>`, `contacts:<b>`, `deals:<b>`, `deal-links:<b>`, `b` = [`bucket`] of the
//! id): a hash of a few hundred short fields is one compact listpack in Redis,
//! where a key per contact costs about 100 bytes of its own. The key per
//! contact, per deal and per contact's deal set of the older layout
//! ([`Key::Contact`], [`Key::Deal`], [`Key::ContactDeals`]) is still read
//! while the field is missing, and deleted when the field is written.

use std::borrow::Cow;

use crate::ids::Id;
use crate::model::ChatRef;
use crate::output::derive_id;
use crate::state::Item;

/// One Redis key of an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Counter bumped by every change of channels, users, pipelines or settings.
    Config,
    /// Hash: channelId -> [`crate::model::Channel`].
    Channels,
    /// Hash: userId -> [`crate::model::User`].
    Users,
    /// Hash of one channel: userId -> [`crate::model::Seat`], every user with access.
    Seats(Id),
    /// Hash of one channel: userId -> [`crate::model::Seat`] of its quality
    /// control and supervisors only (who see every chat), kept with the seats.
    Observers(Id),
    /// Hash of one channel's round-robin pool: every eligible manager (a
    /// manager who takes new clients) -> the turn of his last new client, `0`
    /// for never. Kept with the seats; `apply.lua` takes the turns.
    Pool(Id),
    /// Counter of one channel's round-robin turns (the last turn given).
    Turn(Id),
    /// The account's key layout version: the indexes above exist for every
    /// channel once it says `2` (`lua/layout.lua` builds them for older data).
    Layout,
    /// The account's pipelines.
    Pipelines,
    /// The account's [`crate::model::Settings`].
    Settings,
    /// Hash: [`chat_field`] -> [`crate::model::Chat`], for the chats of one [`bucket_of`].
    Chats(u16),
    /// Older layout: one chat's [`crate::model::Chat`] (read while its field is missing).
    Chat(ChatRef),
    /// Hash: contactId -> compact contact ([`super::compact`]), for the ids of one [`bucket`].
    Contacts(u16),
    /// Hash: dealId -> compact deal ([`super::compact`]), for the ids of one [`bucket`].
    Deals(u16),
    /// Hash: contactId -> JSON array of its deal ids, for the contact ids of one [`bucket`].
    DealLinks(u16),
    /// Older layout: one contact's JSON (read while its field is missing).
    Contact(Id),
    /// Older layout: one deal's JSON (read while its field is missing).
    Deal(Id),
    /// Older layout: set of the deal ids of one contact.
    ContactDeals(Id),
    /// Hash of one channel: the chats waiting there to be claimed,
    /// [`waiting_field`] -> [`crate::model::WaitingEntry`].
    Waiting(Id),
}

impl Key {
    /// Where `item` lives: its key, and its field when the key is a hash.
    pub fn of(item: &Item) -> (Key, Option<Cow<'_, str>>) {
        match item {
            Item::Config => (Key::Config, None),
            Item::Settings => (Key::Settings, None),
            Item::Pipelines => (Key::Pipelines, None),
            Item::Channel(id) => (Key::Channels, Some(id.as_str().into())),
            Item::User(id) => (Key::Users, Some(id.as_str().into())),
            Item::Chat(chat) => {
                let field = chat_field(chat);
                (Key::Chats(bucket_of(&field)), Some(field.into()))
            }
            Item::Contact(id) => (Key::Contacts(bucket(id)), Some(id.as_str().into())),
            Item::Deal(id) => (Key::Deals(bucket(id)), Some(id.as_str().into())),
            // The pool changes only through its turns: its guard is the counter.
            Item::RoundRobin(id) => (Key::Turn(id.clone()), None),
        }
    }
}

impl Key {
    /// Where `item` lived in the older layout, when it moved: read while its
    /// field is missing, deleted when the field is written.
    pub fn legacy(item: &Item) -> Option<Key> {
        match item {
            Item::Chat(chat) => Some(Key::Chat(chat.clone())),
            Item::Contact(id) => Some(Key::Contact(id.clone())),
            Item::Deal(id) => Some(Key::Deal(id.clone())),
            _ => None,
        }
    }
}

/// How many buckets contacts, deals and deal links of an account are spread
/// over. Fixed, so an id's bucket never changes: a million contacts make
/// about 244 fields a bucket, under Redis's default `hash-max-listpack-entries`
/// (512), so the hashes stay compact listpacks (while every value stays under
/// `hash-max-listpack-value`, 64 bytes).
pub const BUCKETS: u32 = 4096;

/// The bucket of an id: the first 4 bytes of its SHA-1 (big-endian) modulo
/// [`BUCKETS`], as `lua/layout.lua` computes it with `redis.sha1hex`.
pub fn bucket(id: &Id) -> u16 {
    bucket_of(id.as_str())
}

/// The bucket of any field (a chat's is [`chat_field`]).
pub fn bucket_of(field: &str) -> u16 {
    let digest = <sha1::Sha1 as sha1::Digest>::digest(field.as_bytes());
    let head = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (head % BUCKETS) as u16
}

/// The field of a chat in its bucket of [`Key::Chats`]: `<type>:<chatId>`,
/// unescaped (a field holds any bytes).
pub fn chat_field(chat: &ChatRef) -> String {
    let (kind, id) = (chat.chat_type.as_str(), chat.chat_id.as_str());
    let mut field = String::with_capacity(kind.len() + 1 + id.len());
    field.push_str(kind);
    field.push(':');
    field.push_str(id);
    field
}

/// The field of a chat in its channel's waiting index.
pub fn waiting_field(chat: &ChatRef) -> Id {
    derive_id(&["waiting", chat.chat_type.as_str(), chat.chat_id.as_str()])
}

/// Keys of one account.
#[derive(Debug, Clone)]
pub struct AccountKeys {
    base: String,
}

impl AccountKeys {
    pub fn new(prefix: &str, account: &Id) -> Self {
        let mut base = String::with_capacity(prefix.len() + account.as_str().len() + 4);
        base.push_str(prefix);
        base.push_str(":{");
        account.push_key_part(&mut base);
        base.push_str("}:");
        Self { base }
    }

    /// The common start of every key of the account.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn event(&self, event_id: &Id) -> String {
        self.with_id("event:", event_id)
    }

    pub fn key(&self, key: &Key) -> String {
        match key {
            Key::Config => self.with("config"),
            Key::Channels => self.with("channels"),
            Key::Users => self.with("users"),
            Key::Seats(channel) => self.with_id("seats:", channel),
            Key::Pipelines => self.with("pipelines"),
            Key::Settings => self.with("settings"),
            Key::Chat(chat) => {
                let kind = chat.chat_type.as_str();
                let mut key =
                    self.sized("chat:".len() + kind.len() + 1 + chat.chat_id.as_str().len());
                key.push_str("chat:");
                key.push_str(kind);
                key.push(':');
                chat.chat_id.push_key_part(&mut key);
                key
            }
            Key::Chats(n) => self.with_bucket("chats:", *n),
            Key::Contacts(n) => self.with_bucket("contacts:", *n),
            Key::Deals(n) => self.with_bucket("deals:", *n),
            Key::DealLinks(n) => self.with_bucket("deal-links:", *n),
            Key::Contact(id) => self.with_id("contact:", id),
            Key::Deal(id) => self.with_id("deal:", id),
            Key::ContactDeals(id) => self.with_id("contact-deals:", id),
            Key::Observers(channel) => self.with_id("observers:", channel),
            Key::Pool(channel) => self.with_id("pool:", channel),
            Key::Turn(channel) => self.with_id("turn:", channel),
            Key::Layout => self.with("layout"),
            Key::Waiting(channel) => self.with_id("waiting:", channel),
        }
    }

    /// The base in a string with room for `tail` more bytes.
    fn sized(&self, tail: usize) -> String {
        let mut key = String::with_capacity(self.base.len() + tail);
        key.push_str(&self.base);
        key
    }

    /// `{base}{name}`.
    fn with(&self, name: &str) -> String {
        let mut key = self.sized(name.len());
        key.push_str(name);
        key
    }

    /// `{base}{head}{id escaped}`, sized for an id that needs no escaping.
    fn with_id(&self, head: &str, id: &Id) -> String {
        let mut key = self.sized(head.len() + id.as_str().len());
        key.push_str(head);
        id.push_key_part(&mut key);
        key
    }

    /// `{base}{head}{n}`, `n` in decimal.
    fn with_bucket(&self, head: &str, n: u16) -> String {
        let mut key = self.sized(head.len() + 5);
        key.push_str(head);
        push_decimal(&mut key, n);
        key
    }
}

/// Appends `n` in decimal, as `format!("{n}")` writes it.
fn push_decimal(out: &mut String, n: u16) {
    let mut digits = [0u8; 5];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::escape;
    use crate::model::{ChatRef, ChatType};

    /// The slot-deciding hash tag as Redis Cluster finds it: the text between the
    /// first `{` and the first `}` after it.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = open + key[open..].find('}').unwrap();
        &key[open + 1..close]
    }

    #[test]
    fn every_key_of_an_account_has_its_tag() {
        let account = Id::parse("acc {x}:*").unwrap();
        let keys = AccountKeys::new("sb", &account);
        let weird = Id::parse("}{: *é").unwrap();
        let all = [
            keys.event(&weird),
            keys.key(&Key::Chat(ChatRef {
                chat_type: ChatType::Vk,
                chat_id: weird.clone(),
            })),
            keys.key(&Key::Contact(weird.clone())),
            keys.key(&Key::Seats(weird.clone())),
            keys.key(&Key::Observers(weird.clone())),
            keys.key(&Key::Pool(weird.clone())),
            keys.key(&Key::Turn(weird.clone())),
            keys.key(&Key::Layout),
            keys.key(&Key::Contacts(bucket(&weird))),
            keys.key(&Key::Deals(7)),
            keys.key(&Key::DealLinks(BUCKETS as u16 - 1)),
        ];
        for key in &all {
            assert_eq!(hash_tag(key), account.key_part(), "{key}");
        }
    }

    /// Every key as the `format!` of the layout writes it.
    #[test]
    fn keys_are_the_layout() {
        let account = Id::parse("acc {x}:*").unwrap();
        let keys = AccountKeys::new("sb", &account);
        let b = "sb:{acc%20%7Bx%7D%3A%2A}:";
        assert_eq!(keys.base(), b);
        assert_eq!(
            AccountKeys::new("p", &Id::parse("plain").unwrap()).base(),
            "p:{plain}:"
        );
        let chat_ref = ChatRef {
            chat_type: ChatType::Vk,
            chat_id: Id::parse("c:1").unwrap(),
        };
        assert_eq!(chat_field(&chat_ref), "vk:c:1");
        let id = |s: &str| Id::parse(s).unwrap();
        let chat = |raw: &str| {
            Key::Chat(ChatRef {
                chat_type: ChatType::Vk,
                chat_id: id(raw),
            })
        };
        let mut cases = vec![
            (Key::Config, format!("{b}config")),
            (Key::Channels, format!("{b}channels")),
            (Key::Users, format!("{b}users")),
            (Key::Pipelines, format!("{b}pipelines")),
            (Key::Settings, format!("{b}settings")),
            (Key::Layout, format!("{b}layout")),
        ];
        for n in [0u16, 7, 10, 99, 100, 4095, u16::MAX] {
            cases.push((Key::Chats(n), format!("{b}chats:{n}")));
            cases.push((Key::Contacts(n), format!("{b}contacts:{n}")));
            cases.push((Key::Deals(n), format!("{b}deals:{n}")));
            cases.push((Key::DealLinks(n), format!("{b}deal-links:{n}")));
        }
        for raw in ["plain-1", "}{: *é", "a.b%c"] {
            let e = escape(raw);
            cases.push((chat(raw), format!("{b}chat:vk:{e}")));
            cases.push((Key::Seats(id(raw)), format!("{b}seats:{e}")));
            cases.push((Key::Observers(id(raw)), format!("{b}observers:{e}")));
            cases.push((Key::Pool(id(raw)), format!("{b}pool:{e}")));
            cases.push((Key::Turn(id(raw)), format!("{b}turn:{e}")));
            cases.push((Key::Waiting(id(raw)), format!("{b}waiting:{e}")));
            cases.push((Key::Contact(id(raw)), format!("{b}contact:{e}")));
            cases.push((Key::Deal(id(raw)), format!("{b}deal:{e}")));
            cases.push((Key::ContactDeals(id(raw)), format!("{b}contact-deals:{e}")));
            assert_eq!(keys.event(&id(raw)), format!("{b}event:{e}"));
        }
        for (key, expected) in cases {
            assert_eq!(keys.key(&key), expected, "{key:?}");
        }
    }

    /// The bucket is the one `lua/layout.lua` finds (`redis.sha1hex`), pinned
    /// on values computed there.
    #[test]
    fn buckets_are_stable() {
        let id = |s| Id::parse(s).unwrap();
        assert_eq!(bucket(&id("abc")), (0xa9993e36u32 % BUCKETS) as u16);
        assert!(bucket(&id("bulk-contact-1")) < BUCKETS as u16);
    }
}
