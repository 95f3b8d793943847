//! The messages of the contract the worker publishes, as they go on the wire:
//! notifications to users, events for the CRM, replies for the gateways and
//! the suitcase's answer.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::events::Timestamp;
use crate::ids::Id;
use crate::model::{ChatRef, ChatType};

/// Kinds of notification a user's client receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum NotificationType {
    #[serde(rename = "chat.new")]
    ChatNew,
    #[serde(rename = "chat.message")]
    ChatMessage,
    #[serde(rename = "chat.assigned")]
    ChatAssigned,
    #[serde(rename = "chat.withdrawn")]
    ChatWithdrawn,
    #[serde(rename = "message.rejected")]
    MessageRejected,
}

impl NotificationType {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationType::ChatNew => "chat.new",
            NotificationType::ChatMessage => "chat.message",
            NotificationType::ChatAssigned => "chat.assigned",
            NotificationType::ChatWithdrawn => "chat.withdrawn",
            NotificationType::MessageRejected => "message.rejected",
        }
    }
}

/// Why a reply was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    NoAccess,
    ReadOnly,
    NotResponsible,
    ClaimedByOther,
}

/// A message on `P.user.{accountId}.{userId}`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// The same for the same cause (event, user, type), so a client can drop repeats.
    pub notification_id: Id,
    #[serde(rename = "type")]
    pub kind: NotificationType,
    pub account_id: Id,
    pub user_id: Id,
    pub channel_id: Id,
    pub chat_type: ChatType,
    pub chat_id: Id,
    pub contact_id: Option<Id>,
    pub deal_id: Option<Id>,
    pub message_id: Option<Id>,
    pub text: Option<String>,
    pub reason: Option<RejectReason>,
    #[schemars(extend("format" = "date-time"))]
    pub occurred_at: Timestamp,
}

/// Fields common to every event on `P.crm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrmEnvelope {
    pub event_id: Id,
    pub account_id: Id,
    #[schemars(extend("format" = "date-time"))]
    pub occurred_at: Timestamp,
}

/// An assignment event for the CRM, on `P.crm` with routing key `{accountId}.{type}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum CrmEvent {
    #[serde(rename = "contact.created", rename_all = "camelCase")]
    ContactCreated {
        #[serde(flatten)]
        envelope: CrmEnvelope,
        contact_id: Id,
        name: String,
        responsible_user_id: Id,
        contact_data: Vec<ChatRef>,
    },
    #[serde(rename = "deal.created", rename_all = "camelCase")]
    DealCreated {
        #[serde(flatten)]
        envelope: CrmEnvelope,
        deal_id: Id,
        contact_ids: Vec<Id>,
        responsible_user_id: Id,
        pipeline_id: Id,
        stage_id: Id,
    },
    #[serde(rename = "contact.responsibleChanged", rename_all = "camelCase")]
    ContactResponsibleChanged {
        #[serde(flatten)]
        envelope: CrmEnvelope,
        contact_id: Id,
        responsible_user_id: Id,
        previous_user_id: Id,
    },
}

impl CrmEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            CrmEvent::ContactCreated { .. } => "contact.created",
            CrmEvent::DealCreated { .. } => "deal.created",
            CrmEvent::ContactResponsibleChanged { .. } => "contact.responsibleChanged",
        }
    }
}

/// An approved reply for the gateway, on `P.outbound` with routing key `{accountId}.{channelId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageSend {
    /// Always `message.send`.
    #[serde(rename = "type")]
    pub kind: MessageSendType,
    /// The `eventId` of the `message.outbound` it answers.
    pub event_id: Id,
    pub account_id: Id,
    pub message_id: Id,
    pub channel_id: Id,
    pub chat_type: ChatType,
    pub chat_id: Id,
    pub user_id: Id,
    pub contact_id: Id,
    pub text: String,
    #[schemars(extend("format" = "date-time"))]
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MessageSendType {
    #[serde(rename = "message.send")]
    MessageSend,
}

/// One deal in the suitcase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuitcaseDeal {
    pub deal_id: Id,
    pub name: String,
    pub uri: Option<String>,
    pub closed: bool,
    pub pipeline_id: Id,
    pub stage_id: Id,
}

/// The answer to `suitcase.requested`, on its `reply_to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SuitcaseReply {
    #[serde(rename_all = "camelCase")]
    Found {
        contact_id: Id,
        deals: Vec<SuitcaseDeal>,
        new_deal_uri: Option<String>,
    },
    Error {
        error: SuitcaseError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuitcaseError {
    NoAccess,
    UnknownChat,
}
