//! `message.inbound`: a client wrote. Known contacts go to their responsible;
//! new clients (and clients whose responsible lost access) are distributed by
//! round robin or shown to every eligible manager until one claims them.
//! Quality control and supervisors see every message.

use super::assign::{Assigned, Handover, assign};
use super::chat::{Opened, open};
use super::routing::{self, About};
use super::{Change, ChatSnapshot, Decision, Plan, Turn, TurnAdds, Variant};
use crate::events::MessageInbound;
use crate::ids::Id;
use crate::model::{Chat, Contact, Distribution};
use crate::output::NotificationType;

pub fn decide(e: &MessageInbound, s: &ChatSnapshot) -> Decision {
    decide_as(e, s, true)
}

/// [`decide`], a round-robin turn always as one variant per manager: what a
/// template ([`TurnAdds::Template`]) must give each manager.
#[cfg(test)]
pub(super) fn decide_by_variants(e: &MessageInbound, s: &ChatSnapshot) -> Decision {
    decide_as(e, s, false)
}

fn decide_as(e: &MessageInbound, s: &ChatSnapshot, templates: bool) -> Decision {
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
        let handover = || Handover {
            envelope: &e.envelope,
            chat_ref: &chat_ref,
            chat: &chat,
            contact,
            client_name: client_name(e),
        };
        let variant_for = |manager: &Id| {
            let mut variant = Plan::default();
            let assigned = assign(&mut variant, handover(), manager, Some(settings));
            let mut about = about.clone();
            announce(&mut variant, &mut about, manager, &assigned, &observers);
            notify_observers(&mut variant, &about, &observers, observer_kind, &mut vec![]);
            Variant {
                changes: variant.changes,
                outputs: variant.outputs,
            }
        };
        let adds = if templates && alike_for_all(&chat, contact, &eligible) {
            // One variant for all, the manager left as a slot.
            TurnAdds::Template {
                variant: variant_for(&Id::slot()),
                notification_ids: about.notification_ids(&eligible, NotificationType::ChatNew),
            }
        } else {
            TurnAdds::Variants(eligible.iter().map(variant_for).collect())
        };
        plan.tally.round_robin += 1;
        plan.turn = Some(Turn {
            channel: e.channel_id.clone(),
            managers: eligible,
            adds,
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

/// Whether a new client's round-robin variants differ only by the manager's
/// id (and his notification's): no manager is the contact's responsible
/// already (who keeps it without a `contact.responsibleChanged`), none was
/// shown the chat while it waited (who is not told it is withdrawn).
fn alike_for_all(chat: &Chat, contact: Option<&Contact>, managers: &[Id]) -> bool {
    let shown = chat.pending.as_ref().map_or(&[][..], |p| &p.shown[..]);
    contact.is_none_or(|c| !managers.contains(&c.responsible_user_id))
        && !shown.iter().any(|u| managers.contains(u))
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
