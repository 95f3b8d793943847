//! The write: `apply.lua` applies a plan's changes only if its guards still
//! hold, takes its round-robin turn if it has one, and records the event with
//! its outputs. Here a plan's domain [`Change`]s become Redis commands on the
//! account's keys, with their JSON values, sent as plain tokens (nothing for
//! the script to decode); a turn's variants go as shared texts and what each
//! fills in ([`super::turn`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use redis::Value as Reply;
use serde::{Deserialize, Serialize};

use super::compact::{contact_value, deal_value};
use super::keys::{AccountKeys, Key, bucket, bucket_of, chat_field, waiting_field};
use super::{Store, StoreError, corrupt, parse, within};
use crate::ids::Id;
use crate::model::Seat;
use crate::monitor::counters;
use crate::output::Outputs;
use crate::state::{Change, Item, Plan, TurnAdds};
use turn_input::turn_input;

/// What an applied event leaves behind: enough to repeat its effects on the
/// broker. Its outputs are compact (a fan-out keeps its text once), so the
/// record grows with the text plus a few ids per recipient.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(rename = "o")]
    pub outputs: Outputs,
    #[serde(rename = "q", default, skip_serializing_if = "Vec::is_empty")]
    pub declare_users: Vec<Id>,
}

impl Record {
    pub fn of(plan: &Plan) -> Self {
        Self {
            outputs: plan.outputs.clone(),
            declare_users: plan.declare_users.clone(),
        }
    }

    /// The record as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }
}

/// Result of [`Store::apply`].
pub enum Applied {
    /// Written now; with a round-robin turn, the manager who took it.
    Ok { manager: Option<Id> },
    /// Another delivery of the same event was applied first: here is its record.
    Already(Record),
    /// The state moved since the snapshot; decide again.
    Conflict,
}

/// One Redis command of a plan; members and fields are ids.
pub(super) enum Command {
    Set(Key, String),
    HSet(Key, Id, String),
    /// Sets the field only if it is absent.
    HSetNx(Key, Id, String),
    HDel(Key, Id),
    /// [`Command::HSet`] of a field that is not an id (a chat's).
    HSetField(Key, String, String),
    Del(Key),
    /// Adds (`add`) or removes a member of the set kept in a hash field as a
    /// JSON array (`lua/members.lua`); a field not yet written starts from the
    /// set at the older layout's key `old`, which goes.
    Member {
        key: Key,
        field: Id,
        member: Id,
        old: Key,
        add: bool,
    },
    Incr(Key),
}

impl Command {
    /// The commands of `change`, in order.
    pub(super) fn of(change: &Change) -> Vec<Command> {
        let one = match change {
            Change::ConfigChanged => Command::Incr(Key::Config),
            Change::SaveSettings(s) => Command::Set(Key::Settings, json(s)),
            Change::SavePipelines(p) => Command::Set(Key::Pipelines, json(p)),
            Change::SaveChannel(c) => Command::HSet(Key::Channels, c.channel_id.clone(), json(c)),
            Change::SaveUser(u) => Command::HSet(Key::Users, u.user_id.clone(), json(u)),
            Change::SaveSeat {
                channel,
                user,
                seat,
            } => return save_seat(channel, user, seat),
            Change::RemoveSeat { channel, user } => {
                return [Key::Seats, Key::Observers, Key::Pool]
                    .map(|key| Command::HDel(key(channel.clone()), user.clone()))
                    .into();
            }
            Change::SaveChat(chat, value) => {
                let field = chat_field(chat);
                return vec![
                    Command::HSetField(Key::Chats(bucket_of(&field)), field, json(value)),
                    Command::Del(Key::Chat(chat.clone())),
                ];
            }
            Change::SaveContact(c) => {
                let id = &c.contact_id;
                return vec![
                    Command::HSet(Key::Contacts(bucket(id)), id.clone(), contact_value(c)),
                    Command::Del(Key::Contact(id.clone())),
                ];
            }
            Change::SaveDeal(d) => {
                let id = &d.deal_id;
                return vec![
                    Command::HSet(Key::Deals(bucket(id)), id.clone(), deal_value(d)),
                    Command::Del(Key::Deal(id.clone())),
                ];
            }
            Change::LinkDeal { contact, deal } => return link(contact, deal, true),
            Change::UnlinkDeal { contact, deal } => return link(contact, deal, false),
            Change::SaveRoundRobin(channel, pool) => {
                let mut commands = vec![Command::Set(
                    Key::Turn(channel.clone()),
                    pool.turn.to_string(),
                )];
                for (manager, turn) in &pool.last {
                    commands.push(Command::HSet(
                        Key::Pool(channel.clone()),
                        manager.clone(),
                        turn.to_string(),
                    ));
                }
                return commands;
            }
            Change::MarkWaiting { channel, entry } => Command::HSet(
                Key::Waiting(channel.clone()),
                waiting_field(&entry.chat()),
                json(entry),
            ),
            Change::UnmarkWaiting { channel, chat } => {
                Command::HDel(Key::Waiting(channel.clone()), waiting_field(chat))
            }
            Change::Created(_) => return Vec::new(),
        };
        vec![one]
    }

