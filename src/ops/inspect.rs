//! `switchboard inspect chat|account`: what Switchboard holds in Redis for a
//! chat or an account, read with plain GET/HGETALL/SMEMBERS (never a write).
//!
//! The values are the JSON of `crate::model`, read back into those types, so a
//! view shows exactly what the decisions see. Reads of one view are separate
//! requests, not one snapshot: on a busy account two of them may straddle a
//! change. The text form is in `inspect_text`.

use std::collections::BTreeMap;

use super::RedisConn;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{OpsError, within};
use crate::handlers::routing::{eligible, next_in_turn};
use crate::ids::Id;
use crate::model::{
    Channel, Chat, ChatRef, ChatType, Contact, Deal, Pipeline, RoundRobin, Seat, Settings, User,
};

use crate::state::Item;
use crate::store::{AccountKeys, Key, bucket, compact};

/// A chat: its contact, the contact's deals and the chat's claim state.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatView {
    pub account_id: Id,
    pub chat: ChatRef,
    /// `None`: Switchboard never saw this chat.
    pub state: Option<Chat>,
    pub contact: Option<Contact>,
    pub deals: Vec<Deal>,
    /// The account's users by id, for names and access.
    pub users: BTreeMap<Id, User>,
}

/// An account: channels with their users and round robin, pipelines, settings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub account_id: Id,
    /// Set-up changes applied so far; `None`: nothing is known of the account.
    pub config: Option<u64>,
    pub channels: Vec<ChannelView>,
    pub users: Vec<User>,
    pub pipelines: Vec<Pipeline>,
    pub settings: Option<Settings>,
    /// With `--waiting`: chats waiting to be claimed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Vec<(ChatRef, Chat)>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    pub channel: Channel,
    pub seats: BTreeMap<Id, Seat>,
    pub round_robin: RoundRobin,
    /// Who gets the next new client under round robin.
    pub next_in_turn: Option<Id>,
}

/// Parses a chat type as the contract spells it.
pub fn chat_type(raw: &str) -> Result<ChatType, OpsError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned())).map_err(|_| {
        OpsError::Input(format!(
            "unknown chat type {raw:?}: use whatsapp, telegram, instagram, vk, viber or avito"
        ))
    })
}

pub async fn chat(
    redis: &mut RedisConn,
    prefix: &str,
    account: &Id,
    chat: ChatRef,
) -> Result<ChatView, OpsError> {
    let keys = AccountKeys::new(prefix, account);
    let state: Option<Chat> = match stored(redis, &keys, &Item::Chat(chat.clone())).await? {
        Some(raw) => Some(
            serde_json::from_str(&raw)
                .map_err(|e| OpsError::Corrupt(format!("chat {}: {e}", chat.chat_id)))?,
        ),
        None => None,
    };
    let mut contact = None;
    let mut deals = Vec::new();
    if let Some(contact_id) = state.as_ref().and_then(|c| c.contact_id.clone()) {
        let item = Item::Contact(contact_id.clone());
        if let Some(raw) = stored(redis, &keys, &item).await? {
            contact = Some(
                compact::contact(&contact_id, &raw)
                    .map_err(|e| OpsError::Corrupt(format!("contact {contact_id}: {e}")))?,
            );
        }
        for id in deal_ids(redis, &keys, &contact_id).await? {
            if let Some(raw) = stored(redis, &keys, &Item::Deal(id.clone())).await? {
                deals.push(
                    compact::deal(&id, &raw)
                        .map_err(|e| OpsError::Corrupt(format!("deal {id}: {e}")))?,
                );
            }
        }
        deals.sort_by(|a, b| (a.closed, &a.deal_id).cmp(&(b.closed, &b.deal_id)));
    }
    let users = hash::<User>(redis, &keys.key(&Key::Users)).await?;
    Ok(ChatView {
        account_id: account.clone(),
        chat,
        state,
        contact,
        deals,
        users,
    })
}

