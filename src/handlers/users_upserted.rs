//! `users.upserted`: creates or replaces users; each user's access list is
//! replaced whole, and his notification queue is declared before the ack.
//! Chats waiting on a channel are offered to the users who gain access to it
//! (see [`super::waiting`]).

use std::collections::BTreeSet;

use super::{Change, Decision, Item, Plan, Read, Reads, routing, users_removed, waiting};
use crate::events::{Rejection, UsersUpserted};
use crate::ids::Id;
use crate::model::{Role, User};

pub fn reads(e: &UsersUpserted) -> Vec<Read> {
    let mut reads = vec![Read::Item(Item::Settings)];
    for user in &e.users {
        reads.push(Read::Item(Item::User(user.user_id.clone())));
        for access in &user.access {
            reads.push(Read::Item(Item::Channel(access.channel_id.clone())));
        }
    }
    reads.extend(granted(e).into_iter().map(Read::ChannelState));
    reads
}

/// The channels the event gives anyone a seat on.
fn granted(e: &UsersUpserted) -> BTreeSet<Id> {
    e.users
        .iter()
        .flat_map(|u| u.access.iter().map(|a| a.channel_id.clone()))
        .collect()
}

pub fn decide(e: &UsersUpserted, reads: &Reads) -> Decision {
    let mut access = e.users.iter().flat_map(|u| &u.access);
    if let Some(unknown) = access.find(|a| reads.channel(&a.channel_id).is_none()) {
        return Decision::Reject(Rejection::UnknownChannel(unknown.channel_id.to_string()));
    }
    let mut plan = Plan {
        guards: vec![reads.config_guard()],
        ..Plan::default()
    };
    for upsert in &e.users {
        if let Some(old) = reads.user(&upsert.user_id) {
            users_removed::unseat(&mut plan, old, &upsert.access);
        }
        for access in &upsert.access {
            plan.changes.push(Change::SaveSeat {
                channel: access.channel_id.clone(),
                user: upsert.user_id.clone(),
                seat: access.seat(),
            });
        }
        let user = User {
            user_id: upsert.user_id.clone(),
            name: upsert.name.clone(),
            access: upsert.access.clone(),
            removed: false,
        };
        plan.changes.push(Change::SaveUser(user));
        plan.declare_users.push(upsert.user_id.clone());
    }
    plan.changes.push(Change::ConfigChanged);

    let settings = reads.settings();
    for channel in granted(e) {
        let Some(state) = reads.channels.get(&channel) else {
            continue;
        };
        if state.waiting.is_empty() {
            continue;
        }
        // The channel's seats as this event leaves them; newcomers are those
        // who may claim a chat there now and could not before.
        let could_claim = |user: &Id| {
            routing::seat_of(&state.seats, user)
                .is_some_and(|s| s.eligible() || s.role == Role::Supervisor)
        };
        let mut seats = state.seats.clone();
        seats.retain(|(user, _)| !e.users.iter().any(|u| u.user_id == *user));
        let mut newcomers = Vec::new();
        for upsert in &e.users {
            for access in upsert.access.iter().filter(|a| a.channel_id == channel) {
                seats.push((upsert.user_id.clone(), access.seat()));
                if !could_claim(&upsert.user_id) {
                    newcomers.push(upsert.user_id.clone());
                }
            }
        }
        seats.sort_by(|a, b| a.0.cmp(&b.0));
        waiting::offer(
            &mut plan,
            &e.envelope,
            &channel,
            state,
            &seats,
            &newcomers,
            settings,
        );
    }
    Decision::Apply(plan)
}
