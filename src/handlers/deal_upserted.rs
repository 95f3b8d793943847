//! `deal.upserted`: a deal the CRM created or changed. It is linked to each of
//! its contacts, so it shows in each contact's suitcase.

use super::{Change, Decision, Item, Plan, Read, Reads};
use crate::events::{DealUpserted, Rejection};

pub fn reads(e: &DealUpserted) -> Vec<Read> {
    vec![
        Read::Item(Item::User(e.deal.responsible_user_id.clone())),
        Read::Item(Item::Deal(e.deal.deal_id.clone())),
    ]
}

pub fn decide(e: &DealUpserted, reads: &Reads) -> Decision {
    let deal = &e.deal;
    if reads.user(&deal.responsible_user_id).is_none() {
        return Decision::Reject(Rejection::UnknownUser(deal.responsible_user_id.to_string()));
    }
    let mut plan = Plan {
        guards: vec![
            reads.config_guard(),
            reads.guard(Item::Deal(deal.deal_id.clone())),
        ],
        ..Plan::default()
    };
    for gone in reads
        .deal(&deal.deal_id)
        .iter()
        .flat_map(|d| &d.contact_ids)
    {
        if !deal.contact_ids.contains(gone) {
            plan.changes.push(Change::UnlinkDeal {
                contact: gone.clone(),
                deal: deal.deal_id.clone(),
            });
        }
    }
    super::assign::save_deal(&mut plan, deal.clone());
    Decision::Apply(plan)
}
