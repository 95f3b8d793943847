//! The straight parse of the events that come by the thousand: a client's
//! message (`message.inbound`) and a user's reply (`message.outbound`).
//!
//! [`Event`]'s derived parse is general but slow: an internally tagged enum
//! reads the whole body into serde's buffer (`Content`, every string copied)
//! before it knows the type, and each variant's flattened envelope buffers
//! it once more. Here one pass reads the type and the fields of both
//! messages, then keeps those of the type: about 10,000 instructions per
//! message against 14,000 (callgrind; see the README's *Where the time
//! goes*). Reading the type first and then the body cost more than the
//! buffering: a long escaped text was scanned twice.
//!
//! Only a body that parses here is taken from here. Anything else (another
//! type, a field missing or wrong, a field of the other message that does
//! not read, a repeated key, an escaped `type`) returns `None` and goes the
//! general way, which decides what is accepted and what every rejection
//! says; a unit test holds the two to the same events.

use serde::Deserialize;

use super::{ClientProfile, Envelope, Event, MessageInbound, MessageOutbound, Timestamp};
use crate::ids::Id;
use crate::model::ChatType;

/// The fields of both messages (and their type) in one pass.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    event_id: Id,
    account_id: Id,
    occurred_at: Timestamp,
    message_id: Id,
    channel_id: Id,
    chat_type: ChatType,
    chat_id: Id,
    text: Option<String>,
    /// Inbound only.
    content_uri: Option<String>,
    /// Inbound only.
    contact: Option<ClientProfile>,
    /// Outbound only.
    user_id: Option<Id>,
}

/// The event in `body` (a JSON object) if it is a message in or out that
/// parses straight; else `None`.
pub(super) fn message(body: &[u8]) -> Option<Event> {
    let m: Message = serde_json::from_slice(body).ok()?;
    let envelope = Envelope {
        event_id: m.event_id,
        account_id: m.account_id,
        occurred_at: m.occurred_at,
    };
    match m.kind {
        "message.inbound" => Some(Event::MessageInbound(MessageInbound {
            envelope,
            message_id: m.message_id,
            channel_id: m.channel_id,
            chat_type: m.chat_type,
            chat_id: m.chat_id,
            text: m.text,
            content_uri: m.content_uri,
            contact: m.contact,
        })),
        "message.outbound" => Some(Event::MessageOutbound(MessageOutbound {
            envelope,
            message_id: m.message_id,
            channel_id: m.channel_id,
            chat_type: m.chat_type,
            chat_id: m.chat_id,
            user_id: m.user_id?,
            text: m.text?,
        })),
        _ => None,
    }
}
