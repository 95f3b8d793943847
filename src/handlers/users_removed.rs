//! `users.removed`: the users lose all access. They are kept as removed, so a
//! later reply of theirs is rejected with `no_access`; their clients go to
//! someone else at the client's next message (the contract's "responsible
//! lost access").

use super::{Change, Decision, Item, Plan, Read, Reads};
use crate::events::{Rejection, UsersRemoved};
use crate::model::{Access, User};

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
        unseat(&mut plan, &user, &[]);
        user.access.clear();
        user.removed = true;
        plan.changes.push(Change::SaveUser(user));
    }
    plan.changes.push(Change::ConfigChanged);
    Decision::Apply(plan)
}

/// Takes `user` off each channel he has a seat on that `kept` does not list.
pub(super) fn unseat(plan: &mut Plan, user: &User, kept: &[Access]) {
    let gone = user
        .access
        .iter()
        .filter(|a| !kept.iter().any(|k| k.channel_id == a.channel_id));
    for access in gone {
        plan.changes.push(Change::RemoveSeat {
            channel: access.channel_id.clone(),
            user: user.user_id.clone(),
        });
    }
}
