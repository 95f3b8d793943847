//! `message.outbound`: a user wants to send a reply. The permission table of
//! the contract decides; a first answer to a waiting chat claims it. A claim is
//! a guarded write of the chat, so of simultaneous answers exactly one applies;
//! the others are decided again on the new state and rejected.

use super::assign::{Assigned, Handover, assign};
use super::chat::{Opened, open};
use super::message_inbound::notify_observers;
use super::routing::{self, About};
use super::{ChatSnapshot, Decision, Plan};
use crate::events::{MessageOutbound, Rejection};
use crate::model::Role;
use crate::output::{MessageSend, MessageSendType, NotificationType, Output, RejectReason};

pub fn decide(e: &MessageOutbound, s: &ChatSnapshot) -> Decision {
    let opened = match open(s, &e.channel_id, e.chat()) {
        Ok(opened) => opened,
        Err(rejection) => return Decision::Reject(rejection),
    };
    if s.user.is_none() {
        return Decision::Reject(Rejection::UnknownUser(e.user_id.to_string()));
    }
    let Opened {
        mut plan,
        chat,
        contact,
    } = opened;
    let mut about = About::new(
        &e.envelope,
        &e.channel_id,
        e.chat_type,
        &e.chat_id,
        contact.map(|c| &c.contact_id),
    )
    .with_message(&e.message_id, Some(&e.text));
    let reject = |mut plan: Plan, reason: RejectReason| {
        if reason == RejectReason::ClaimedByOther {
            plan.tally.claims_lost += 1;
        }
        about.notify(
            &mut plan.outputs,
            &e.user_id,
            NotificationType::MessageRejected,
            Some(reason),
        );
        Decision::Apply(plan)
    };
    let Some(seat) = routing::seat_of(&s.seats, &e.user_id) else {
        return reject(plan, RejectReason::NoAccess);
    };
    if seat.role == Role::QualityControl {
        return reject(plan, RejectReason::ReadOnly);
    }
    let supervisor = seat.role == Role::Supervisor;

    match (&chat.pending, contact) {
        (None, Some(contact)) => {
            if supervisor || contact.responsible_user_id == e.user_id {
                let contact_id = contact.contact_id.clone();
                send(&mut plan, e, &about, &contact_id, s);
                Decision::Apply(plan)
            } else if chat.shown.contains(&e.user_id) {
                reject(plan, RejectReason::ClaimedByOther)
            } else {
                reject(plan, RejectReason::NotResponsible)
            }
        }
        (Some(_), _) | (None, None) => {
            let nobody_eligible = routing::eligible(&s.seats).is_empty();
            // The contact's own responsible (back on the channel) may settle a waiting chat too.
            let own = contact.is_some_and(|c| c.responsible_user_id == e.user_id);
            let may_claim = supervisor
                || (chat.pending.is_some() && (seat.eligible() || nobody_eligible || own));
            if !may_claim {
                return reject(plan, RejectReason::NotResponsible);
            }
            // The claim: this user becomes responsible.
            plan.tally.claims_won += 1;
            let chat_ref = e.chat();
            let handover = Handover {
                envelope: &e.envelope,
                chat_ref: &chat_ref,
                chat: &chat,
                contact,
                client_name: None,
            };
            let Assigned {
                contact,
                deal,
                shown,
            } = assign(&mut plan, handover, &e.user_id, s.settings.as_ref());

            about.contact_id = Some(&contact.contact_id);
            about.deal_id = deal.as_ref().map(|d| &d.deal_id);
            let assigned = about.without_message();
            assigned.notify(
                &mut plan.outputs,
                &e.user_id,
                NotificationType::ChatAssigned,
                None,
            );
            // Whoever was shown the chat as new and may no longer write to it loses it.
            for user in shown.iter().filter(|u| **u != e.user_id) {
                let keeps = routing::seat_of(&s.seats, user)
                    .is_some_and(|seat| seat.role == Role::Supervisor);
                if !keeps {
                    assigned.notify(
                        &mut plan.outputs,
                        user,
                        NotificationType::ChatWithdrawn,
                        None,
                    );
                }
            }
            send(&mut plan, e, &about, &contact.contact_id, s);
            Decision::Apply(plan)
        }
    }
}

/// A permitted reply: to the gateway, and to the channel's quality control and supervisors.
fn send(
    plan: &mut Plan,
    e: &MessageOutbound,
    about: &About<'_>,
    contact_id: &crate::ids::Id,
    s: &ChatSnapshot,
) {
    let message = MessageSend {
        kind: MessageSendType::MessageSend,
        event_id: e.envelope.event_id.clone(),
        account_id: e.envelope.account_id.clone(),
        message_id: e.message_id.clone(),
        channel_id: e.channel_id.clone(),
        chat_type: e.chat_type,
        chat_id: e.chat_id.clone(),
        user_id: e.user_id.clone(),
        contact_id: contact_id.clone(),
        text: e.text.clone(),
        occurred_at: e.envelope.occurred_at.clone(),
    };
    plan.outputs.push(Output::Send(message));
    let observers = routing::observers(&s.seats);
    let mut told = vec![e.user_id.clone()];
    notify_observers(
        plan,
        about,
        &observers,
        NotificationType::ChatMessage,
        &mut told,
    );
}
