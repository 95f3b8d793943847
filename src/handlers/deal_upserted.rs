//! `deal.upserted`: a deal the CRM created or changed. It is indexed under each
//! of its contacts, so it shows in each contact's suitcase.

use super::{Decision, Key, Op, Plan, Read, Reads, json};
use crate::events::{DealUpserted, Rejection};
use crate::model::Deal;

pub fn reads(e: &DealUpserted) -> Vec<Read> {
    vec![
        Read::HGet(Key::Users, e.responsible_user_id.clone()),
        Read::Get(Key::Deal(e.deal_id.clone())),
    ]
}

pub fn decide(e: &DealUpserted, reads: &Reads) -> Decision {
    if reads
        .raw(&Read::HGet(Key::Users, e.responsible_user_id.clone()))
        .is_none()
    {
        return Decision::Reject(Rejection::UnknownUser(e.responsible_user_id.to_string()));
    }
    let deal_read = Read::Get(Key::Deal(e.deal_id.clone()));
    let old: Option<Deal> = reads.parsed(&deal_read);
    let deal = Deal {
        deal_id: e.deal_id.clone(),
        name: e.name.clone(),
        contact_ids: e.contact_ids.clone(),
        responsible_user_id: e.responsible_user_id.clone(),
        pipeline_id: e.pipeline_id.clone(),
        stage_id: e.stage_id.clone(),
        closed: e.closed,
        uri: e.uri.clone(),
    };
    let mut plan = Plan {
        guards: vec![reads.config_guard(), reads.guard(&deal_read)],
        ..Plan::default()
    };
    for gone in old.iter().flat_map(|d| &d.contact_ids) {
        if !deal.contact_ids.contains(gone) {
            plan.ops.push(Op::SRem(
                Key::ContactDeals(gone.clone()),
                deal.deal_id.clone(),
            ));
        }
    }
    for contact in &deal.contact_ids {
        plan.ops.push(Op::SAdd(
            Key::ContactDeals(contact.clone()),
            deal.deal_id.clone(),
        ));
    }
    plan.ops
        .push(Op::Set(Key::Deal(deal.deal_id.clone()), json(&deal)));
    Decision::Apply(plan)
}