pub async fn account(
    redis: &mut RedisConn,
    prefix: &str,
    account: &Id,
    waiting: bool,
) -> Result<AccountView, OpsError> {
    let keys = AccountKeys::new(prefix, account);
    let config: Option<u64> = within(
        "GET",
        redis::cmd("GET")
            .arg(keys.key(&Key::Config))
            .query_async(redis),
    )
    .await?;
    let mut channels = Vec::new();
    for (_, channel) in hash::<Channel>(redis, &keys.key(&Key::Channels)).await? {
        let seats = hash::<Seat>(redis, &keys.key(&Key::Seats(channel.channel_id.clone()))).await?;
        let round_robin = RoundRobin {
            turn: get(redis, &keys.key(&Key::Turn(channel.channel_id.clone())))
                .await?
                .unwrap_or(0),
            last: hash(redis, &keys.key(&Key::Pool(channel.channel_id.clone()))).await?,
        };
        let seat_list: Vec<(Id, Seat)> = seats.iter().map(|(id, s)| (id.clone(), *s)).collect();
        let next = next_in_turn(&eligible(&seat_list), &round_robin);
        channels.push(ChannelView {
            channel,
            seats,
            round_robin,
            next_in_turn: next,
        });
    }
    let users = hash::<User>(redis, &keys.key(&Key::Users))
        .await?
        .into_values()
        .collect();
    let pipelines = get(redis, &keys.key(&Key::Pipelines))
        .await?
        .unwrap_or_default();
    let settings = get(redis, &keys.key(&Key::Settings)).await?;
    let waiting = if waiting {
        Some(waiting_chats(redis, &keys).await?)
    } else {
        None
    };
    Ok(AccountView {
        account_id: account.clone(),
        config,
        channels,
        users,
        pipelines,
        settings,
        waiting,
    })
}

