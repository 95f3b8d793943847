//! `settings.updated`: the new-client rules and CRM links of the account.
//! The pipeline and stage must be among the loaded pipelines.

use super::{Change, Decision, Item, Plan, Read, Reads};
use crate::events::{Rejection, SettingsUpdated};
use crate::model::Settings;

pub fn reads() -> Vec<Read> {
    vec![Read::Item(Item::Pipelines)]
}

pub fn decide(e: &SettingsUpdated, reads: &Reads) -> Decision {
    let pipelines = reads.pipelines().map(Vec::as_slice).unwrap_or_default();
    let wanted = &e.new_clients;
    let Some(pipeline) = pipelines
        .iter()
        .find(|p| p.pipeline_id == wanted.pipeline_id)
    else {
        return Decision::Reject(Rejection::Invalid(format!(
            "unknown pipeline {:?}",
            wanted.pipeline_id.as_str()
        )));
    };
    if !pipeline
        .stages
        .iter()
        .any(|s| s.stage_id == wanted.stage_id)
    {
        return Decision::Reject(Rejection::Invalid(format!(
            "unknown stage {:?} of pipeline {:?}",
            wanted.stage_id.as_str(),
            wanted.pipeline_id.as_str()
        )));
    }
    if !e.links.deal.contains("{dealId}") || !e.links.new_deal.contains("{contactId}") {
        return Decision::Reject(Rejection::InvalidField(
            "links.deal must contain {dealId} and links.newDeal {contactId}".into(),
        ));
    }
    let settings = Settings {
        new_clients: e.new_clients.clone(),
        links: e.links.clone(),
    };
    Decision::Apply(Plan {
        guards: vec![reads.config_guard(), reads.guard(Item::Pipelines)],
        changes: vec![Change::SaveSettings(settings), Change::ConfigChanged],
        ..Plan::default()
    })
}
