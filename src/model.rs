//! The account's state as Switchboard keeps it: channels, users and their
//! access, pipelines, settings, contacts, deals, chats and the round-robin pool.
//!
//! These are plain data, serialized as JSON into Redis by the store and read back
//! into the pure decisions of `handlers`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::Id;

/// A messenger.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChatType {
    Whatsapp,
    Telegram,
    Instagram,
    Vk,
    Viber,
    Avito,
}

impl ChatType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatType::Whatsapp => "whatsapp",
            ChatType::Telegram => "telegram",
            ChatType::Instagram => "instagram",
            ChatType::Vk => "vk",
            ChatType::Viber => "viber",
            ChatType::Avito => "avito",
        }
    }
}

/// What a user may do on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees every chat of the channel, writes nothing.
    QualityControl,
    /// Sees and writes the chats of his own contacts, plus new clients he is eligible for.
    Manager,
    /// Sees every chat of the channel and writes to any of them.
    Supervisor,
}

impl Role {
    /// Quality control and supervisors see every message of every chat.
    pub fn observes_all(self) -> bool {
        matches!(self, Role::QualityControl | Role::Supervisor)
    }
}

/// One messenger account of the company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub channel_id: Id,
    pub chat_type: ChatType,
    pub name: String,
}

/// A user's role on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    pub channel_id: Id,
    pub role: Role,
    pub receives_new_clients: bool,
}

impl Access {
    /// The seat this access gives on its channel.
    pub fn seat(&self) -> Seat {
        Seat {
            role: self.role,
            receives_new_clients: self.receives_new_clients,
        }
    }
}

/// A CRM employee. A removed user is kept with no access, so his replies are
/// rejected with `no_access` rather than dead-lettered as unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: Id,
    pub name: String,
    pub access: Vec<Access>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

/// One user's entry in a channel's access index: what the channel's decisions need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seat {
    pub role: Role,
    pub receives_new_clients: bool,
}

impl Seat {
    /// A manager who takes new clients of this channel.
    pub fn eligible(&self) -> bool {
        self.role == Role::Manager && self.receives_new_clients
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub stage_id: Id,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    pub pipeline_id: Id,
    pub name: String,
    pub stages: Vec<Stage>,
}

/// How new clients are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    FirstReply,
    RoundRobin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewClients {
    pub pipeline_id: Id,
    pub stage_id: Id,
    pub distribution: Distribution,
}

/// URL templates of the CRM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Links {
    /// A deal's page; `{dealId}` is replaced by the deal's id. An `http` or `https` URL.
    #[schemars(extend("pattern" = crate::web_url::WEB_URL_PATTERN))]
    pub deal: String,
    /// The page that creates a deal; `{contactId}` is replaced by the contact's id. An `http` or `https` URL.
    #[schemars(extend("pattern" = crate::web_url::WEB_URL_PATTERN))]
    pub new_deal: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub new_clients: NewClients,
    pub links: Links,
}

/// Gives each listed type, which has `chat_type` and `chat_id` fields, a
/// `chat()` that returns them as one [`ChatRef`].
macro_rules! chat_of {
    ($($holder:ty),+ $(,)?) => {$(
        impl $holder {
            pub fn chat(&self) -> $crate::model::ChatRef {
                $crate::model::ChatRef {
                    chat_type: self.chat_type,
                    chat_id: self.chat_id.clone(),
                }
            }
        }
    )+};
}
pub(crate) use chat_of;

/// A messenger identity of a contact.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ChatRef {
    pub chat_type: ChatType,
    pub chat_id: Id,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub contact_id: Id,
    pub name: String,
    pub responsible_user_id: Id,
    pub contact_data: Vec<ChatRef>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deal {
    pub deal_id: Id,
    pub name: String,
    pub contact_ids: Vec<Id>,
    pub responsible_user_id: Id,
    pub pipeline_id: Id,
    pub stage_id: Id,
    pub closed: bool,
    /// The deal's page in the CRM: an `http` or `https` URL.
    #[schemars(extend("pattern" = crate::web_url::WEB_URL_PATTERN))]
    pub uri: Option<String>,
}

/// What Switchboard knows of one `(chatType, chatId)` of an account.
///
/// `contact_id` is the contact the chat belongs to. `pending` is set while the
/// chat waits to be claimed (a new client under `first_reply`, no eligible
/// manager, or a responsible who lost access); it lists who was shown the chat
/// as new, so the claim can withdraw it from them and later answers of theirs
/// are told `claimed_by_other`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    pub contact_id: Option<Id>,
    pub pending: Option<Pending>,
    /// Who was shown the chat as new before its last claim (for `claimed_by_other`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shown: Vec<Id>,
    /// Channels the client wrote to: on a channel not listed yet, the chat is
    /// new to that channel's quality control and supervisors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen_on: Vec<Id>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// The channel the waiting client wrote to.
    #[serialize_always]
    pub channel_id: Option<Id>,
    /// Everyone who may claim the chat and got `chat.new` for it, in the order
    /// they were told.
    pub shown: Vec<Id>,
    /// The client's name as the gateway gave it, for the contact the claim creates.
    pub name: Option<String>,
}

/// A chat in a channel's waiting index: which chat, and since when it waits
/// (waiting chats are offered oldest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitingEntry {
    pub chat_type: ChatType,
    pub chat_id: Id,
    pub since: String,
}

chat_of!(WaitingEntry);

/// The round-robin pool of one channel: for each manager, the turn number of his
/// last new client. The manager with the oldest turn (never = 0, ties by id)
/// gets the next client, which stays even when managers join or leave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundRobin {
    pub turn: u64,
    pub last: BTreeMap<Id, u64>,
}
