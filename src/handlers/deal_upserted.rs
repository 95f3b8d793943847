//! `deal.upserted`: a deal the CRM created or changed. It is linked to each of
//! its contacts, so it shows in each contact's suitcase.

use super::{Change, Decision, Item, Plan, Read, Reads};
use crate::events::{DealUpserted, Rejection};
use crate::model::Deal;

pub fn reads(e: &DealUpserted) -> Vec<Read> {
    vec![
        Read::Item(Item::User(e.responsible_user_id.clone())),
        Read::Item(Item::Deal(e.deal_id.clone())),
    ]
}

pub fn decide(e: &DealUpserted, reads: &Reads) -> Decision {
    if reads.user(&e.responsible_user_id).is_none() {
        return Decision::Reject(Rejection::UnknownUser(e.responsible_user_id.to_string()));
    }
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
        guards: vec![
            reads.config_guard(),
            reads.guard(Item::Deal(e.deal_id.clone())),
        ],
        ..Plan::default()
    };
    for gone in reads.deal(&e.deal_id).iter().flat_map(|d| &d.contact_ids) {
        if !deal.contact_ids.contains(gone) {
            plan.changes.push(Change::UnlinkDeal {
                contact: gone.clone(),
                deal: deal.deal_id.clone(),
            });
        }
    }
    super::assign::save_deal(&mut plan, deal);
    Decision::Apply(plan)
}