    /// The command on a pipeline, as `apply.lua` would run it (for bulk loads).
    pub(super) fn add_to(&self, pipe: &mut redis::Pipeline, keys: &AccountKeys) {
        match self {
            Command::Set(k, v) => pipe.set(keys.key(k), v),
            Command::HSet(k, f, v) => pipe.hset(keys.key(k), f.as_str(), v),
            Command::HSetNx(k, f, v) => pipe.hset_nx(keys.key(k), f.as_str(), v),
            Command::HDel(k, f) => pipe.hdel(keys.key(k), f.as_str()),
            Command::HSetField(k, f, v) => pipe.hset(keys.key(k), f, v),
            Command::Del(k) => pipe.del(keys.key(k)),
            Command::Member {
                key,
                field,
                member,
                old,
                add,
            } => pipe
                .cmd("EVAL")
                .arg(MEMBER_SCRIPT)
                .arg(2)
                .arg(keys.key(key))
                .arg(keys.key(old))
                .arg(field.as_str())
                .arg(member.as_str())
                .arg(if *add { "1" } else { "0" }),
            Command::Incr(k) => pipe.incr(keys.key(k), 1),
        }
        .ignore();
    }

    /// The command's tokens as `apply.lua` reads them (its name, its key's
    /// index given by `slot`, its texts as they are), appended to `out`; an
    /// older-layout key known to be `absent` is `0`, no key.
    fn tokens(
        &self,
        absent: &HashSet<Key>,
        slot: &mut impl FnMut(&Key) -> usize,
        out: &mut Vec<String>,
    ) {
        // The name, the key, the texts after it, and the older key last.
        let (name, key, texts, old): (_, _, [Option<&str>; 2], _) = match self {
            Command::Set(k, v) => ("set", k, [Some(v.as_str()), None], None),
            Command::HSet(k, f, v) => ("hset", k, [Some(f.as_str()), Some(v.as_str())], None),
            Command::HSetNx(k, f, v) => ("hsetnx", k, [Some(f.as_str()), Some(v.as_str())], None),
            Command::HDel(k, f) => ("hdel", k, [Some(f.as_str()), None], None),
            Command::HSetField(k, f, v) => ("hset", k, [Some(f.as_str()), Some(v.as_str())], None),
            Command::Del(k) => ("del", k, [None, None], None),
            Command::Member {
                key,
                field,
                member,
                old,
                add,
            } => (
                if *add { "hsadd" } else { "hsrem" },
                key,
                [Some(field.as_str()), Some(member.as_str())],
                Some(old),
            ),
            Command::Incr(k) => ("incr", k, [None, None], None),
        };
        out.push(name.to_owned());
        out.push(slot(key).to_string());
        out.extend(texts.into_iter().flatten().map(str::to_owned));
        if let Some(old) = old {
            if absent.contains(old) {
                out.push("0".to_owned());
            } else {
                out.push(slot(old).to_string());
            }
        }
    }

    /// The command as JSON, its key given by `slot`: the reference its
    /// tokens are checked against.
    #[cfg(test)]
    fn to_json(&self, slot: &mut impl FnMut(&Key) -> usize) -> serde_json::Value {
        use serde_json::json;
        match self {
            Command::Set(k, v) => json!(["set", slot(k), v]),
            Command::HSet(k, f, v) => json!(["hset", slot(k), f.as_str(), v]),
            Command::HSetNx(k, f, v) => json!(["hsetnx", slot(k), f.as_str(), v]),
            Command::HDel(k, f) => json!(["hdel", slot(k), f.as_str()]),
            Command::HSetField(k, f, v) => json!(["hset", slot(k), f, v]),
            Command::Del(k) => json!(["del", slot(k)]),
            Command::Member {
                key,
                field,
                member,
                old,
                add,
            } => {
                let op = if *add { "hsadd" } else { "hsrem" };
                json!([op, slot(key), field.as_str(), member.as_str(), slot(old)])
            }
            Command::Incr(k) => json!(["incr", slot(k)]),
        }
    }
}

