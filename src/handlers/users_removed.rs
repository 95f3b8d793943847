//! `users.removed`: the users lose all access. They are kept as removed, so a
//! later reply of theirs is rejected with `no_access`; their clients go to
//! someone else at the client's next message (the contract's "responsible
//! lost access").

use super::{Decision, Key, Op, Plan, Read, Reads, json};
use crate::events::{Rejection, UsersRemoved};
use crate::model::User;

pub fn reads(e: &UsersRemoved) -> Vec<Read> {
    e.user_ids
        .iter()
        .map(|id| Read::HGet(Key::Users, id.clone()))
        .collect()
}

pub fn decide(e: &UsersRemoved, reads: &Reads) -> Decision {
    let mut plan = Plan {
        guards: vec![reads.config_guard()],
        ..Plan::default()
    };
    for user_id in &e.user_ids {
        let Some(mut user) = reads.parsed::<User>(&Read::HGet(Key::Users, user_id.clone())) else {
            return Decision::Reject(Rejection::UnknownUser(user_id.to_string()));
        };
        for access in user.access.drain(..) {
            plan.ops
                .push(Op::HDel(Key::Seats(access.channel_id), user_id.clone()));
        }
        user.removed = true;
        plan.ops
            .push(Op::HSet(Key::Users, user_id.clone(), json(&user)));
    }
    plan.ops.push(Op::Incr(Key::Config));
    Decision::Apply(plan)
}
