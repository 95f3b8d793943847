//! Chats waiting to be claimed, and offering them to users who come later.
//!
//! Each channel keeps an index of the chats waiting on it ([`Change::MarkWaiting`]),
//! written by the same plans that make a chat wait or settle it. When a
//! `users.upserted` gives someone access to a channel, its waiting chats are
//! offered at once: under round robin with an eligible manager they are
//! handed out in turn (contact, deal and CRM events, as for a new client);
//! otherwise every newcomer who may claim them (an eligible manager or a
//! supervisor) is shown them as new.

use super::assign::{Assigned, Handover, assign};
use super::routing::{self, About};
use super::{Change, ChannelState, Item, Plan, WaitingChat};
use crate::events::Envelope;
use crate::ids::Id;
use crate::model::{ChatRef, Distribution, Pending, Role, Seat, Settings, WaitingEntry};
use crate::output::{NotificationType, derive_id};

/// Keeps the index true for a chat that now waits on `pending.channel_id`
/// (`before` is what it waited on until now, if anything).
pub(super) fn mark(
    plan: &mut Plan,
    chat: &ChatRef,
    before: Option<&Pending>,
    now: &Pending,
    since: &str,
) {
    let old = before.and_then(|p| p.channel_id.as_ref());
    if old == now.channel_id.as_ref() {
        return;
    }
    unmark(plan, chat, before);
    if let Some(channel) = &now.channel_id {
        let entry = WaitingEntry {
            chat_type: chat.chat_type,
            chat_id: chat.chat_id.clone(),
            since: since.to_owned(),
        };
        plan.changes.push(Change::MarkWaiting {
            channel: channel.clone(),
            entry,
        });
    }
}

/// Takes a chat that no longer waits out of the index.
pub(super) fn unmark(plan: &mut Plan, chat: &ChatRef, before: Option<&Pending>) {
    if let Some(channel) = before.and_then(|p| p.channel_id.as_ref()) {
        plan.changes.push(Change::UnmarkWaiting {
            channel: channel.clone(),
            chat: chat.clone(),
        });
    }
}

/// Offers the chats waiting on `channel` after users gained access to it.
///
/// `seats` are the channel's seats after the event; `newcomers` the users the
/// event gave a seat there. Every chat offered is guarded by the value it was
/// read with, and the pool by its own, so a plan decided on stale state is
/// decided again.
pub(super) fn offer(
    plan: &mut Plan,
    envelope: &Envelope,
    channel: &Id,
    state: &ChannelState,
    seats: &[(Id, Seat)],
    newcomers: &[Id],
    settings: Option<&Settings>,
) {
    let mut waiting: Vec<&WaitingChat> = state.waiting.iter().collect();
    waiting.sort_by(|a, b| {
        (since_key(&a.entry.since), a.entry.chat())
            .cmp(&(since_key(&b.entry.since), b.entry.chat()))
    });
    let eligible = routing::eligible(seats);
    let round_robin = settings
        .filter(|s| s.new_clients.distribution == Distribution::RoundRobin && !eligible.is_empty());
    let mut pool = state.round_robin.value.clone().unwrap_or_default();
    let pool_before = pool.clone();
    let observers = routing::observers(seats);
    let supervisor =
        |user: &Id| routing::seat_of(seats, user).is_some_and(|seat| seat.role == Role::Supervisor);
    let may_claim = |user: &Id| {
        routing::seat_of(seats, user)
            .is_some_and(|seat| seat.eligible() || seat.role == Role::Supervisor)
    };

    for w in waiting {
        let chat_ref = w.entry.chat();
        let Some(chat) = w.chat.value.as_ref() else {
            continue;
        };
        let Some(pending) = chat
            .pending
            .as_ref()
            .filter(|p| p.channel_id.as_ref() == Some(channel))
        else {
            // A stale entry: the chat no longer waits here.
            plan.changes.push(Change::UnmarkWaiting {
                channel: channel.clone(),
                chat: chat_ref,
            });
            continue;
        };
        // Every offer has ids of its own, derived from the event and the chat.
        let offer_envelope = Envelope {
            event_id: derive_id(&[
                "offer",
                envelope.event_id.as_str(),
                chat_ref.chat_type.as_str(),
                chat_ref.chat_id.as_str(),
            ]),
            ..envelope.clone()
        };
        let mut about = About::new(
            &offer_envelope,
            channel,
            chat_ref.chat_type,
            &chat_ref.chat_id,
            chat.contact_id.as_ref(),
        );
        let chat_item = Item::Chat(chat_ref.clone());

        if let Some(settings) = round_robin {
            let Some(manager) = routing::next_in_turn(&eligible, &pool) else {
                break;
            };
            pool = routing::take_turn(&pool, &manager, &eligible);
            plan.guards.push(w.chat.guard(chat_item));
            let existing = chat.contact_id.as_ref().and(w.contact.value.as_ref());
            if let Some(contact) = existing {
                plan.guards
                    .push(w.contact.guard(Item::Contact(contact.contact_id.clone())));
            }
            let handover = Handover {
                envelope: &offer_envelope,
                chat_ref: &chat_ref,
                chat,
                contact: existing,
                client_name: None,
            };
            let Assigned {
                contact,
                deal,
                shown,
            } = assign(plan, handover, &manager, Some(settings));
            plan.tally.round_robin += 1;
            about.contact_id = Some(&contact.contact_id);
            about.deal_id = deal.as_ref().map(|d| &d.deal_id);
            about.notify(&mut plan.outputs, &manager, NotificationType::ChatNew, None);
            for user in shown
                .iter()
                .filter(|u| **u != manager && !observers.contains(u))
            {
                about.notify(
                    &mut plan.outputs,
                    user,
                    NotificationType::ChatWithdrawn,
                    None,
                );
            }
            // Supervisors who arrive with this event have not seen the chat yet.
            for user in newcomers
                .iter()
                .filter(|u| **u != manager && supervisor(u) && !shown.contains(u))
            {
                about.notify(&mut plan.outputs, user, NotificationType::ChatNew, None);
            }
            continue;
        }

        let fresh: Vec<&Id> = newcomers
            .iter()
            .filter(|u| may_claim(u) && !pending.shown.contains(u))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let mut offered = chat.clone();
        let shown = &mut offered.pending.get_or_insert_with(Pending::default).shown;
        for user in fresh {
            shown.push(user.clone());
            about.notify(&mut plan.outputs, user, NotificationType::ChatNew, None);
        }
        plan.guards.push(w.chat.guard(chat_item));
        plan.changes.push(Change::SaveChat(chat_ref, offered));
    }
    if pool != pool_before {
        plan.guards
            .push(state.round_robin.guard(Item::RoundRobin(channel.clone())));
        plan.changes
            .push(Change::SaveRoundRobin(channel.clone(), pool));
    }
}

/// Waiting since: RFC 3339 times compared as instants, whatever their offsets.
fn since_key(since: &str) -> (i64, u32) {
    chrono::DateTime::parse_from_rfc3339(since)
        .map(|t| (t.timestamp(), t.timestamp_subsec_nanos()))
        .unwrap_or((i64::MAX, 0))
}