/// Chats of the account waiting to be claimed: a SCAN over the whole keyspace
/// (on a cluster, of every master; cost grows with the database, not the
/// account), so only on request.
async fn waiting_chats(
    redis: &mut RedisConn,
    keys: &AccountKeys,
) -> Result<Vec<(ChatRef, Chat)>, OpsError> {
    let pattern = format!("{}chat:*", keys.base());
    let mut scan = redis.scan(&pattern).await?;
    let mut found = Vec::new();
    while let Some(batch) = scan.next(redis).await? {
        for key in batch {
            let Some(chat) = get::<Chat>(redis, &key).await? else {
                continue;
            };
            if chat.pending.is_none() {
                continue;
            }
            if let Some(chat_ref) = chat_ref_of(&key[keys.base().len()..]) {
                found.push((chat_ref, chat));
            }
        }
    }
    // Chats in their buckets (`chats:<b>`, fields `<type>:<chatId>`).
    let pattern = format!("{}chats:*", keys.base());
    let mut scan = redis.scan(&pattern).await?;
    while let Some(batch) = scan.next(redis).await? {
        for key in batch {
            for (field, chat) in hash_fields::<Chat>(redis, &key).await? {
                let Some((chat_type, chat_id)) = field.split_once(':') else {
                    continue;
                };
                let (Ok(chat_type), Ok(chat_id)) = (self::chat_type(chat_type), Id::parse(chat_id))
                else {
                    continue;
                };
                if chat.pending.is_some() {
                    found.push((ChatRef { chat_type, chat_id }, chat));
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// `chat:<type>:<escaped id>` back to the chat.
fn chat_ref_of(rest: &str) -> Option<ChatRef> {
    let mut parts = rest.strip_prefix("chat:")?.splitn(2, ':');
    let chat_type = chat_type(parts.next()?).ok()?;
    let chat_id = Id::parse(super::unescape_key_part(parts.next()?)?).ok()?;
    Some(ChatRef { chat_type, chat_id })
}

/// The stored value of a contact or deal: its field, or while the field is
/// missing its key of the older layout.
async fn stored(
    redis: &mut RedisConn,
    keys: &AccountKeys,
    item: &Item,
) -> Result<Option<String>, OpsError> {
    let (key, field) = Key::of(item);
    let field = field.unwrap_or_default();
    let hget = redis::cmd("HGET")
        .arg(keys.key(&key))
        .arg(field.as_ref())
        .clone();
    let raw: Option<String> = within("HGET", hget.query_async(redis)).await?;
    match (raw, Key::legacy(item)) {
        (None, Some(old)) => {
            within(
                "GET",
                redis::cmd("GET").arg(keys.key(&old)).query_async(redis),
            )
            .await
        }
        (raw, _) => Ok(raw),
    }
}

/// The deal ids of a contact: its field (a JSON array), or its older set.
async fn deal_ids(
    redis: &mut RedisConn,
    keys: &AccountKeys,
    contact: &Id,
) -> Result<Vec<Id>, OpsError> {
    let key = keys.key(&Key::DealLinks(bucket(contact)));
    let hget = redis::cmd("HGET").arg(&key).arg(contact.as_str()).clone();
    let raw: Option<String> = within("HGET", hget.query_async(redis)).await?;
    let ids: Vec<String> = match raw {
        Some(raw) => serde_json::from_str(&raw)
            .map_err(|e| OpsError::Corrupt(format!("{key} {contact}: {e}")))?,
        None => {
            let set = keys.key(&Key::ContactDeals(contact.clone()));
            within(
                "SMEMBERS",
                redis::cmd("SMEMBERS").arg(&set).query_async(redis),
            )
            .await?
        }
    };
    ids.into_iter()
        .map(|id| Id::parse(id).map_err(|e| OpsError::Corrupt(format!("{key}: {e}"))))
        .collect()
}

async fn get<T: DeserializeOwned>(redis: &mut RedisConn, key: &str) -> Result<Option<T>, OpsError> {
    let raw: Option<String> = within("GET", redis::cmd("GET").arg(key).query_async(redis)).await?;
    raw.map(|raw| serde_json::from_str(&raw).map_err(|e| OpsError::Corrupt(format!("{key}: {e}"))))
        .transpose()
}

/// A hash whose fields are not ids, each value decoded.
async fn hash_fields<T: DeserializeOwned>(
    redis: &mut RedisConn,
    key: &str,
) -> Result<Vec<(String, T)>, OpsError> {
    let raw: BTreeMap<String, String> =
        within("HGETALL", redis::cmd("HGETALL").arg(key).query_async(redis)).await?;
    raw.into_iter()
        .map(|(field, value)| {
            serde_json::from_str(&value)
                .map(|v| (field, v))
                .map_err(|e| OpsError::Corrupt(format!("{key}: {e}")))
        })
        .collect()
}

async fn hash<T: DeserializeOwned>(
    redis: &mut RedisConn,
    key: &str,
) -> Result<BTreeMap<Id, T>, OpsError> {
    let raw: BTreeMap<String, String> =
        within("HGETALL", redis::cmd("HGETALL").arg(key).query_async(redis)).await?;
    raw.into_iter()
        .map(|(field, value)| {
            let id = Id::parse(field).map_err(|e| OpsError::Corrupt(format!("{key}: {e}")))?;
            let value = serde_json::from_str(&value)
                .map_err(|e| OpsError::Corrupt(format!("{key}: {e}")))?;
            Ok((id, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_keys_give_back_the_chat() {
        let id = Id::parse("+7 (900) a:b").unwrap();
        let rest = format!("chat:whatsapp:{}", id.key_part());
        let got = chat_ref_of(&rest).unwrap();
        assert_eq!((got.chat_type, got.chat_id), (ChatType::Whatsapp, id));
        assert!(chat_ref_of("chat:fax:1").is_none());
        assert!(chat_type("Telegram").is_err());
    }
}
