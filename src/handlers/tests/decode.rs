//! Decoding a decision into what each receiver would see.

use super::*;

#[track_caller]
pub(super) fn plan(d: Decision) -> Plan {
    let plan = raw_plan(d);
    match &plan.turn {
        None => plan,
        // With an empty pool the first manager by id takes the turn.
        Some(turn) => plan
            .with_turn_to(Some(&turn.managers[0]))
            .expect("a variant"),
    }
}

/// The plan of a decision as made, its round-robin turn not taken.
#[track_caller]
pub(super) fn raw_plan(d: Decision) -> Plan {
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

/// Where a message goes, by exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Notify,
    Crm,
    Outbound,
    Reply,
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

/// Every message with its exchange (by target) and routing key.
pub(super) fn messages(outputs: &Outputs) -> Vec<(Target, String, Message)> {
    let names = Names::new("t");
    outputs
        .messages()
        .into_iter()
        .map(|m| {
            let (exchange, key) = names.destination(&id(ACC), &m.to);
            let target = match exchange.as_str() {
                "t.notify" => Target::Notify,
                "t.crm" => Target::Crm,
                "t.outbound" => Target::Outbound,
                "" => Target::Reply,
                other => panic!("unknown exchange {other}"),
            };
            (target, key, m)
        })
        .collect()
}

/// Decodes every output; checks on the way that each is valid JSON of its
/// message and routed where the contract says.
pub(super) fn outs(outputs: &Outputs) -> Vec<Out> {
    messages(outputs)
        .into_iter()
        .map(|(target, key, m)| match target {
            Target::Notify => {
                let n: Notification = serde_json::from_str(&m.body).expect("a notification");
                assert_eq!(key, names::user_key(&n.account_id, &n.user_id));
                assert_eq!(n.account_id.as_str(), ACC);
                Out {
                    target,
                    to: n.user_id.to_string(),
                    kind: n.kind.as_str().into(),
                    reason: n.reason,
                }
            }
            Target::Crm => {
                let v: Value = serde_json::from_str(&m.body).expect("a CRM event");
                let kind = v["type"].as_str().expect("a type").to_owned();
                assert_eq!(key, format!("{ACC}.{kind}"));
                assert_eq!(v["accountId"], ACC);
                Out {
                    target,
                    to: key,
                    kind,
                    reason: None,
                }
            }
            Target::Outbound => {
                let v: Value = serde_json::from_str(&m.body).expect("a message.send");
                let kind = v["type"].as_str().expect("a type").to_owned();
                assert_eq!(key, format!("{ACC}.{}", v["channelId"].as_str().unwrap()));
                Out {
                    target,
                    to: key,
                    kind,
                    reason: None,
                }
            }
            Target::Reply => Out {
                target,
                to: key,
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
    bodies(plan, Target::Notify)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

/// The first notification of `kind`.
#[track_caller]
pub(super) fn first_of(plan: &Plan, kind: &str) -> Notification {
    let found = notifications(plan)
        .into_iter()
        .find(|n| n.kind.as_str() == kind);
    found.unwrap_or_else(|| panic!("no {kind} in {:?}", told(plan)))
}

/// The bodies of one target's outputs, as JSON.
pub(super) fn bodies(plan: &Plan, target: Target) -> Vec<Value> {
    messages(&plan.outputs)
        .into_iter()
        .filter(|(t, _, _)| *t == target)
        .map(|(_, _, m)| serde_json::from_str(&m.body).unwrap())
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

/// The value the plan saves as `item`.
pub(super) fn written<T: serde::de::DeserializeOwned>(plan: &Plan, item: &Item) -> Option<T> {
    plan.changes.iter().find_map(|change| {
        let (saved, value) = match change {
            Change::SaveSettings(v) => (Item::Settings, serde_json::to_value(v)),
            Change::SavePipelines(v) => (Item::Pipelines, serde_json::to_value(v)),
            Change::SaveChannel(v) => {
                (Item::Channel(v.channel_id.clone()), serde_json::to_value(v))
            }
            Change::SaveUser(v) => (Item::User(v.user_id.clone()), serde_json::to_value(v)),
            Change::SaveChat(chat, v) => (Item::Chat(chat.clone()), serde_json::to_value(v)),
            Change::SaveContact(v) => {
                (Item::Contact(v.contact_id.clone()), serde_json::to_value(v))
            }
            Change::SaveDeal(v) => (Item::Deal(v.deal_id.clone()), serde_json::to_value(v)),
            Change::SaveRoundRobin(channel, v) => {
                (Item::RoundRobin(channel.clone()), serde_json::to_value(v))
            }
            _ => return None,
        };
        (saved == *item).then(|| serde_json::from_value(value.unwrap()).unwrap())
    })
}

/// `n` names the contact and the deal that these `contact.created` and
/// `deal.created` bodies announce.
#[track_caller]
pub(super) fn assert_names_created(n: &Notification, contact: &Value, deal: &Value) {
    let named = (json(&n.contact_id), json(&n.deal_id));
    assert_eq!(
        named,
        (contact["contactId"].clone(), deal["dealId"].clone())
    );
}

fn json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

/// The plan's changes that `keep` accepts, in order.
pub(super) fn changes_where(plan: &Plan, keep: impl Fn(&Change) -> bool) -> Vec<&Change> {
    plan.changes.iter().filter(|op| keep(op)).collect()
}

pub(super) fn has_guard_on(plan: &Plan, item: &Item) -> bool {
    plan.guards.iter().any(|g: &Guard| &g.item == item)
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
