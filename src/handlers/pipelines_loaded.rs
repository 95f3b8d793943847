//! `pipelines.loaded`: replaces the account's pipelines.

use super::{Change, Decision, Plan, Reads};
use crate::events::{PipelinesLoaded, Rejection};

pub fn decide(e: &PipelinesLoaded, reads: &Reads) -> Decision {
    for p in &e.pipelines {
        let mut stages: Vec<_> = p.stages.iter().map(|s| &s.stage_id).collect();
        stages.sort();
        stages.dedup();
        if stages.len() != p.stages.len() {
            return Decision::Reject(Rejection::Invalid(format!(
                "pipeline {:?} lists a stage id twice",
                p.pipeline_id.as_str()
            )));
        }
    }
    Decision::Apply(Plan {
        guards: vec![reads.config_guard()],
        changes: vec![
            Change::SavePipelines(e.pipelines.clone()),
            Change::ConfigChanged,
        ],
        ..Plan::default()
    })
}
