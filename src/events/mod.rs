//! Everything that arrives on `P.inbound`, parsed at the edge.
//!
//! [`parse`] turns a delivery's bytes into one typed [`Event`] or a
//! [`Rejection`] saying why the input cannot be accepted; nothing past this
//! module sees raw JSON.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clip::{MAX_REASON_BYTES, clip, clip_quoted};
use crate::ids::Id;
use crate::model::{
    Access, Channel, ChatType, Contact, Deal, Links, NewClients, Pipeline, chat_of,
};

/// The largest body the worker accepts.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Fields every event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Unique per event: a redelivery or republish with the same id has no further effect.
    pub event_id: Id,
    pub account_id: Id,
    /// RFC 3339 time the event happened.
    #[schemars(extend("format" = "date-time"))]
    pub occurred_at: Timestamp,
}

/// An RFC 3339 timestamp, kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Timestamp(String);

impl Timestamp {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&raw).map_err(|e| {
            serde::de::Error::custom(format!("occurredAt {raw:?} is not RFC 3339: {e}"))
        })?;
        Ok(Timestamp(raw))
    }
}

/// One event on `P.inbound`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "channels.upserted")]
    ChannelsUpserted(ChannelsUpserted),
    #[serde(rename = "users.upserted")]
    UsersUpserted(UsersUpserted),
    #[serde(rename = "users.removed")]
    UsersRemoved(UsersRemoved),
    #[serde(rename = "pipelines.loaded")]
    PipelinesLoaded(PipelinesLoaded),
    #[serde(rename = "settings.updated")]
    SettingsUpdated(SettingsUpdated),
    #[serde(rename = "contact.upserted")]
    ContactUpserted(ContactUpserted),
    #[serde(rename = "deal.upserted")]
    DealUpserted(DealUpserted),
    #[serde(rename = "message.inbound")]
    MessageInbound(MessageInbound),
    #[serde(rename = "message.outbound")]
    MessageOutbound(MessageOutbound),
    #[serde(rename = "suitcase.requested")]
    SuitcaseRequested(SuitcaseRequested),
}

/// The `type` of every event the worker accepts.
pub const EVENT_TYPES: [&str; 10] = [
    "channels.upserted",
    "users.upserted",
    "users.removed",
    "pipelines.loaded",
    "settings.updated",
    "contact.upserted",
    "deal.upserted",
    "message.inbound",
    "message.outbound",
    "suitcase.requested",
];

