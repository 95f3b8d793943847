//! `contact.upserted`: a contact the CRM already has. Each of its messenger
//! identities now leads to it; a chat that was waiting to be claimed is settled
//! by the CRM's choice, and whoever was shown it as new gets `chat.withdrawn`.

use super::routing::About;
use super::{Change, Decision, Item, Plan, Read, Reads};
use crate::events::{ContactUpserted, Rejection};
use crate::model::Chat;
use crate::output::NotificationType;

pub fn reads(e: &ContactUpserted) -> Vec<Read> {
    let contact = &e.contact;
    let mut reads = vec![
        Read::Item(Item::User(contact.responsible_user_id.clone())),
        Read::Item(Item::Contact(contact.contact_id.clone())),
    ];
    reads.extend(
        contact
            .contact_data
            .iter()
            .map(|c| Read::Item(Item::Chat(c.clone()))),
    );
    reads
}

pub fn decide(e: &ContactUpserted, reads: &Reads) -> Decision {
    let contact = &e.contact;
    if reads.user(&contact.responsible_user_id).is_none() {
        return Decision::Reject(Rejection::UnknownUser(
            contact.responsible_user_id.to_string(),
        ));
    }
    let mut plan = Plan {
        guards: vec![
            reads.config_guard(),
            reads.guard(Item::Contact(contact.contact_id.clone())),
        ],
        ..Plan::default()
    };
    for chat_ref in &contact.contact_data {
        plan.guards.push(reads.guard(Item::Chat(chat_ref.clone())));
        let mut chat: Chat = reads.chat(chat_ref).cloned().unwrap_or_default();
        if let Some(pending) = chat.pending.take() {
            super::waiting::unmark(&mut plan, chat_ref, Some(&pending));
            if let Some(channel_id) = &pending.channel_id {
                let about = About::new(
                    &e.envelope,
                    channel_id,
                    chat_ref.chat_type,
                    &chat_ref.chat_id,
                    Some(&contact.contact_id),
                );
                for user in pending
                    .shown
                    .iter()
                    .filter(|u| **u != contact.responsible_user_id)
                {
                    about.notify(
                        &mut plan.outputs,
                        user,
                        NotificationType::ChatWithdrawn,
                        None,
                    );
                }
            }
            chat.shown = pending.shown;
        }
        chat.contact_id = Some(contact.contact_id.clone());
        plan.changes.push(Change::SaveChat(chat_ref.clone(), chat));
    }
    plan.changes.push(Change::SaveContact(contact.clone()));
    Decision::Apply(plan)
}
