//! `contact.upserted`: a contact the CRM already has. Each of its messenger
//! identities now leads to it; a chat that was waiting to be claimed is settled
//! by the CRM's choice, and whoever was shown it as new gets `chat.withdrawn`.

use super::routing::About;
use super::{Decision, Key, Op, Plan, Read, Reads, json};
use crate::events::{ContactUpserted, Rejection};
use crate::model::{Chat, Contact, User};
use crate::output::NotificationType;

pub fn reads(e: &ContactUpserted) -> Vec<Read> {
    let mut reads = vec![
        Read::HGet(Key::Users, e.responsible_user_id.clone()),
        Read::Get(Key::Contact(e.contact_id.clone())),
    ];
    reads.extend(
        e.contact_data
            .iter()
            .map(|c| Read::Get(Key::Chat(c.clone()))),
    );
    reads
}

pub fn decide(e: &ContactUpserted, reads: &Reads) -> Decision {
    let responsible = Read::HGet(Key::Users, e.responsible_user_id.clone());
    if reads.parsed::<User>(&responsible).is_none() {
        return Decision::Reject(Rejection::UnknownUser(e.responsible_user_id.to_string()));
    }
    let contact = Contact {
        contact_id: e.contact_id.clone(),
        name: e.name.clone(),
        responsible_user_id: e.responsible_user_id.clone(),
        contact_data: e.contact_data.clone(),
    };
    let contact_read = Read::Get(Key::Contact(e.contact_id.clone()));
    let mut plan = Plan {
        guards: vec![reads.config_guard(), reads.guard(&contact_read)],
        ..Plan::default()
    };
    plan.ops.push(Op::Set(
        Key::Contact(contact.contact_id.clone()),
        json(&contact),
    ));
    for chat_ref in &e.contact_data {
        let read = Read::Get(Key::Chat(chat_ref.clone()));
        plan.guards.push(reads.guard(&read));
        let mut chat: Chat = reads.parsed(&read).unwrap_or_default();
        if let Some(pending) = chat.pending.take() {
            super::waiting::unmark(&mut plan, chat_ref, Some(&pending));
            if let Some(channel_id) = &pending.channel_id {
                let about = About {
                    envelope: &e.envelope,
                    channel_id,
                    chat_type: chat_ref.chat_type,
                    chat_id: &chat_ref.chat_id,
                    contact_id: Some(&contact.contact_id),
                    deal_id: None,
                    message_id: None,
                    text: None,
                };
                for user in pending
                    .shown
                    .iter()
                    .filter(|u| **u != contact.responsible_user_id)
                {
                    plan.outputs
                        .push(about.notify(user, NotificationType::ChatWithdrawn, None));
                }
            }
            chat.shown = pending.shown;
        }
        chat.contact_id = Some(contact.contact_id.clone());
        plan.ops
            .push(Op::Set(Key::Chat(chat_ref.clone()), json(&chat)));
    }
    Decision::Apply(plan)
}