/// `lua/members.lua` alone, for bulk loads: KEYS the field's hash and the
/// older set, ARGV the field, the member and `1` to add.
const MEMBER_SCRIPT: &str = concat!(
    include_str!("lua/members.lua"),
    "change_members(KEYS[1], ARGV[1], ARGV[2], KEYS[2], ARGV[3] == '1')"
);

/// The deal in (`add`) or out of the contact's deals.
fn link(contact: &Id, deal: &Id, add: bool) -> Vec<Command> {
    vec![Command::Member {
        key: Key::DealLinks(bucket(contact)),
        field: contact.clone(),
        member: deal.clone(),
        old: Key::ContactDeals(contact.clone()),
        add,
    }]
}

/// A seat, and the channel's indexes kept with it: quality control and
/// supervisors in its observers, eligible managers in its pool (a manager who
/// stays keeps his last turn), nobody in both.
fn save_seat(channel: &Id, user: &Id, seat: &Seat) -> Vec<Command> {
    let (ch, user) = (channel.clone(), user.clone());
    let mut commands = vec![Command::HSet(
        Key::Seats(ch.clone()),
        user.clone(),
        json(seat),
    )];
    if seat.role.observes_all() {
        commands.push(Command::HSet(
            Key::Observers(ch.clone()),
            user.clone(),
            json(seat),
        ));
    } else {
        commands.push(Command::HDel(Key::Observers(ch.clone()), user.clone()));
    }
    if seat.eligible() {
        commands.push(Command::HSetNx(Key::Pool(ch), user, "0".into()));
    } else {
        commands.push(Command::HDel(Key::Pool(ch), user));
    }
    commands
}

/// The JSON a value is kept in.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

/// The tokens of `commands` for `apply.lua` (see [`Command::tokens`]),
/// appended to `out`, without the removal of an older-layout key known to be
/// `absent` ([`absent_older_keys`]).
pub(super) fn command_tokens(
    commands: impl IntoIterator<Item = Command>,
    absent: &HashSet<Key>,
    slot: &mut impl FnMut(&Key) -> usize,
    out: &mut Vec<String>,
) {
    for command in commands {
        if matches!(&command, Command::Del(key) if absent.contains(key)) {
            continue;
        }
        command.tokens(absent, slot, out);
    }
}

/// The tokens of `changes`' commands (see [`command_tokens`]).
fn change_tokens(
    changes: &[Change],
    absent: &HashSet<Key>,
    slot: &mut impl FnMut(&Key) -> usize,
) -> Vec<String> {
    let mut out = Vec::new();
    command_tokens(changes.iter().flat_map(Command::of), absent, slot, &mut out);
    out
}

/// The older-layout keys `plan` need not read nor remove, since they do not
/// exist when its guards hold:
/// - of an item guarded as absent: it had neither its field nor its older key
///   when the snapshot read it, and this version never writes an older key, so
///   while the field is still missing (which the guard checks) so is the key;
/// - of a contact or deal the plan creates ([`Change::Created`]), the
///   contact's older set of deals too.
pub(super) fn absent_older_keys(plan: &Plan) -> HashSet<Key> {
    let mut absent = HashSet::new();
    for guard in &plan.guards {
        if guard.expect.expected().is_none() {
            absent.extend(Key::legacy(&guard.item));
        }
    }
    let turn_changes = plan.turn.iter().flat_map(|turn| match &turn.adds {
        TurnAdds::Template { variant, .. } => variant.changes.iter().collect::<Vec<_>>(),
        TurnAdds::Variants(variants) => variants.iter().flat_map(|v| &v.changes).collect(),
    });
    for change in plan.changes.iter().chain(turn_changes) {
        if let Change::Created(item) = change {
            absent.extend(Key::legacy(item));
            if let Item::Contact(id) = item {
                absent.insert(Key::ContactDeals(id.clone()));
            }
        }
    }
    absent
}

