//! `message.inbound`: a client wrote. Known contacts go to their responsible;
//! new clients (and clients whose responsible lost access) are distributed by
//! round robin or shown to every eligible manager until one claims them.
//! Quality control and supervisors see every message.

use super::assign::{Assigned, Handover, assign};
use super::chat::{Opened, open};
use super::routing::{self, About};
use super::{Change, ChatSnapshot, Decision, Plan, Turn, Variant};
use crate::events::MessageInbound;
use crate::ids::Id;
use crate::model::{Chat, Distribution};
use crate::output::NotificationType;

pub fn decide(e: &MessageInbound, s: &ChatSnapshot) -> Decision {
    let Opened {
        mut plan,
        mut chat,
        contact,
    } = match open(s, &e.channel_id, e.chat()) {
        Ok(opened) => opened,
        Err(rejection) => return Decision::Reject(rejection),
    };
    // A chat new to this channel is new to everyone who watches the channel.
    let observer_kind = if chat.seen_on.contains(&e.channel_id) {
        NotificationType::ChatMessage
    } else {
        chat.seen_on.push(e.channel_id.clone());
        NotificationType::ChatNew
    };
    let about = About::new(
        &e.envelope,
        &e.channel_id,
        e.chat_type,
        &e.chat_id,
        contact.map(|c| &c.contact_id),
    )
    .with_message(&e.message_id, e.text.as_deref());
    let observers = routing::observers(&s.seats);

    // The responsible still has access: he gets the message.
    if let Some(contact) =
        contact.filter(|c| chat.pending.is_none() && has_seat(s, &c.responsible_user_id))
    {
        let mut told = vec![contact.responsible_user_id.clone()];
        about.notify(
            &mut plan.outputs,
            &contact.responsible_user_id,
            NotificationType::ChatMessage,
            None,
        );
        notify_observers(&mut plan, &about, &observers, observer_kind, &mut told);
        if observer_kind == NotificationType::ChatNew {
            plan.changes.push(Change::SaveChat(e.chat(), chat));
        }
        return answer_or_apply(plan);
    }

    let eligible = routing::eligible(&s.seats);
    let round_robin = s
        .settings
        .as_ref()
        .filter(|st| st.new_clients.distribution == Distribution::RoundRobin);
    if let (Some(settings), false) = (round_robin, eligible.is_empty()) {
        // Round robin: the manager in turn becomes responsible now. Which one
        // is decided as the plan is applied; here, what each would get.
        let chat_ref = e.chat();
        let variants = eligible
            .iter()
            .map(|manager| {
                let mut variant = Plan::default();
                let handover = Handover {
                    envelope: &e.envelope,
                    chat_ref: &chat_ref,
                    chat: &chat,
                    contact,
                    client_name: client_name(e),
                };
                let assigned = assign(&mut variant, handover, manager, Some(settings));
                let mut about = about.clone();
                announce(&mut variant, &mut about, manager, &assigned, &observers);
                notify_observers(&mut variant, &about, &observers, observer_kind, &mut vec![]);
                Variant {
                    manager: manager.clone(),
                    changes: variant.changes,
                    outputs: variant.outputs,
                }
            })
            .collect();
        plan.tally.round_robin += 1;
        plan.turn = Some(Turn {
            channel: e.channel_id.clone(),
            variants,
        });
        return Decision::Apply(plan);
    }

    // First reply (or no settings, or nobody eligible): the chat waits for a claim.
    // Everyone who may claim it is shown it as new once, then gets its messages.
    let claimers = if eligible.is_empty() {
        routing::supervisors(&s.seats)
    } else {
        eligible
    };
    let mut pending = chat.pending.clone().unwrap_or_default();
    pending.channel_id = Some(e.channel_id.clone());
    if pending.name.is_none() {
        pending.name = client_name(e);
    }
    super::waiting::mark(
        &mut plan,
        &e.chat(),
        chat.pending.as_ref(),
        &pending,
        e.envelope.occurred_at.as_str(),
    );
    let mut told = Vec::new();
    for user in &claimers {
        let kind = if pending.shown.contains(user) {
            NotificationType::ChatMessage
        } else {
            pending.shown.push(user.clone());
            NotificationType::ChatNew
        };
        about.notify(&mut plan.outputs, user, kind, None);
        told.push(user.clone());
    }
    notify_observers(&mut plan, &about, &observers, observer_kind, &mut told);
    if chat.pending.as_ref() != Some(&pending) || observer_kind == NotificationType::ChatNew {
        let waiting = Chat {
            pending: Some(pending),
            ..chat.clone()
        };
        plan.changes.push(Change::SaveChat(e.chat(), waiting));
    }
    answer_or_apply(plan)
}

/// A message that changes no state (the usual case: a settled chat) is only
/// published, with no record: a redelivery decides it again from the state of
/// its time and publishes with the same notification ids. This keeps the bulk
/// of the traffic at one Redis round trip and out of Redis memory.
fn answer_or_apply(plan: Plan) -> Decision {
    if plan.changes.is_empty() {
        Decision::Answer(plan.outputs)
    } else {
        Decision::Apply(plan)
    }
}

fn has_seat(s: &ChatSnapshot, user: &Id) -> bool {
    routing::seat_of(&s.seats, user).is_some()
}

/// A new client's manager is told, and who had been shown the chat while it
/// waited (but sees every chat anyway) loses it.
fn announce<'a>(
    plan: &mut Plan,
    about: &mut About<'a>,
    manager: &Id,
    assigned: &'a Assigned,
    observers: &[Id],
) {
    about.contact_id = Some(&assigned.contact.contact_id);
    about.deal_id = assigned.deal.as_ref().map(|d| &d.deal_id);
    about.notify(&mut plan.outputs, manager, NotificationType::ChatNew, None);
    let withdrawn = about.without_message();
    for user in assigned
        .shown
        .iter()
        .filter(|u| *u != manager && !observers.contains(u))
    {
        withdrawn.notify(
            &mut plan.outputs,
            user,
            NotificationType::ChatWithdrawn,
            None,
        );
    }
}

/// Quality control and supervisors not told yet get the message.
pub(super) fn notify_observers(
    plan: &mut Plan,
    about: &About<'_>,
    observers: &[Id],
    kind: NotificationType,
    told: &mut Vec<Id>,
) {
    for user in observers {
        if !told.contains(user) {
            about.notify(&mut plan.outputs, user, kind, None);
            told.push(user.clone());
        }
    }
}

/// What to call a new client: the name, phone or username the gateway knows, else the chat id.
fn client_name(e: &MessageInbound) -> Option<String> {
    let profile = e.contact.as_ref()?;
    profile
        .name
        .clone()
        .or_else(|| profile.phone.clone())
        .or_else(|| profile.username.clone())
}