impl Event {
    pub fn envelope(&self) -> &Envelope {
        match self {
            Event::ChannelsUpserted(e) => &e.envelope,
            Event::UsersUpserted(e) => &e.envelope,
            Event::UsersRemoved(e) => &e.envelope,
            Event::PipelinesLoaded(e) => &e.envelope,
            Event::SettingsUpdated(e) => &e.envelope,
            Event::ContactUpserted(e) => &e.envelope,
            Event::DealUpserted(e) => &e.envelope,
            Event::MessageInbound(e) => &e.envelope,
            Event::MessageOutbound(e) => &e.envelope,
            Event::SuitcaseRequested(e) => &e.envelope,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Event::ChannelsUpserted(_) => EVENT_TYPES[0],
            Event::UsersUpserted(_) => EVENT_TYPES[1],
            Event::UsersRemoved(_) => EVENT_TYPES[2],
            Event::PipelinesLoaded(_) => EVENT_TYPES[3],
            Event::SettingsUpdated(_) => EVENT_TYPES[4],
            Event::ContactUpserted(_) => EVENT_TYPES[5],
            Event::DealUpserted(_) => EVENT_TYPES[6],
            Event::MessageInbound(_) => EVENT_TYPES[7],
            Event::MessageOutbound(_) => EVENT_TYPES[8],
            Event::SuitcaseRequested(_) => EVENT_TYPES[9],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelsUpserted {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub channels: Vec<Channel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserUpsert {
    pub user_id: Id,
    pub name: String,
    pub access: Vec<Access>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsersUpserted {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub users: Vec<UserUpsert>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsersRemoved {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub user_ids: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelinesLoaded {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub pipelines: Vec<Pipeline>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsUpdated {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub new_clients: NewClients,
    pub links: Links,
}

/// A contact as the CRM has it now: stored as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContactUpserted {
    #[serde(flatten)]
    pub envelope: Envelope,
    #[serde(flatten)]
    pub contact: Contact,
}

/// A deal as the CRM has it now: stored as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DealUpserted {
    #[serde(flatten)]
    pub envelope: Envelope,
    #[serde(flatten)]
    pub deal: Deal,
}

/// What the gateway knows of the client's profile.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientProfile {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub username: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageInbound {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub message_id: Id,
    pub channel_id: Id,
    pub chat_type: ChatType,
    pub chat_id: Id,
    pub text: Option<String>,
    pub content_uri: Option<String>,
    pub contact: Option<ClientProfile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOutbound {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub message_id: Id,
    pub channel_id: Id,
    pub chat_type: ChatType,
    pub chat_id: Id,
    pub user_id: Id,
    pub text: String,
}

/// Asks for the suitcase; the answer goes to the AMQP `reply_to` with the same `correlation_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuitcaseRequested {
    #[serde(flatten)]
    pub envelope: Envelope,
    pub user_id: Id,
    pub chat_type: ChatType,
    pub chat_id: Id,
}

chat_of!(MessageInbound, MessageOutbound, SuitcaseRequested);

/// Why an input goes to `P.dead`; `code()` is the stable first word of the
/// `x-switchboard-error` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("body of {0} bytes is over the limit of {MAX_BODY_BYTES}")]
    TooLarge(usize),
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{0}")]
    InvalidField(String),
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("{0}")]
    Invalid(String),
    /// Handling kept failing for a reason not known to pass; given up after a bound.
    #[error("{0}")]
    Failed(String),
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::TooLarge(_) => "too_large",
            Rejection::NotJson(_) => "not_json",
            Rejection::UnknownType(_) => "unknown_type",
            Rejection::InvalidField(_) => "invalid_field",
            Rejection::UnknownChannel(_) => "unknown_channel",
            Rejection::UnknownUser(_) => "unknown_user",
            Rejection::Invalid(_) => "invalid",
            Rejection::Failed(_) => "failed",
        }
    }

    /// The `x-switchboard-error` header: `code: explanation`. Short whatever the
    /// input: every value the explanation quotes is cut to [`crate::clip::MAX_QUOTED_BYTES`]
    /// and the whole to [`MAX_REASON_BYTES`], so the dead letter always fits in
    /// a frame (a 200 KB `type` must not come back in the header).
    pub fn header(&self) -> String {
        let text = format!("{}: {}", self.code(), clip_quoted(&self.to_string()));
        clip(&text, MAX_REASON_BYTES)
    }
}

/// Bytes to a typed event, or the reason it cannot be accepted.
pub fn parse(body: &[u8]) -> Result<Event, Rejection> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Rejection::TooLarge(body.len()));
    }
    // A valid event (an object: an internally tagged enum would take an array
    // too) parses straight to its type. Anything else is read as a JSON value
    // first, to tell what is wrong with it.
    let object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let event = match object.then(|| wire::message(body)).flatten() {
        Some(message) => message,
        None => parse_general(body, object)?,
    };
    crate::web_url::check(&event)?;
    Ok(event)
}

/// The parse of every event type ([`wire`] takes the messages faster).
fn parse_general(body: &[u8], object: bool) -> Result<Event, Rejection> {
    match serde_json::from_slice::<Event>(body) {
        Ok(event) if object => Ok(event),
        _ => parse_by_steps(body),
    }
}

/// Parses by steps (JSON, an object, a known `type`, the fields) what did not
/// parse straight to an event, so a rejection says what is wrong. (A repeated
/// key, which a value keeps once, may still pass here.)
fn parse_by_steps(body: &[u8]) -> Result<Event, Rejection> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Rejection::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(Rejection::InvalidField(
            "the body is not a JSON object".into(),
        ));
    }
    match value.get("type") {
        None => return Err(Rejection::InvalidField("missing field `type`".into())),
        Some(serde_json::Value::String(t)) if !EVENT_TYPES.contains(&t.as_str()) => {
            return Err(Rejection::UnknownType(t.clone()));
        }
        Some(serde_json::Value::String(_)) => {}
        Some(_) => {
            return Err(Rejection::InvalidField(
                "field `type` is not a string".into(),
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| Rejection::InvalidField(e.to_string()))
}

mod wire;

#[cfg(test)]
mod tests;
