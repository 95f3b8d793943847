//! The common start of every message decision: the channel must exist and be
//! of the message's chat type, and the plan starts guarded by the account's
//! configuration, the chat and its contact, the state the decision reads.

use super::{ChatSnapshot, Guard, Item, Plan};
use crate::events::Rejection;
use crate::ids::Id;
use crate::model::{Chat, ChatRef, Contact};

pub(super) struct Opened<'s> {
    pub plan: Plan,
    /// The chat as stored, or a fresh one.
    pub chat: Chat,
    /// The chat's contact, if it has one.
    pub contact: Option<&'s Contact>,
}

pub(super) fn open<'s>(
    s: &'s ChatSnapshot,
    channel_id: &Id,
    chat_ref: ChatRef,
) -> Result<Opened<'s>, Rejection> {
    let Some(channel) = &s.channel else {
        return Err(Rejection::UnknownChannel(channel_id.to_string()));
    };
    if channel.chat_type != chat_ref.chat_type {
        return Err(Rejection::Invalid(format!(
            "chatType {} does not match channel {:?} ({})",
            chat_ref.chat_type.as_str(),
            channel_id.as_str(),
            channel.chat_type.as_str()
        )));
    }
    let mut plan = Plan {
        guards: vec![
            Guard {
                item: Item::Config,
                expect: s.config.clone(),
            },
            s.chat.guard(Item::Chat(chat_ref)),
        ],
        ..Plan::default()
    };
    let chat = s.chat.value.clone().unwrap_or_default();
    let contact = chat.contact_id.as_ref().and(s.contact.value.as_ref());
    if let Some(contact) = contact {
        plan.guards
            .push(s.contact.guard(Item::Contact(contact.contact_id.clone())));
    }
    Ok(Opened {
        plan,
        chat,
        contact,
    })
}
