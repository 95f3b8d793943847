//! Handing a chat to its responsible: a new client's round-robin turn, a
//! claim, an offer to a newcomer. Its contact is created (or handed over), a
//! deal is created where the settings say, the chat is settled on the contact,
//! and the CRM is told of each.

use super::routing::Derived;
use super::{Change, Item, Plan};
use crate::events::Envelope;
use crate::ids::Id;
use crate::model::{Chat, ChatRef, Contact, Deal, Settings};
use crate::output::{CrmEvent, Output};

/// The chat being handed over, as stored.
pub(super) struct Handover<'a> {
    /// The event that hands it over; what it creates has ids derived from it.
    pub envelope: &'a Envelope,
    pub chat_ref: &'a ChatRef,
    pub chat: &'a Chat,
    /// The chat's contact, if it has one.
    pub contact: Option<&'a Contact>,
    /// What the event calls the client, if anything (else the name the chat's
    /// first messages gave, else its id).
    pub client_name: Option<String>,
}

/// What handing the chat over made.
pub(super) struct Assigned {
    pub contact: Contact,
    pub deal: Option<Deal>,
    /// Who had been shown the chat as new while it waited.
    pub shown: Vec<Id>,
}

/// Makes `responsible` the chat's responsible; a deal is created when
/// `settings` are given.
pub(super) fn assign(
    plan: &mut Plan,
    chat: Handover<'_>,
    responsible: &Id,
    settings: Option<&Settings>,
) -> Assigned {
    let derived = Derived {
        envelope: chat.envelope,
    };
    let contact = assign_contact(plan, &derived, &chat, responsible);
    let deal = settings.map(|s| create_deal(plan, &derived, &contact, responsible, s));
    let shown = settle_chat(plan, chat.chat_ref, chat.chat, &contact.contact_id);
    Assigned {
        contact,
        deal,
        shown,
    }
}

/// Creates the contact for a new client, or hands an existing one over.
fn assign_contact(
    plan: &mut Plan,
    derived: &Derived<'_>,
    chat: &Handover<'_>,
    responsible: &Id,
) -> Contact {
    let contact = match chat.contact {
        Some(old) => {
            let mut contact = old.clone();
            if old.responsible_user_id != *responsible {
                contact.responsible_user_id = responsible.clone();
                plan.outputs
                    .push(Output::Crm(CrmEvent::ContactResponsibleChanged {
                        envelope: derived.crm_envelope("contact.responsibleChanged"),
                        contact_id: contact.contact_id.clone(),
                        responsible_user_id: responsible.clone(),
                        previous_user_id: old.responsible_user_id.clone(),
                    }));
            }
            contact
        }
        None => {
            let name = chat
                .client_name
                .clone()
                .or_else(|| chat.chat.pending.as_ref().and_then(|p| p.name.clone()))
                .unwrap_or_else(|| chat.chat_ref.chat_id.to_string());
            let contact = Contact {
                contact_id: derived.id("contact"),
                name,
                responsible_user_id: responsible.clone(),
                contact_data: vec![chat.chat_ref.clone()],
            };
            plan.changes
                .push(Change::Created(Item::Contact(contact.contact_id.clone())));
            plan.outputs.push(Output::Crm(CrmEvent::ContactCreated {
                envelope: derived.crm_envelope("contact.created"),
                contact_id: contact.contact_id.clone(),
                name: contact.name.clone(),
                responsible_user_id: responsible.clone(),
                contact_data: contact.contact_data.clone(),
            }));
            contact
        }
    };
    plan.changes.push(Change::SaveContact(contact.clone()));
    contact
}

/// Creates the contact's deal in the configured pipeline and stage.
fn create_deal(
    plan: &mut Plan,
    derived: &Derived<'_>,
    contact: &Contact,
    responsible: &Id,
    settings: &Settings,
) -> Deal {
    let deal = Deal {
        deal_id: derived.id("deal"),
        name: contact.name.clone(),
        contact_ids: vec![contact.contact_id.clone()],
        responsible_user_id: responsible.clone(),
        pipeline_id: settings.new_clients.pipeline_id.clone(),
        stage_id: settings.new_clients.stage_id.clone(),
        closed: false,
        uri: None,
    };
    plan.changes
        .push(Change::Created(Item::Deal(deal.deal_id.clone())));
    save_deal(plan, deal.clone());
    plan.outputs.push(Output::Crm(CrmEvent::DealCreated {
        envelope: derived.crm_envelope("deal.created"),
        deal_id: deal.deal_id.clone(),
        contact_ids: deal.contact_ids.clone(),
        responsible_user_id: deal.responsible_user_id.clone(),
        pipeline_id: deal.pipeline_id.clone(),
        stage_id: deal.stage_id.clone(),
    }));
    deal
}

/// Saves `deal` and links it to each of its contacts.
pub(super) fn save_deal(plan: &mut Plan, deal: Deal) {
    for contact in &deal.contact_ids {
        plan.changes.push(Change::LinkDeal {
            contact: contact.clone(),
            deal: deal.deal_id.clone(),
        });
    }
    plan.changes.push(Change::SaveDeal(deal));
}

/// Settles the chat on its contact: it no longer waits for a claim (nor in its
/// channel's waiting index). Who was shown it as new is kept (for
/// `claimed_by_other`) and returned.
fn settle_chat(plan: &mut Plan, chat_ref: &ChatRef, chat: &Chat, contact_id: &Id) -> Vec<Id> {
    super::waiting::unmark(plan, chat_ref, chat.pending.as_ref());
    let shown = chat
        .pending
        .as_ref()
        .map(|p| p.shown.clone())
        .unwrap_or_default();
    let settled = Chat {
        contact_id: Some(contact_id.clone()),
        pending: None,
        shown: shown.clone(),
        seen_on: chat.seen_on.clone(),
    };
    plan.changes
        .push(Change::SaveChat(chat_ref.clone(), settled));
    shown
}