/// The arguments of `apply.lua` for `plan`, plain tokens (see the script),
/// and the key names it touches (the event's record first). Older-layout
/// keys known to be absent ([`absent_older_keys`]) are neither read nor
/// removed.
fn script_input(
    keys: &AccountKeys,
    event_id: &Id,
    plan: &Plan,
    ttl: u64,
) -> (Vec<String>, Vec<String>) {
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut names = vec![keys.event(event_id)];
    let mut slot = |key: &Key| -> usize {
        *index.entry(key.clone()).or_insert_with(|| {
            names.push(keys.key(key));
            names.len()
        })
    };
    let absent = absent_older_keys(plan);
    let mut args = Vec::with_capacity(8 + 5 * plan.guards.len() + 8 * plan.changes.len());
    args.push(ttl.to_string());
    args.push(plan.guards.len().to_string());
    for guard in &plan.guards {
        let (key, field) = Key::of(&guard.item);
        args.push(slot(&key).to_string());
        args.push(field.map(Cow::into_owned).unwrap_or_default());
        match Key::legacy(&guard.item).filter(|old| !absent.contains(old)) {
            Some(old) => args.push(slot(&old).to_string()),
            None => args.push("0".to_owned()),
        }
        match guard.expect.expected() {
            Some(e) => {
                args.push("1".to_owned());
                args.push(e.to_owned());
            }
            None => {
                args.push("0".to_owned());
                args.push(String::new());
            }
        }
    }
    let count = args.len();
    args.push(String::new());
    command_tokens(
        plan.changes.iter().flat_map(Command::of),
        &absent,
        &mut slot,
        &mut args,
    );
    args[count] = (args.len() - count - 1).to_string();
    match &plan.turn {
        None => {
            args.push("r".to_owned());
            args.push(Record::of(plan).to_json());
        }
        Some(turn) => {
            args.push("t".to_owned());
            turn_input(plan, turn, &absent, &mut slot, &mut args);
        }
    }
    (names, args)
}

impl Store {
    /// Applies `plan` for the event if its guards hold, recording its outputs.
    pub async fn apply(
        &self,
        account: &Id,
        event_id: &Id,
        plan: &Plan,
    ) -> Result<Applied, StoreError> {
        within(self.apply_now(account, event_id, plan)).await
    }

    async fn apply_now(
        &self,
        account: &Id,
        event_id: &Id,
        plan: &Plan,
    ) -> Result<Applied, StoreError> {
        let keys = self.keys(account);
        let ttl = self.event_ttl.as_secs().max(1);
        let (names, args) = script_input(&keys, event_id, plan, ttl);
        let mut invocation = super::eval::Eval::new(&self.apply, &names);
        for arg in &args {
            invocation.arg(arg);
        }
        let mut conn = self.backend.get().await?;
        counters::redis_round_trip("apply");
        let value: Reply = invocation.run(&mut conn).await?;
        let mut items = array(value)?.into_iter();
        match string(items.next())?.as_deref() {
            Some("ok") => {
                let manager = string(items.next())?
                    .map(|m| Id::parse(m).map_err(corrupt))
                    .transpose()?;
                self.backend.replicate(&names[0]).await?;
                Ok(Applied::Ok { manager })
            }
            Some("conflict") => Ok(Applied::Conflict),
            Some("applied") => Ok(Applied::Already(parse(
                &string(items.next())?.unwrap_or_default(),
            )?)),
            other => Err(StoreError::Corrupt(format!("apply.lua answered {other:?}"))),
        }
    }
}

fn array(value: Reply) -> Result<Vec<Reply>, StoreError> {
    match value {
        Reply::Array(items) => Ok(items),
        Reply::Nil => Ok(Vec::new()),
        other => Err(StoreError::Corrupt(format!(
            "expected an array, got {other:?}"
        ))),
    }
}

fn string(value: Option<Reply>) -> Result<Option<String>, StoreError> {
    match value {
        None | Some(Reply::Nil) => Ok(None),
        Some(Reply::BulkString(bytes)) => String::from_utf8(bytes).map(Some).map_err(corrupt),
        Some(Reply::SimpleString(s)) => Ok(Some(s)),
        Some(other) => Err(StoreError::Corrupt(format!(
            "expected a string, got {other:?}"
        ))),
    }
}

mod turn_input;

#[cfg(test)]
mod tests;
