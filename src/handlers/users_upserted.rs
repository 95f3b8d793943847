//! `users.upserted`: creates or replaces users; each user's access list is
//! replaced whole, and his notification queue is declared before the ack.

use super::{Decision, Key, Op, Plan, Read, Reads, json};
use crate::events::{Rejection, UsersUpserted};
use crate::model::{Seat, User};

pub fn reads(e: &UsersUpserted) -> Vec<Read> {
    let mut reads = Vec::new();
    for user in &e.users {
        reads.push(Read::HGet(Key::Users, user.user_id.clone()));
        for access in &user.access {
            reads.push(Read::HGet(Key::Channels, access.channel_id.clone()));
        }
    }
    reads
}

pub fn decide(e: &UsersUpserted, reads: &Reads) -> Decision {
    let mut plan = Plan {
        guards: vec![reads.config_guard()],
        ..Plan::default()
    };
    for upsert in &e.users {
        for access in &upsert.access {
            let channel = Read::HGet(Key::Channels, access.channel_id.clone());
            if reads.raw(&channel).is_none() {
                return Decision::Reject(Rejection::UnknownChannel(access.channel_id.to_string()));
            }
        }
        let old: Option<User> = reads.parsed(&Read::HGet(Key::Users, upsert.user_id.clone()));
        for gone in old.iter().flat_map(|u| &u.access) {
            if !upsert
                .access
                .iter()
                .any(|a| a.channel_id == gone.channel_id)
            {
                plan.ops.push(Op::HDel(
                    Key::Seats(gone.channel_id.clone()),
                    upsert.user_id.clone(),
                ));
            }
        }
        for access in &upsert.access {
            let seat = Seat {
                role: access.role,
                receives_new_clients: access.receives_new_clients,
            };
            plan.ops.push(Op::HSet(
                Key::Seats(access.channel_id.clone()),
                upsert.user_id.clone(),
                json(&seat),
            ));
        }
        let user = User {
            user_id: upsert.user_id.clone(),
            name: upsert.name.clone(),
            access: upsert.access.clone(),
            removed: false,
        };
        plan.ops
            .push(Op::HSet(Key::Users, upsert.user_id.clone(), json(&user)));
        plan.declare_users.push(upsert.user_id.clone());
    }
    plan.ops.push(Op::Incr(Key::Config));
    Decision::Apply(plan)
}
