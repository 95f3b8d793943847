//! `users.removed`: the users lose all access. They are kept as removed, so a
//! later reply of theirs is rejected with `no_access`; their clients go to
//! someone else at the client's next message (the contract's "responsible
//! lost access").

use super::{Change, Decision, Item, Plan, Read, Reads};
use crate::events::{Rejection, UsersRemoved};

pub fn reads(e: &UsersRemoved) -> Vec<Read> {
    e.user_ids
        .iter()
        .map(|id| Read::Item(Item::User(id.clone())))
        .collect()
}

pub fn decide(e: &UsersRemoved, reads: &Reads) -> Decision {
    let mut plan = Plan {
        guards: vec![reads.config_guard()],
        ..Plan::default()
    };
    for user_id in &e.user_ids {
        let Some(mut user) = reads.user(user_id).cloned() else {
            return Decision::Reject(Rejection::UnknownUser(user_id.to_string()));
        };
        for access in user.access.drain(..) {
            plan.changes.push(Change::RemoveSeat {
                channel: access.channel_id,
                user: user_id.clone(),
            });
        }
        user.removed = true;
        plan.changes.push(Change::SaveUser(user));
    }
    plan.changes.push(Change::ConfigChanged);
    Decision::Apply(plan)
}
