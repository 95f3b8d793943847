//! Decoding a decision into what each receiver would see.

use super::*;

#[track_caller]
pub(super) fn plan(d: Decision) -> Plan {
    match d {
        Decision::Apply(plan) => plan,
        other => panic!("expected Apply, got {other:?}"),
    }
}

/// The outputs of a decision that changes no state (published, not recorded).
#[track_caller]
pub(super) fn answer(d: Decision) -> Plan {
    match d {
        Decision::Answer(outputs) => Plan {
            outputs,
            ..Plan::default()
        },
        other => panic!("expected Answer, got {other:?}"),
    }
}

#[track_caller]
pub(super) fn rejection(d: Decision) -> Rejection {
    match d {
        Decision::Reject(r) => r,
        other => panic!("expected Reject, got {other:?}"),
    }
}

/// One output as its receiver sees it: where it goes, to whom (the user for a
/// notification, else the routing key), its type and the rejection reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Out {
    pub(super) target: Target,
    pub(super) to: String,
    pub(super) kind: String,
    pub(super) reason: Option<RejectReason>,
}

/// Decodes every output; checks on the way that each is valid JSON of its
/// message and routed where the contract says.
pub(super) fn outs(outputs: &[Publish]) -> Vec<Out> {
    outputs
        .iter()
        .map(|p| match p.target {
            Target::Notify => {
                let n: Notification = serde_json::from_str(&p.body).expect("a notification");
                assert_eq!(p.routing_key, names::user_key(&n.account_id, &n.user_id));
                assert_eq!(n.account_id.as_str(), ACC);
                Out {
                    target: Target::Notify,
                    to: n.user_id.to_string(),
                    kind: n.kind.as_str().into(),
                    reason: n.reason,
                }
            }
            Target::Crm => {
                let v: Value = serde_json::from_str(&p.body).expect("a CRM event");
                let kind = v["type"].as_str().expect("a type").to_owned();
                assert_eq!(p.routing_key, format!("{ACC}.{kind}"));
                assert_eq!(v["accountId"], ACC);
                Out {
                    target: Target::Crm,
                    to: p.routing_key.clone(),
                    kind,
                    reason: None,
                }
            }
            Target::Outbound => {
                let v: Value = serde_json::from_str(&p.body).expect("a message.send");
                let kind = v["type"].as_str().expect("a type").to_owned();
                assert_eq!(
                    p.routing_key,
                    format!("{ACC}.{}", v["channelId"].as_str().unwrap())
                );
                Out {
                    target: Target::Outbound,
                    to: p.routing_key.clone(),
                    kind,
                    reason: None,
                }
            }
            Target::Reply => Out {
                target: Target::Reply,
                to: p.routing_key.clone(),
                kind: "reply".into(),
                reason: None,
            },
        })
        .collect()
}

/// Users who get a notification of `kind`, sorted.
pub(super) fn who(plan: &Plan, kind: &str) -> Vec<String> {
    let mut users: Vec<String> = outs(&plan.outputs)
        .into_iter()
        .filter(|o| o.target == Target::Notify && o.kind == kind)
        .map(|o| o.to)
        .collect();
    users.sort();
    users
}

/// Every user notified at all, with the kinds he got, sorted.
pub(super) fn told(plan: &Plan) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = outs(&plan.outputs)
        .into_iter()
        .filter(|o| o.target == Target::Notify)
        .map(|o| (o.to, o.kind))
        .collect();
    all.sort();
    all
}

pub(super) fn notifications(plan: &Plan) -> Vec<Notification> {
    plan.outputs
        .iter()
        .filter(|p| p.target == Target::Notify)
        .map(|p| serde_json::from_str(&p.body).unwrap())
        .collect()
}

/// The bodies of one target's outputs, as JSON.
pub(super) fn bodies(plan: &Plan, target: Target) -> Vec<Value> {
    plan.outputs
        .iter()
        .filter(|p| p.target == target)
        .map(|p| serde_json::from_str(&p.body).unwrap())
        .collect()
}

/// The CRM events of the plan, by type.
pub(super) fn crm_of(plan: &Plan, kind: &str) -> Vec<Value> {
    bodies(plan, Target::Crm)
        .into_iter()
        .filter(|v| v["type"] == kind)
        .collect()
}

pub(super) fn crm_types(plan: &Plan) -> Vec<String> {
    bodies(plan, Target::Crm)
        .iter()
        .map(|v| v["type"].as_str().unwrap().to_owned())
        .collect()
}

pub(super) fn s(list: &[&str]) -> Vec<String> {
    list.iter().map(|x| (*x).to_owned()).collect()
}

pub(super) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    v.sort();
    v
}

/// The value the plan writes to `key`, parsed.
pub(super) fn written<T: serde::de::DeserializeOwned>(plan: &Plan, key: &Key) -> Option<T> {
    plan.ops.iter().find_map(|op| match op {
        Op::Set(k, v) if k == key => Some(serde_json::from_str(v).unwrap()),
        _ => None,
    })
}

pub(super) fn has_guard_on(plan: &Plan, key: &Key) -> bool {
    plan.guards.iter().any(|g: &Guard| &g.key == key)
}

/// Every id a plan makes up: notification ids, created contact/deal ids, CRM event ids.
pub(super) fn made_up_ids(p: &Plan) -> Vec<String> {
    let mut out: Vec<String> = notifications(p)
        .into_iter()
        .map(|n| n.notification_id.to_string())
        .collect();
    for event in bodies(p, Target::Crm) {
        for field in ["eventId", "contactId", "dealId"] {
            if let Some(v) = event[field].as_str() {
                out.push(v.to_owned());
            }
        }
    }
    out
}
