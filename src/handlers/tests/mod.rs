//! Table-style tests of the pure decisions, written against the contract
//! (`contract.md`): what each user, the CRM and the gateway would receive.
//!
//! The standard cast of channel `wa1` (WhatsApp), see [`Snap::team`]:
//! `m1`, `m2` eligible managers, `m3` a manager without new clients,
//! `q1` quality control, `s1` supervisor.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::{
    ChatSnapshot, Decision, Guard, Key, Op, Plan, Read, Reads, ReplyTo, Stored, decide_account,
    decide_chat, json,
};
use crate::events::{
    ChannelsUpserted, ClientProfile, ContactUpserted, DealUpserted, Envelope, Event,
    MessageInbound, MessageOutbound, PipelinesLoaded, Rejection, SettingsUpdated,
    SuitcaseRequested, Timestamp, UserUpsert, UsersRemoved, UsersUpserted,
};
use crate::ids::Id;
use crate::model::{
    Access, Channel, Chat, ChatRef, ChatType, Contact, Deal, Distribution, Links, NewClients,
    Pending, Pipeline, Role, RoundRobin, Seat, Settings, Stage, User,
};
use crate::names;
use crate::output::{Notification, Publish, RejectReason, Target};

// ---------------------------------------------------------------- fixtures

const ACC: &str = "acc";
const WA1: &str = "wa1";
const CHAT: &str = "79001234567";
const PIPELINE: &str = "p1";
const STAGE: &str = "st-new";
const DEAL_LINK: &str = "https://crm.example/deals/{dealId}";
const NEW_DEAL_LINK: &str = "https://crm.example/deals/new?contact={contactId}";

fn id(s: &str) -> Id {
    Id::parse(s).unwrap()
}

fn ids(list: &[&str]) -> Vec<Id> {
    list.iter().map(|s| id(s)).collect()
}

fn ts() -> Timestamp {
    serde_json::from_value(Value::from("2026-01-01T10:00:00Z")).unwrap()
}

fn env(event: &str) -> Envelope {
    Envelope {
        event_id: id(event),
        account_id: id(ACC),
        occurred_at: ts(),
    }
}

fn stored<T: Serialize>(value: T) -> Stored<T> {
    Stored {
        raw: Some(json(&value)),
        value: Some(value),
    }
}

fn chat_ref() -> ChatRef {
    ChatRef {
        chat_type: ChatType::Whatsapp,
        chat_id: id(CHAT),
    }
}

fn settings(distribution: Distribution) -> Settings {
    Settings {
        new_clients: NewClients {
            pipeline_id: id(PIPELINE),
            stage_id: id(STAGE),
            distribution,
        },
        links: Links {
            deal: DEAL_LINK.into(),
            new_deal: NEW_DEAL_LINK.into(),
        },
    }
}

/// A chat settled on a contact.
fn known(contact: &str) -> Chat {
    Chat {
        contact_id: Some(id(contact)),
        pending: None,
        shown: vec![],
        seen_on: vec![id(WA1)],
    }
}

/// A chat waiting on `wa1` to be claimed, shown as new to `shown`.
fn pending(shown: &[&str]) -> Chat {
    Chat {
        contact_id: None,
        pending: Some(Pending {
            channel_id: Some(id(WA1)),
            shown: ids(shown),
            name: Some("Ivan".into()),
        }),
        shown: vec![],
        seen_on: vec![id(WA1)],
    }
}

/// A chat claimed by its contact's responsible after being shown to `shown`.
fn claimed(contact: &str, shown: &[&str]) -> Chat {
    Chat {
        contact_id: Some(id(contact)),
        pending: None,
        shown: ids(shown),
        seen_on: vec![id(WA1)],
    }
}

/// Builder of a [`ChatSnapshot`] for one channel.
#[derive(Clone)]
struct Snap(ChatSnapshot);

impl Snap {
    fn on(channel: &str, chat_type: ChatType) -> Self {
        Snap(ChatSnapshot {
            config: Some("7".into()),
            channel: Some(Channel {
                channel_id: id(channel),
                chat_type,
                name: format!("Support {channel}"),
            }),
            ..ChatSnapshot::default()
        })
    }

    /// Channel `wa1` with nobody on it.
    fn wa1() -> Self {
        Self::on(WA1, ChatType::Whatsapp)
    }

    /// Channel `wa1` with the standard cast.
    fn team() -> Self {
        Self::wa1()
            .seat("m1", Role::Manager, true)
            .seat("m2", Role::Manager, true)
            .seat("m3", Role::Manager, false)
            .seat("q1", Role::QualityControl, false)
            .seat("s1", Role::Supervisor, false)
    }

    fn seat(mut self, user: &str, role: Role, receives_new_clients: bool) -> Self {
        self.0.seats.retain(|(u, _)| u.as_str() != user);
        self.0.seats.push((
            id(user),
            Seat {
                role,
                receives_new_clients,
            },
        ));
        self.0.seats.sort_by(|a, b| a.0.cmp(&b.0));
        self
    }

    fn no_channel(mut self) -> Self {
        self.0.channel = None;
        self
    }

    fn settings(mut self, distribution: Distribution) -> Self {
        self.0.settings = Some(settings(distribution));
        self
    }

    fn pool(mut self, pool: RoundRobin) -> Self {
        self.0.round_robin = stored(pool);
        self
    }

    fn chat(mut self, chat: Chat) -> Self {
        self.0.chat = stored(chat);
        self
    }

    fn contact(mut self, contact: &str, responsible: &str) -> Self {
        self.0.contact = stored(Contact {
            contact_id: id(contact),
            name: "Ivan".into(),
            responsible_user_id: id(responsible),
            contact_data: vec![chat_ref()],
        });
        self
    }

    fn user(mut self, user: &str, access: &[(&str, Role)]) -> Self {
        self.0.user = Some(User {
            user_id: id(user),
            name: user.to_uppercase(),
            access: access
                .iter()
                .map(|(channel, role)| Access {
                    channel_id: id(channel),
                    role: *role,
                    receives_new_clients: true,
                })
                .collect(),
            removed: false,
        });
        self
    }

    /// The asking user as the store would load him: his access is his seat on
    /// this channel, or (without one) a seat on some other channel.
    fn asker(self, user: &str) -> Self {
        let channel = self
            .0
            .channel
            .as_ref()
            .map(|c| c.channel_id.to_string())
            .unwrap_or_else(|| WA1.into());
        let seat = self
            .0
            .seats
            .iter()
            .find(|(u, _)| u.as_str() == user)
            .map(|(_, s)| s.role);
        match seat {
            Some(role) => self.user(user, &[(&channel, role)]),
            None => self.user(user, &[("tg-other", Role::Manager)]),
        }
    }

    fn removed_user(mut self, user: &str) -> Self {
        self.0.user = Some(User {
            user_id: id(user),
            name: user.into(),
            access: vec![],
            removed: true,
        });
        self
    }

    fn deal(
        mut self,
        deal: &str,
        name: &str,
        responsible: &str,
        closed: bool,
        uri: Option<&str>,
    ) -> Self {
        self.0.deals.push(Deal {
            deal_id: id(deal),
            name: name.into(),
            contact_ids: vec![id("c1")],
            responsible_user_id: id(responsible),
            pipeline_id: id(PIPELINE),
            stage_id: id(STAGE),
            closed,
            uri: uri.map(str::to_owned),
        });
        self
    }

    fn build(self) -> ChatSnapshot {
        self.0
    }
}

fn inbound(event: &str) -> MessageInbound {
    MessageInbound {
        envelope: env(event),
        message_id: id("msg-in-1"),
        channel_id: id(WA1),
        chat_type: ChatType::Whatsapp,
        chat_id: id(CHAT),
        text: Some("Hello, do you deliver?".into()),
        content_uri: None,
        contact: Some(ClientProfile {
            name: Some("Ivan".into()),
            phone: Some("+79001234567".into()),
            username: None,
        }),
    }
}

fn outbound(event: &str, user: &str) -> MessageOutbound {
    outbound_on(event, user, WA1)
}

fn outbound_on(event: &str, user: &str, channel: &str) -> MessageOutbound {
    MessageOutbound {
        envelope: env(event),
        message_id: id("msg-out-1"),
        channel_id: id(channel),
        chat_type: ChatType::Whatsapp,
        chat_id: id(CHAT),
        user_id: id(user),
        text: "Yes, we do.".into(),
    }
}

fn suitcase(user: &str) -> SuitcaseRequested {
    SuitcaseRequested {
        envelope: env("ev-suit"),
        user_id: id(user),
        chat_type: ChatType::Whatsapp,
        chat_id: id(CHAT),
    }
}

fn decide_in(e: &MessageInbound, s: &ChatSnapshot) -> Decision {
    decide_chat(&Event::MessageInbound(e.clone()), s, &ReplyTo::default())
}

fn decide_out(e: &MessageOutbound, s: &ChatSnapshot) -> Decision {
    decide_chat(&Event::MessageOutbound(e.clone()), s, &ReplyTo::default())
}

fn reply_to() -> ReplyTo {
    ReplyTo {
        reply_to: Some("amq.rabbitmq.reply-to.g1".into()),
        correlation_id: Some("corr-1".into()),
    }
}

// ---------------------------------------------------------------- decoding

#[track_caller]
fn plan(d: Decision) -> Plan {
    match d {
        Decision::Apply(plan) => plan,
        other => panic!("expected Apply, got {other:?}"),
    }
}

/// The outputs of a decision that changes no state (published, not recorded).
#[track_caller]
fn answer(d: Decision) -> Plan {
    match d {
        Decision::Answer(outputs) => Plan {
            outputs,
            ..Plan::default()
        },
        other => panic!("expected Answer, got {other:?}"),
    }
}

#[track_caller]
fn rejection(d: Decision) -> Rejection {
    match d {
        Decision::Reject(r) => r,
        other => panic!("expected Reject, got {other:?}"),
    }
}

/// One output as its receiver sees it: where it goes, to whom (the user for a
/// notification, else the routing key), its type and the rejection reason.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Out {
    target: Target,
    to: String,
    kind: String,
    reason: Option<RejectReason>,
}

/// Decodes every output; checks on the way that each is valid JSON of its
/// message and routed where the contract says.
fn outs(outputs: &[Publish]) -> Vec<Out> {
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
fn who(plan: &Plan, kind: &str) -> Vec<String> {
    let mut users: Vec<String> = outs(&plan.outputs)
        .into_iter()
        .filter(|o| o.target == Target::Notify && o.kind == kind)
        .map(|o| o.to)
        .collect();
    users.sort();
    users
}

/// Every user notified at all, with the kinds he got, sorted.
fn told(plan: &Plan) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = outs(&plan.outputs)
        .into_iter()
        .filter(|o| o.target == Target::Notify)
        .map(|o| (o.to, o.kind))
        .collect();
    all.sort();
    all
}

fn notifications(plan: &Plan) -> Vec<Notification> {
    plan.outputs
        .iter()
        .filter(|p| p.target == Target::Notify)
        .map(|p| serde_json::from_str(&p.body).unwrap())
        .collect()
}

/// The bodies of one target's outputs, as JSON.
fn bodies(plan: &Plan, target: Target) -> Vec<Value> {
    plan.outputs
        .iter()
        .filter(|p| p.target == target)
        .map(|p| serde_json::from_str(&p.body).unwrap())
        .collect()
}

/// The CRM events of the plan, by type.
fn crm_of(plan: &Plan, kind: &str) -> Vec<Value> {
    bodies(plan, Target::Crm)
        .into_iter()
        .filter(|v| v["type"] == kind)
        .collect()
}

fn crm_types(plan: &Plan) -> Vec<String> {
    bodies(plan, Target::Crm)
        .iter()
        .map(|v| v["type"].as_str().unwrap().to_owned())
        .collect()
}

fn s(list: &[&str]) -> Vec<String> {
    list.iter().map(|x| (*x).to_owned()).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    v.sort();
    v
}

/// The value the plan writes to `key`, parsed.
fn written<T: serde::de::DeserializeOwned>(plan: &Plan, key: &Key) -> Option<T> {
    plan.ops.iter().find_map(|op| match op {
        Op::Set(k, v) if k == key => Some(serde_json::from_str(v).unwrap()),
        _ => None,
    })
}

fn has_guard_on(plan: &Plan, key: &Key) -> bool {
    plan.guards.iter().any(|g: &Guard| &g.key == key)
}

// ---------------------------------------------------------------- message.inbound

#[test]
fn inbound_known_contact_goes_to_his_responsible_and_the_observers() {
    let snap = Snap::team()
        .settings(Distribution::RoundRobin)
        .chat(known("c1"))
        .contact("c1", "m2")
        .build();
    let p = answer(decide_in(&inbound("ev-1"), &snap));
    assert_eq!(
        told(&p),
        pairs(&[
            ("m2", "chat.message"),
            ("q1", "chat.message"),
            ("s1", "chat.message")
        ])
    );
    assert!(crm_types(&p).is_empty(), "nothing for the CRM");
    assert!(
        p.ops.is_empty(),
        "a known chat changes nothing: {:?}",
        p.ops
    );
    for n in notifications(&p) {
        assert_eq!(n.contact_id, Some(id("c1")));
        assert_eq!(n.message_id, Some(id("msg-in-1")));
        assert_eq!(n.text.as_deref(), Some("Hello, do you deliver?"));
        assert_eq!(
            (n.channel_id.as_str(), n.chat_type, n.chat_id.as_str()),
            (WA1, ChatType::Whatsapp, CHAT)
        );
    }
}

#[test]
fn inbound_rejects_what_cannot_be_routed() {
    let table: Vec<(&str, MessageInbound, ChatSnapshot, &str)> = vec![
        (
            "unknown channel",
            inbound("ev-1"),
            Snap::team().no_channel().build(),
            "unknown_channel",
        ),
        (
            "chatType of another messenger",
            MessageInbound {
                chat_type: ChatType::Telegram,
                ..inbound("ev-1")
            },
            Snap::team().build(),
            "invalid",
        ),
        (
            "channel of another messenger",
            inbound("ev-1"),
            Snap::on(WA1, ChatType::Viber)
                .seat("m1", Role::Manager, true)
                .build(),
            "invalid",
        ),
    ];
    for (name, event, snap, code) in table {
        let r = rejection(decide_in(&event, &snap));
        assert_eq!(r.code(), code, "{name}: {r}");
    }
}

#[test]
fn inbound_round_robin_new_client_is_assigned_and_announced() {
    let snap = Snap::team().settings(Distribution::RoundRobin).build();
    let p = plan(decide_in(&inbound("ev-1"), &snap));

    // The CRM gets the contact and its deal, in the configured pipeline and stage.
    assert_eq!(crm_types(&p), s(&["contact.created", "deal.created"]));
    let contact = &crm_of(&p, "contact.created")[0];
    let deal = &crm_of(&p, "deal.created")[0];
    assert_eq!(contact["responsibleUserId"], "m1");
    assert_eq!(contact["name"], "Ivan");
    assert_eq!(
        contact["contactData"],
        serde_json::json!([{"chatType": "whatsapp", "chatId": CHAT}])
    );
    assert_eq!(deal["responsibleUserId"], "m1");
    assert_eq!(deal["pipelineId"], PIPELINE);
    assert_eq!(deal["stageId"], STAGE);
    assert_eq!(
        deal["contactIds"],
        serde_json::json!([contact["contactId"]])
    );
    for event in [contact, deal] {
        assert_eq!(event["occurredAt"], "2026-01-01T10:00:00Z");
        assert!(event["eventId"].as_str().is_some_and(|e| !e.is_empty()));
    }

    // Exactly the chosen manager, and the observers, get chat.new; nobody else hears of it.
    assert_eq!(
        told(&p),
        pairs(&[("m1", "chat.new"), ("q1", "chat.new"), ("s1", "chat.new")])
    );
    let to_m1 = notifications(&p)
        .into_iter()
        .find(|n| n.user_id.as_str() == "m1")
        .unwrap();
    assert_eq!(
        to_m1.contact_id.as_ref().map(Id::as_str),
        contact["contactId"].as_str()
    );
    assert_eq!(
        to_m1.deal_id.as_ref().map(Id::as_str),
        deal["dealId"].as_str()
    );

    // The turn is taken in the pool, guarded together with the chat.
    let pool: RoundRobin = written(&p, &Key::RoundRobin(id(WA1))).expect("pool written");
    assert_eq!(pool.turn, 1);
    assert_eq!(pool.last.get(&id("m1")), Some(&1));
    assert!(has_guard_on(&p, &Key::Chat(chat_ref())));
    assert!(has_guard_on(&p, &Key::RoundRobin(id(WA1))));
    assert!(has_guard_on(&p, &Key::Config));

    // The chat, contact and deal are stored.
    let chat: Chat = written(&p, &Key::Chat(chat_ref())).expect("chat written");
    assert_eq!(
        chat.contact_id.as_ref().map(Id::as_str),
        contact["contactId"].as_str()
    );
    assert!(chat.pending.is_none());
    let contact_id = chat.contact_id.unwrap();
    let stored_contact: Contact =
        written(&p, &Key::Contact(contact_id.clone())).expect("contact written");
    assert_eq!(stored_contact.responsible_user_id, id("m1"));
    let deal_id = id(deal["dealId"].as_str().unwrap());
    assert!(
        p.ops
            .contains(&Op::SAdd(Key::ContactDeals(contact_id), deal_id.clone()))
    );
    let stored_deal: Deal = written(&p, &Key::Deal(deal_id)).expect("deal written");
    assert!(!stored_deal.closed);
}

#[test]
fn inbound_round_robin_takes_turns() {
    // m1 got the last client, so m2 is next; m3 (no new clients) never is.
    let mut last = std::collections::BTreeMap::new();
    last.insert(id("m1"), 1);
    let snap = Snap::team()
        .settings(Distribution::RoundRobin)
        .pool(RoundRobin { turn: 1, last })
        .build();
    let p = plan(decide_in(&inbound("ev-2"), &snap));
    assert_eq!(who(&p, "chat.new"), s(&["m2", "q1", "s1"]));
    assert_eq!(crm_of(&p, "deal.created")[0]["responsibleUserId"], "m2");
    let pool: RoundRobin = written(&p, &Key::RoundRobin(id(WA1))).unwrap();
    assert_eq!(pool.turn, 2);
    assert_eq!(pool.last.get(&id("m2")), Some(&2));
}

#[test]
fn inbound_a_manager_without_new_clients_is_not_eligible() {
    for distribution in [Distribution::RoundRobin, Distribution::FirstReply] {
        let snap = Snap::wa1()
            .seat("m1", Role::Manager, true)
            .seat("m3", Role::Manager, false)
            .settings(distribution)
            .build();
        let p = plan(decide_in(&inbound("ev-1"), &snap));
        assert_eq!(told(&p), pairs(&[("m1", "chat.new")]), "{distribution:?}");
    }
}

#[test]
fn inbound_first_reply_shows_the_chat_to_every_eligible_manager() {
    let snap = Snap::team().settings(Distribution::FirstReply).build();
    let p = plan(decide_in(&inbound("ev-1"), &snap));
    assert_eq!(
        told(&p),
        pairs(&[
            ("m1", "chat.new"),
            ("m2", "chat.new"),
            ("q1", "chat.new"),
            ("s1", "chat.new")
        ])
    );
    assert!(crm_types(&p).is_empty(), "nothing is created yet");
    assert!(!p.ops.iter().any(|op| matches!(
        op,
        Op::Set(Key::Contact(_) | Key::Deal(_) | Key::RoundRobin(_), _)
    )));
    let chat: Chat = written(&p, &Key::Chat(chat_ref())).expect("chat written as pending");
    let pending = chat.pending.expect("pending");
    assert_eq!(pending.shown, ids(&["m1", "m2"]));
    assert_eq!(pending.channel_id, Some(id(WA1)));
    assert_eq!(pending.name.as_deref(), Some("Ivan"));
    assert!(chat.contact_id.is_none());
    for n in notifications(&p) {
        assert_eq!(n.contact_id, None);
        assert_eq!(n.deal_id, None);
    }
}

#[test]
fn inbound_later_messages_of_a_pending_chat_are_chat_message() {
    let snap = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(pending(&["m1", "m2"]))
        .build();
    let p = answer(decide_in(&inbound("ev-2"), &snap));
    assert_eq!(
        told(&p),
        pairs(&[
            ("m1", "chat.message"),
            ("m2", "chat.message"),
            ("q1", "chat.message"),
            ("s1", "chat.message")
        ])
    );
    assert!(crm_types(&p).is_empty());
    assert!(p.ops.is_empty(), "nothing new to remember: {:?}", p.ops);
}

#[test]
fn inbound_pending_chat_is_shown_to_a_manager_who_became_eligible_since() {
    let snap = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(pending(&["m1"]))
        .build();
    let p = plan(decide_in(&inbound("ev-2"), &snap));
    assert_eq!(who(&p, "chat.new"), s(&["m2"]));
    assert_eq!(who(&p, "chat.message"), s(&["m1", "q1", "s1"]));
    let chat: Chat = written(&p, &Key::Chat(chat_ref())).unwrap();
    assert_eq!(chat.pending.unwrap().shown, ids(&["m1", "m2"]));
}

#[test]
fn inbound_without_settings_is_handled_as_first_reply() {
    let with = plan(decide_in(
        &inbound("ev-1"),
        &Snap::team().settings(Distribution::FirstReply).build(),
    ));
    let without = plan(decide_in(&inbound("ev-1"), &Snap::team().build()));
    assert_eq!(told(&without), told(&with));
    assert_eq!(without.ops, with.ops);
    assert!(crm_types(&without).is_empty());
}

#[test]
fn inbound_with_no_eligible_manager_goes_to_the_supervisors() {
    for settings in [
        Some(Distribution::RoundRobin),
        Some(Distribution::FirstReply),
        None,
    ] {
        let mut snap = Snap::wa1()
            .seat("m3", Role::Manager, false)
            .seat("q1", Role::QualityControl, false)
            .seat("s1", Role::Supervisor, false)
            .seat("s2", Role::Supervisor, true);
        if let Some(d) = settings {
            snap = snap.settings(d);
        }
        let p = plan(decide_in(&inbound("ev-1"), &snap.build()));
        assert_eq!(
            told(&p),
            pairs(&[("q1", "chat.new"), ("s1", "chat.new"), ("s2", "chat.new")]),
            "{settings:?}"
        );
        assert!(
            crm_types(&p).is_empty(),
            "{settings:?}: the chat waits unclaimed"
        );
        let chat: Chat = written(&p, &Key::Chat(chat_ref())).unwrap();
        assert_eq!(
            chat.pending.unwrap().shown,
            ids(&["s1", "s2"]),
            "{settings:?}"
        );
    }
}

#[test]
fn inbound_responsible_lost_access_round_robin_hands_the_contact_over() {
    let snap = Snap::team()
        .settings(Distribution::RoundRobin)
        .chat(known("c1"))
        .contact("c1", "gone")
        .build();
    let p = plan(decide_in(&inbound("ev-1"), &snap));
    assert_eq!(
        crm_types(&p),
        s(&["contact.responsibleChanged", "deal.created"])
    );
    let changed = &crm_of(&p, "contact.responsibleChanged")[0];
    assert_eq!(changed["contactId"], "c1");
    assert_eq!(changed["responsibleUserId"], "m1");
    assert_eq!(changed["previousUserId"], "gone");
    let deal = &crm_of(&p, "deal.created")[0];
    assert_eq!(deal["contactIds"], serde_json::json!(["c1"]));
    assert_eq!(deal["responsibleUserId"], "m1");
    assert_eq!(who(&p, "chat.new"), s(&["m1"]));
    assert!(
        !told(&p).iter().any(|(u, _)| u == "gone"),
        "the old responsible hears nothing"
    );
    // The chat existed, so the observers see one more message of it.
    assert_eq!(who(&p, "chat.message"), s(&["q1", "s1"]));
    let contact: Contact = written(&p, &Key::Contact(id("c1"))).unwrap();
    assert_eq!(contact.responsible_user_id, id("m1"));
    assert!(has_guard_on(&p, &Key::Contact(id("c1"))));
}

#[test]
fn inbound_responsible_lost_access_first_reply_waits_for_a_claim() {
    let snap = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(known("c1"))
        .contact("c1", "gone")
        .build();
    let p = plan(decide_in(&inbound("ev-1"), &snap));
    assert!(crm_types(&p).is_empty());
    assert_eq!(who(&p, "chat.new"), s(&["m1", "m2"]));
    let chat: Chat = written(&p, &Key::Chat(chat_ref())).unwrap();
    assert_eq!(chat.contact_id, Some(id("c1")), "the contact stays");
    assert_eq!(chat.pending.unwrap().shown, ids(&["m1", "m2"]));
}

#[test]
fn inbound_round_robin_withdraws_a_chat_shown_before_under_first_reply() {
    let snap = Snap::team()
        .settings(Distribution::RoundRobin)
        .chat(pending(&["m1", "m2"]))
        .build();
    let p = plan(decide_in(&inbound("ev-3"), &snap));
    assert_eq!(who(&p, "chat.new"), s(&["m1"]));
    assert_eq!(who(&p, "chat.withdrawn"), s(&["m2"]));
    assert_eq!(crm_types(&p), s(&["contact.created", "deal.created"]));
}

/// Every id a plan makes up: notification ids, created contact/deal ids, CRM event ids.
fn made_up_ids(p: &Plan) -> Vec<String> {
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

#[test]
fn inbound_ids_repeat_for_the_same_event_and_differ_for_another() {
    let snap = Snap::team().settings(Distribution::RoundRobin).build();
    let once = decide_in(&inbound("ev-1"), &snap);
    let twice = decide_in(&inbound("ev-1"), &snap);
    assert_eq!(
        once, twice,
        "the same event decides the same way, byte for byte"
    );
    let first = made_up_ids(&plan(once));
    // 3 notifications, contact.created (eventId, contactId), deal.created (eventId, dealId).
    assert_eq!(first.len(), 3 + 2 + 2);
    let other = made_up_ids(&plan(decide_in(&inbound("ev-2"), &snap)));
    let first: BTreeSet<_> = first.into_iter().collect();
    let other: BTreeSet<_> = other.into_iter().collect();
    assert!(
        first.is_disjoint(&other),
        "another event makes other ids: {first:?} / {other:?}"
    );
    // Within one event, no two things share an id.
    assert_eq!(first.len(), 3 + 2 + 2);
}

#[test]
fn inbound_notification_ids_repeat_for_first_reply_too() {
    let snap = Snap::team().settings(Distribution::FirstReply).build();
    let a = made_up_ids(&plan(decide_in(&inbound("ev-1"), &snap)));
    let b = made_up_ids(&plan(decide_in(&inbound("ev-1"), &snap)));
    assert_eq!(a, b);
    assert_eq!(a.len(), 4);
}

#[test]
fn inbound_observers_of_another_channel_see_a_chat_new_to_them_as_chat_new() {
    // Contract: "Every quality_control and supervisor user of the channel sees every
    // message of every chat on it (`chat.new` for a new chat, `chat.message` after)."
    // The client first wrote to wa1 (pending there); now he writes to wa2, whose
    // quality control has never seen this chat.
    let snap = Snap::on("wa2", ChatType::Whatsapp)
        .seat("m5", Role::Manager, true)
        .seat("q5", Role::QualityControl, false)
        .settings(Distribution::FirstReply)
        .chat(pending(&["m1"]))
        .build();
    let e = MessageInbound {
        channel_id: id("wa2"),
        ..inbound("ev-9")
    };
    let p = plan(decide_in(&e, &snap));
    assert_eq!(told(&p), pairs(&[("m5", "chat.new"), ("q5", "chat.new")]));
}

// ---------------------------------------------------------------- message.outbound

/// What a reply comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Dead-lettered with this rejection code.
    Dead(&'static str),
    /// Not sent: the author gets `message.rejected` with this reason.
    Refused(RejectReason),
    /// Sent to the gateway; nothing else changes.
    Sent,
    /// The author claims the chat, then it is sent.
    Claims,
}

#[test]
fn outbound_permission_table() {
    use Expect::*;
    use RejectReason::*;
    let team = Snap::team().settings(Distribution::FirstReply);
    let own = team.clone().chat(known("c1")).contact("c1", "m1");
    let waiting = team.clone().chat(pending(&["m1", "m2"]));
    let nobody_eligible = Snap::wa1()
        .seat("m3", Role::Manager, false)
        .seat("s1", Role::Supervisor, false)
        .settings(Distribution::FirstReply)
        .chat(pending(&["s1"]));
    let lost_claim = team
        .clone()
        .chat(claimed("c1", &["m1", "m2"]))
        .contact("c1", "m2");
    // One user, manager on wa1 and quality control on wa2: seats are per channel.
    let both = [("wa1", Role::Manager), ("wa2", Role::QualityControl)];
    let u_on_wa1 = Snap::wa1()
        .seat("u", Role::Manager, true)
        .chat(known("c1"))
        .contact("c1", "u")
        .user("u", &both);
    let u_on_wa2 = Snap::on("wa2", ChatType::Whatsapp)
        .seat("u", Role::QualityControl, false)
        .chat(known("c1"))
        .contact("c1", "u")
        .user("u", &both);

    #[rustfmt::skip]
    let table: Vec<(&str, Snap, &str, &str, Expect)> = vec![
        // (case, snapshot, author, channel, outcome)
        ("unknown channel", own.clone().no_channel().asker("m1"), "m1", WA1, Dead("unknown_channel")),
        ("unknown user", own.clone(), "m1", WA1, Dead("unknown_user")),
        ("no seat on the channel", own.clone().asker("x9"), "x9", WA1, Refused(NoAccess)),
        ("removed user", own.clone().removed_user("gone"), "gone", WA1, Refused(NoAccess)),
        ("quality control, known chat", own.clone().asker("q1"), "q1", WA1, Refused(ReadOnly)),
        ("quality control, pending chat", waiting.clone().asker("q1"), "q1", WA1, Refused(ReadOnly)),
        ("manager, own contact", own.clone().asker("m1"), "m1", WA1, Sent),
        ("manager, another's contact", own.clone().asker("m2"), "m2", WA1, Refused(NotResponsible)),
        ("manager without new clients, another's contact", own.clone().asker("m3"), "m3", WA1, Refused(NotResponsible)),
        ("manager shown the chat, claimed by another", lost_claim.clone().asker("m1"), "m1", WA1, Refused(ClaimedByOther)),
        ("the winner of that claim", lost_claim.clone().asker("m2"), "m2", WA1, Sent),
        ("eligible manager, pending chat", waiting.clone().asker("m1"), "m1", WA1, Claims),
        ("eligible manager not shown yet, pending chat", team.clone().chat(pending(&["m1"])).asker("m2"), "m2", WA1, Claims),
        ("non-eligible manager, pending chat, others eligible", waiting.clone().asker("m3"), "m3", WA1, Refused(NotResponsible)),
        ("non-eligible manager, pending chat, nobody eligible", nobody_eligible.clone().asker("m3"), "m3", WA1, Claims),
        ("manager, chat never seen", team.clone().asker("m1"), "m1", WA1, Refused(NotResponsible)),
        ("supervisor, another's contact", own.clone().asker("s1"), "s1", WA1, Sent),
        ("supervisor, claimed chat", lost_claim.clone().asker("s1"), "s1", WA1, Sent),
        ("supervisor, pending chat", waiting.clone().asker("s1"), "s1", WA1, Claims),
        ("supervisor, pending chat nobody is eligible for", nobody_eligible.clone().asker("s1"), "s1", WA1, Claims),
        ("supervisor, chat never seen", team.clone().asker("s1"), "s1", WA1, Claims),
        ("same user as manager on wa1", u_on_wa1, "u", "wa1", Sent),
        ("same user as quality control on wa2", u_on_wa2, "u", "wa2", Refused(ReadOnly)),
    ];

    for (case, snap, author, channel, expect) in table {
        let snap = snap.build();
        let decision = decide_out(&outbound_on("ev-o1", author, channel), &snap);
        match expect {
            Dead(code) => assert_eq!(rejection(decision).code(), code, "{case}"),
            Refused(reason) => {
                let p = plan(decision);
                let expected = vec![Out {
                    target: Target::Notify,
                    to: author.into(),
                    kind: "message.rejected".into(),
                    reason: Some(reason),
                }];
                assert_eq!(outs(&p.outputs), expected, "{case}");
                assert!(p.ops.is_empty(), "{case}: a refused reply changes nothing");
                let note = &notifications(&p)[0];
                assert_eq!(note.message_id, Some(id("msg-out-1")), "{case}");
            }
            Sent | Claims => {
                let p = plan(decision);
                let o = outs(&p.outputs);
                let sends: Vec<_> = o.iter().filter(|o| o.target == Target::Outbound).collect();
                assert_eq!(sends.len(), 1, "{case}: {o:?}");
                assert_eq!(sends[0].kind, "message.send", "{case}");
                assert_eq!(sends[0].to, format!("{ACC}.{channel}"), "{case}");
                assert!(
                    !o.iter().any(|o| o.kind == "message.rejected"),
                    "{case}: {o:?}"
                );
                let assigned = who(&p, "chat.assigned");
                if expect == Claims {
                    assert_eq!(assigned, s(&[author]), "{case}");
                    let chat: Chat = written(&p, &Key::Chat(chat_ref())).expect(case);
                    assert!(chat.pending.is_none(), "{case}");
                    let contact: Contact =
                        written(&p, &Key::Contact(chat.contact_id.unwrap())).expect(case);
                    assert_eq!(contact.responsible_user_id.as_str(), author, "{case}");
                } else {
                    assert!(assigned.is_empty(), "{case}");
                    assert!(p.ops.is_empty(), "{case}: {:?}", p.ops);
                    assert!(crm_types(&p).is_empty(), "{case}");
                }
            }
        }
    }
}

#[test]
fn outbound_rejects_a_chat_type_of_another_messenger() {
    let snap = Snap::team()
        .chat(known("c1"))
        .contact("c1", "m1")
        .asker("m1")
        .build();
    let e = MessageOutbound {
        chat_type: ChatType::Telegram,
        ..outbound("ev-o1", "m1")
    };
    assert_eq!(rejection(decide_out(&e, &snap)).code(), "invalid");
}

#[test]
fn outbound_sent_reply_carries_the_request_and_the_contact() {
    let snap = Snap::team()
        .chat(known("c1"))
        .contact("c1", "m1")
        .asker("m1")
        .build();
    let p = plan(decide_out(&outbound("ev-o1", "m1"), &snap));
    let send = &bodies(&p, Target::Outbound)[0];
    assert_eq!(
        *send,
        serde_json::json!({
            "type": "message.send",
            "eventId": "ev-o1",
            "accountId": ACC,
            "messageId": "msg-out-1",
            "channelId": WA1,
            "chatType": "whatsapp",
            "chatId": CHAT,
            "userId": "m1",
            "contactId": "c1",
            "text": "Yes, we do.",
            "occurredAt": "2026-01-01T10:00:00Z",
        })
    );
    // Quality control and supervisors see it; the author and the other managers do not.
    assert_eq!(
        told(&p),
        pairs(&[("q1", "chat.message"), ("s1", "chat.message")])
    );
    for n in notifications(&p) {
        assert_eq!(n.text.as_deref(), Some("Yes, we do."));
        assert_eq!(n.contact_id, Some(id("c1")));
    }
}

#[test]
fn outbound_supervisor_reply_is_seen_by_the_other_observers_only() {
    let snap = Snap::team()
        .seat("s2", Role::Supervisor, false)
        .chat(known("c1"))
        .contact("c1", "m1")
        .asker("s1")
        .build();
    let p = plan(decide_out(&outbound("ev-o1", "s1"), &snap));
    assert_eq!(bodies(&p, Target::Outbound)[0]["userId"], "s1");
    assert_eq!(
        told(&p),
        pairs(&[("q1", "chat.message"), ("s2", "chat.message")])
    );
}

#[test]
fn outbound_claim_by_a_manager_creates_assigns_and_withdraws() {
    // s1 was shown the chat too (say, when nobody was eligible): he keeps it.
    let snap = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(pending(&["m1", "m2", "s1"]))
        .asker("m1")
        .build();
    let p = plan(decide_out(&outbound("ev-o1", "m1"), &snap));

    assert_eq!(crm_types(&p), s(&["contact.created", "deal.created"]));
    let contact = &crm_of(&p, "contact.created")[0];
    let deal = &crm_of(&p, "deal.created")[0];
    assert_eq!(contact["responsibleUserId"], "m1");
    assert_eq!(
        contact["name"], "Ivan",
        "the name the gateway gave with the first message"
    );
    assert_eq!(deal["responsibleUserId"], "m1");
    assert_eq!(
        (&deal["pipelineId"], &deal["stageId"]),
        (&Value::from(PIPELINE), &Value::from(STAGE))
    );
    assert_eq!(
        deal["contactIds"],
        serde_json::json!([contact["contactId"]])
    );

    assert_eq!(who(&p, "chat.assigned"), s(&["m1"]));
    assert_eq!(
        who(&p, "chat.withdrawn"),
        s(&["m2"]),
        "not to the supervisor, who may still write"
    );
    assert_eq!(who(&p, "chat.message"), s(&["q1", "s1"]));
    assert!(who(&p, "chat.new").is_empty());

    let assigned = notifications(&p)
        .into_iter()
        .find(|n| n.kind.as_str() == "chat.assigned")
        .unwrap();
    assert_eq!(
        assigned.contact_id.as_ref().map(Id::as_str),
        contact["contactId"].as_str()
    );
    assert_eq!(
        assigned.deal_id.as_ref().map(Id::as_str),
        deal["dealId"].as_str()
    );

    let send = &bodies(&p, Target::Outbound)[0];
    assert_eq!(send["contactId"], contact["contactId"]);
    assert_eq!(send["userId"], "m1");

    // The claim is a guarded write of the chat, remembering who was shown it.
    assert!(has_guard_on(&p, &Key::Chat(chat_ref())));
    let chat: Chat = written(&p, &Key::Chat(chat_ref())).unwrap();
    assert!(chat.pending.is_none());
    assert_eq!(chat.shown, ids(&["m1", "m2", "s1"]));
}

#[test]
fn outbound_claim_without_settings_creates_the_contact_but_no_deal() {
    let snap = Snap::team()
        .chat(pending(&["m1", "m2"]))
        .asker("m2")
        .build();
    let p = plan(decide_out(&outbound("ev-o1", "m2"), &snap));
    assert_eq!(crm_types(&p), s(&["contact.created"]));
    assert!(!p.ops.iter().any(|op| matches!(
        op,
        Op::Set(Key::Deal(_), _) | Op::SAdd(Key::ContactDeals(_), _)
    )));
    assert_eq!(who(&p, "chat.assigned"), s(&["m2"]));
    assert_eq!(who(&p, "chat.withdrawn"), s(&["m1"]));
    let assigned = notifications(&p)
        .into_iter()
        .find(|n| n.kind.as_str() == "chat.assigned")
        .unwrap();
    assert_eq!(assigned.deal_id, None);
}

#[test]
fn outbound_claim_by_a_supervisor_withdraws_from_the_managers() {
    let snap = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(pending(&["m1", "m2"]))
        .asker("s1")
        .build();
    let p = plan(decide_out(&outbound("ev-o1", "s1"), &snap));
    assert_eq!(who(&p, "chat.assigned"), s(&["s1"]));
    assert_eq!(who(&p, "chat.withdrawn"), s(&["m1", "m2"]));
    assert_eq!(crm_of(&p, "contact.created")[0]["responsibleUserId"], "s1");
    assert_eq!(crm_of(&p, "deal.created")[0]["responsibleUserId"], "s1");
    assert_eq!(who(&p, "chat.message"), s(&["q1"]));
}

#[test]
fn outbound_claim_of_a_contact_whose_responsible_lost_access_hands_it_over() {
    let mut chat = pending(&["m1", "m2"]);
    chat.contact_id = Some(id("c1"));
    let snap = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(chat)
        .contact("c1", "gone")
        .asker("m2")
        .build();
    let p = plan(decide_out(&outbound("ev-o1", "m2"), &snap));
    assert_eq!(
        crm_types(&p),
        s(&["contact.responsibleChanged", "deal.created"])
    );
    let changed = &crm_of(&p, "contact.responsibleChanged")[0];
    assert_eq!(
        (
            changed["previousUserId"].as_str(),
            changed["responsibleUserId"].as_str()
        ),
        (Some("gone"), Some("m2"))
    );
    assert_eq!(bodies(&p, Target::Outbound)[0]["contactId"], "c1");
}

#[test]
fn outbound_claim_ids_repeat_for_the_same_event() {
    let snap = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(pending(&["m1", "m2"]))
        .asker("m1")
        .build();
    let a = decide_out(&outbound("ev-o1", "m1"), &snap);
    let b = decide_out(&outbound("ev-o1", "m1"), &snap);
    assert_eq!(a, b);
    let other = made_up_ids(&plan(decide_out(&outbound("ev-o2", "m1"), &snap)));
    let a: BTreeSet<_> = made_up_ids(&plan(a)).into_iter().collect();
    assert!(a.is_disjoint(&other.into_iter().collect()));
}

#[test]
fn outbound_responsible_manager_may_write_to_his_contact_while_it_waits() {
    // Contract, permission table: "`manager` | contacts he is responsible for; ...".
    // c1's responsible m3 lost access, the client wrote (the chat now waits under
    // first_reply), then m3 got his seat back without new clients. The contact
    // still names him responsible, so his reply should go out.
    let mut chat = pending(&["m1", "m2"]);
    chat.contact_id = Some(id("c1"));
    let snap = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(chat)
        .contact("c1", "m3")
        .asker("m3")
        .build();
    let p = plan(decide_out(&outbound("ev-o1", "m3"), &snap));
    assert!(
        who(&p, "message.rejected").is_empty(),
        "{:?}",
        outs(&p.outputs)
    );
    assert_eq!(bodies(&p, Target::Outbound).len(), 1);
}

// ---------------------------------------------------------------- suitcase.requested

#[track_caller]
fn suitcase_answer(snap: &ChatSnapshot, user: &str) -> Value {
    let reply = reply_to();
    match decide_chat(&Event::SuitcaseRequested(suitcase(user)), snap, &reply) {
        Decision::Answer(publishes) => {
            assert_eq!(publishes.len(), 1);
            let p = &publishes[0];
            assert_eq!(p.target, Target::Reply);
            assert_eq!(Some(&p.routing_key), reply.reply_to.as_ref());
            assert_eq!(p.correlation_id, reply.correlation_id);
            serde_json::from_str(&p.body).unwrap()
        }
        other => panic!("expected Answer, got {other:?}"),
    }
}

#[test]
fn suitcase_needs_reply_to_and_correlation_id() {
    let snap = Snap::team()
        .chat(known("c1"))
        .contact("c1", "m1")
        .asker("m1")
        .build();
    let event = Event::SuitcaseRequested(suitcase("m1"));
    let no_reply_to = ReplyTo {
        reply_to: None,
        ..reply_to()
    };
    let no_correlation = ReplyTo {
        correlation_id: None,
        ..reply_to()
    };
    for props in [no_reply_to, no_correlation, ReplyTo::default()] {
        assert_eq!(
            rejection(decide_chat(&event, &snap, &props)).code(),
            "invalid",
            "{props:?}"
        );
    }
}

#[test]
fn suitcase_errors() {
    let chat = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(known("c1"))
        .contact("c1", "m1");
    let table: Vec<(&str, ChatSnapshot, &str, Value)> = vec![
        (
            "unknown user",
            chat.clone().build(),
            "m1",
            serde_json::json!({"error": "no_access"}),
        ),
        (
            "removed user",
            chat.clone().removed_user("m1").build(),
            "m1",
            serde_json::json!({"error": "no_access"}),
        ),
        (
            "user with no access",
            chat.clone().user("m1", &[]).build(),
            "m1",
            serde_json::json!({"error": "no_access"}),
        ),
        (
            "chat never seen",
            Snap::team().asker("m1").build(),
            "m1",
            serde_json::json!({"error": "unknown_chat"}),
        ),
        (
            "chat still pending",
            Snap::team().chat(pending(&["m1"])).asker("m1").build(),
            "m1",
            serde_json::json!({"error": "unknown_chat"}),
        ),
    ];
    for (case, snap, user, expected) in table {
        assert_eq!(suitcase_answer(&snap, user), expected, "{case}");
    }
}

#[test]
fn suitcase_lists_the_askers_deals_open_first_with_links() {
    let snap = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(known("c1"))
        .contact("c1", "m1")
        .deal("d1", "A doors", "m1", true, None)
        .deal("d2", "B floors", "m2", false, None)
        .deal(
            "d3",
            "C windows",
            "m1",
            false,
            Some("https://crm.example/custom/d3"),
        )
        .deal("d4", "D roof", "m1", false, None)
        .asker("m1")
        .build();
    let answer = suitcase_answer(&snap, "m1");
    assert_eq!(answer["contactId"], "c1");
    assert_eq!(
        answer["newDealUri"],
        "https://crm.example/deals/new?contact=c1"
    );
    let deals = answer["deals"].as_array().unwrap();
    let listed: Vec<(&str, bool)> = deals
        .iter()
        .map(|d| {
            (
                d["dealId"].as_str().unwrap(),
                d["closed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 3, "only m1's deals: {listed:?}");
    assert!(!listed.iter().any(|(d, _)| *d == "d2"));
    assert_eq!(
        listed.last(),
        Some(&("d1", true)),
        "closed deals after open ones"
    );
    let uri = |deal: &str| deals.iter().find(|d| d["dealId"] == deal).unwrap()["uri"].clone();
    assert_eq!(
        uri("d3"),
        "https://crm.example/custom/d3",
        "the deal's own uri wins"
    );
    assert_eq!(uri("d4"), "https://crm.example/deals/d4", "else links.deal");
    assert_eq!(uri("d1"), "https://crm.example/deals/d1");
    let d4 = deals.iter().find(|d| d["dealId"] == "d4").unwrap();
    assert_eq!(d4["name"], "D roof");
    assert_eq!(d4["pipelineId"], PIPELINE);
    assert_eq!(d4["stageId"], STAGE);
}

#[test]
fn suitcase_of_another_user_and_of_a_user_without_deals() {
    let base = Snap::team()
        .settings(Distribution::FirstReply)
        .chat(known("c1"))
        .contact("c1", "m1")
        .deal("d1", "A doors", "m1", false, None)
        .deal("d2", "B floors", "m2", false, None);
    let m2 = suitcase_answer(&base.clone().asker("m2").build(), "m2");
    assert_eq!(m2["deals"].as_array().unwrap().len(), 1);
    assert_eq!(m2["deals"][0]["dealId"], "d2");
    let q1 = suitcase_answer(&base.asker("q1").build(), "q1");
    assert_eq!(q1["deals"], serde_json::json!([]));
    assert_eq!(q1["newDealUri"], "https://crm.example/deals/new?contact=c1");
}

// ---------------------------------------------------------------- account events

/// Reads as the store would give them: each read with its raw value (or absent).
struct ReadsBuilder(Reads);

impl ReadsBuilder {
    fn new() -> Self {
        ReadsBuilder(Reads {
            config: Some("3".into()),
            ..Reads::default()
        })
    }

    fn with<T: Serialize>(mut self, read: Read, value: &T) -> Self {
        self.0.values.insert(read, Some(json(value)));
        self
    }

    fn absent(mut self, read: Read) -> Self {
        self.0.values.insert(read, None);
        self
    }

    fn channel(self, channel: &str) -> Self {
        let c = Channel {
            channel_id: id(channel),
            chat_type: ChatType::Whatsapp,
            name: channel.into(),
        };
        self.with(Read::HGet(Key::Channels, id(channel)), &c)
    }

    fn user(self, user: &str, access: &[(&str, Role, bool)]) -> Self {
        let u = User {
            user_id: id(user),
            name: user.into(),
            access: access
                .iter()
                .map(|(c, role, rnc)| Access {
                    channel_id: id(c),
                    role: *role,
                    receives_new_clients: *rnc,
                })
                .collect(),
            removed: false,
        };
        self.with(Read::HGet(Key::Users, id(user)), &u)
    }

    fn build(self) -> Reads {
        self.0
    }
}

fn seat_json(role: Role, receives_new_clients: bool) -> String {
    json(&Seat {
        role,
        receives_new_clients,
    })
}

fn users_upserted(users: Vec<UserUpsert>) -> Event {
    Event::UsersUpserted(UsersUpserted {
        envelope: env("ev-a1"),
        users,
    })
}

fn upsert(user: &str, access: &[(&str, Role, bool)]) -> UserUpsert {
    UserUpsert {
        user_id: id(user),
        name: user.to_uppercase(),
        access: access
            .iter()
            .map(|(c, role, rnc)| Access {
                channel_id: id(c),
                role: *role,
                receives_new_clients: *rnc,
            })
            .collect(),
    }
}

#[test]
fn users_upserted_asks_for_the_user_and_his_channels() {
    let e = users_upserted(vec![upsert(
        "u1",
        &[
            ("wa1", Role::Manager, true),
            ("wa2", Role::Supervisor, false),
        ],
    )]);
    assert_eq!(
        super::reads(&e),
        Some(vec![
            Read::Get(Key::Settings),
            Read::HGet(Key::Users, id("u1")),
            Read::HGet(Key::Channels, id("wa1")),
            Read::HGet(Key::Channels, id("wa2")),
            Read::Channel(id("wa1")),
            Read::Channel(id("wa2")),
        ])
    );
}

#[test]
fn users_upserted_with_an_unknown_channel_is_rejected() {
    let e = users_upserted(vec![upsert(
        "u1",
        &[("wa1", Role::Manager, true), ("wa9", Role::Manager, true)],
    )]);
    let reads = ReadsBuilder::new()
        .channel("wa1")
        .absent(Read::HGet(Key::Channels, id("wa9")))
        .build();
    let r = rejection(decide_account(&e, &reads));
    assert_eq!(r.code(), "unknown_channel");
    assert!(r.to_string().contains("wa9"), "{r}");
}

#[test]
fn users_upserted_creates_a_new_user_and_declares_his_queue() {
    let e = users_upserted(vec![upsert("u1", &[("wa1", Role::Manager, true)])]);
    let reads = ReadsBuilder::new()
        .channel("wa1")
        .absent(Read::HGet(Key::Users, id("u1")))
        .build();
    let p = plan(decide_account(&e, &reads));
    assert_eq!(
        p.ops[0],
        Op::HSet(
            Key::Seats(id("wa1")),
            id("u1"),
            seat_json(Role::Manager, true)
        )
    );
    assert!(matches!(&p.ops[1], Op::HSet(Key::Users, u, _) if *u == id("u1")));
    assert_eq!(p.ops.last(), Some(&Op::Incr(Key::Config)));
    assert_eq!(p.ops.len(), 3);
    assert_eq!(p.declare_users, ids(&["u1"]));
    assert!(p.outputs.is_empty());
    assert!(has_guard_on(&p, &Key::Config));
}

#[test]
fn users_upserted_replaces_the_access_list_whole() {
    // u1 was manager on wa1 and quality control on wa2; now supervisor on wa2 and manager on wa3.
    let e = users_upserted(vec![upsert(
        "u1",
        &[
            ("wa2", Role::Supervisor, false),
            ("wa3", Role::Manager, false),
        ],
    )]);
    let reads = ReadsBuilder::new()
        .channel("wa2")
        .channel("wa3")
        .user(
            "u1",
            &[
                ("wa1", Role::Manager, true),
                ("wa2", Role::QualityControl, false),
            ],
        )
        .build();
    let p = plan(decide_account(&e, &reads));
    let seat_ops: Vec<&Op> = p
        .ops
        .iter()
        .filter(|op| matches!(op, Op::HSet(Key::Seats(_), ..) | Op::HDel(..)))
        .collect();
    assert_eq!(
        seat_ops,
        vec![
            &Op::HDel(Key::Seats(id("wa1")), id("u1")),
            &Op::HSet(
                Key::Seats(id("wa2")),
                id("u1"),
                seat_json(Role::Supervisor, false)
            ),
            &Op::HSet(
                Key::Seats(id("wa3")),
                id("u1"),
                seat_json(Role::Manager, false)
            ),
        ]
    );
    let user = p
        .ops
        .iter()
        .find_map(|op| match op {
            Op::HSet(Key::Users, u, v) if *u == id("u1") => {
                Some(serde_json::from_str::<User>(v).unwrap())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(
        user.access
            .iter()
            .map(|a| a.channel_id.as_str())
            .collect::<Vec<_>>(),
        vec!["wa2", "wa3"]
    );
    assert!(!user.removed);
    assert_eq!(p.declare_users, ids(&["u1"]));
}

#[test]
fn users_upserted_with_an_empty_access_list_removes_every_seat() {
    let e = users_upserted(vec![upsert("u1", &[])]);
    let reads = ReadsBuilder::new()
        .user(
            "u1",
            &[
                ("wa1", Role::Manager, true),
                ("wa2", Role::Supervisor, false),
            ],
        )
        .build();
    let p = plan(decide_account(&e, &reads));
    assert!(p.ops.contains(&Op::HDel(Key::Seats(id("wa1")), id("u1"))));
    assert!(p.ops.contains(&Op::HDel(Key::Seats(id("wa2")), id("u1"))));
    assert!(
        !p.ops
            .iter()
            .any(|op| matches!(op, Op::HSet(Key::Seats(_), ..)))
    );
}

#[test]
fn users_removed() {
    let unknown = Event::UsersRemoved(UsersRemoved {
        envelope: env("ev-a2"),
        user_ids: ids(&["u1", "ghost"]),
    });
    let reads = ReadsBuilder::new()
        .user("u1", &[("wa1", Role::Manager, true)])
        .absent(Read::HGet(Key::Users, id("ghost")))
        .build();
    let r = rejection(decide_account(&unknown, &reads));
    assert_eq!(r.code(), "unknown_user");
    assert!(r.to_string().contains("ghost"), "{r}");

    let known = Event::UsersRemoved(UsersRemoved {
        envelope: env("ev-a2"),
        user_ids: ids(&["u1"]),
    });
    let reads = ReadsBuilder::new()
        .user(
            "u1",
            &[
                ("wa1", Role::Manager, true),
                ("wa2", Role::Supervisor, false),
            ],
        )
        .build();
    let p = plan(decide_account(&known, &reads));
    assert_eq!(p.ops[0], Op::HDel(Key::Seats(id("wa1")), id("u1")));
    assert_eq!(p.ops[1], Op::HDel(Key::Seats(id("wa2")), id("u1")));
    let Op::HSet(Key::Users, _, raw) = &p.ops[2] else {
        panic!("user kept: {:?}", p.ops)
    };
    let user: User = serde_json::from_str(raw).unwrap();
    assert!(user.removed && user.access.is_empty());
    assert_eq!(p.ops[3], Op::Incr(Key::Config));
}

fn pipelines() -> Vec<Pipeline> {
    vec![Pipeline {
        pipeline_id: id(PIPELINE),
        name: "Sales".into(),
        stages: vec![
            Stage {
                stage_id: id(STAGE),
                name: "New".into(),
            },
            Stage {
                stage_id: id("st-won"),
                name: "Won".into(),
            },
        ],
    }]
}

fn settings_updated(pipeline: &str, stage: &str, links: Links) -> Event {
    Event::SettingsUpdated(SettingsUpdated {
        envelope: env("ev-a3"),
        new_clients: NewClients {
            pipeline_id: id(pipeline),
            stage_id: id(stage),
            distribution: Distribution::RoundRobin,
        },
        links,
    })
}

#[test]
fn settings_updated_table() {
    let links = || Links {
        deal: DEAL_LINK.into(),
        new_deal: NEW_DEAL_LINK.into(),
    };
    let loaded = || {
        ReadsBuilder::new()
            .with(Read::Get(Key::Pipelines), &pipelines())
            .build()
    };
    let table: Vec<(&str, Event, Reads, Result<(), &str>)> = vec![
        (
            "valid",
            settings_updated(PIPELINE, STAGE, links()),
            loaded(),
            Ok(()),
        ),
        (
            "another stage",
            settings_updated(PIPELINE, "st-won", links()),
            loaded(),
            Ok(()),
        ),
        (
            "unknown pipeline",
            settings_updated("p9", STAGE, links()),
            loaded(),
            Err("invalid"),
        ),
        (
            "unknown stage",
            settings_updated(PIPELINE, "st-9", links()),
            loaded(),
            Err("invalid"),
        ),
        (
            "no pipelines loaded",
            settings_updated(PIPELINE, STAGE, links()),
            ReadsBuilder::new()
                .absent(Read::Get(Key::Pipelines))
                .build(),
            Err("invalid"),
        ),
        (
            "deal link without {dealId}",
            settings_updated(
                PIPELINE,
                STAGE,
                Links {
                    deal: "https://crm.example/deals".into(),
                    ..links()
                },
            ),
            loaded(),
            Err("invalid_field"),
        ),
        (
            "new deal link without {contactId}",
            settings_updated(
                PIPELINE,
                STAGE,
                Links {
                    new_deal: "https://crm.example/new".into(),
                    ..links()
                },
            ),
            loaded(),
            Err("invalid_field"),
        ),
    ];
    for (case, event, reads, expected) in table {
        match (decide_account(&event, &reads), expected) {
            (Decision::Apply(p), Ok(())) => {
                let Event::SettingsUpdated(e) = &event else {
                    unreachable!()
                };
                let settings: Settings = written(&p, &Key::Settings).expect(case);
                assert_eq!(settings.new_clients, e.new_clients, "{case}");
                assert_eq!(settings.links, e.links, "{case}");
                assert!(p.ops.contains(&Op::Incr(Key::Config)), "{case}");
                assert!(
                    has_guard_on(&p, &Key::Pipelines),
                    "{case}: the pipelines must not change under it"
                );
            }
            (Decision::Reject(r), Err(code)) => assert_eq!(r.code(), code, "{case}: {r}"),
            (other, expected) => panic!("{case}: expected {expected:?}, got {other:?}"),
        }
    }
}

fn deal_upserted(contacts: &[&str], responsible: &str) -> Event {
    Event::DealUpserted(DealUpserted {
        envelope: env("ev-a4"),
        deal_id: id("d1"),
        name: "Doors".into(),
        contact_ids: ids(contacts),
        responsible_user_id: id(responsible),
        pipeline_id: id(PIPELINE),
        stage_id: id(STAGE),
        closed: false,
        uri: Some("https://crm.example/x/d1".into()),
    })
}

fn old_deal(contacts: &[&str]) -> Deal {
    Deal {
        deal_id: id("d1"),
        name: "Doors".into(),
        contact_ids: ids(contacts),
        responsible_user_id: id("m1"),
        pipeline_id: id(PIPELINE),
        stage_id: id(STAGE),
        closed: false,
        uri: None,
    }
}

#[test]
fn deal_upserted_moves_the_deal_between_contacts() {
    let e = deal_upserted(&["c2", "c3"], "m1");
    let reads = ReadsBuilder::new()
        .user("m1", &[("wa1", Role::Manager, true)])
        .with(Read::Get(Key::Deal(id("d1"))), &old_deal(&["c1", "c2"]))
        .build();
    let p = plan(decide_account(&e, &reads));
    let index: Vec<&Op> = p
        .ops
        .iter()
        .filter(|op| matches!(op, Op::SAdd(..) | Op::SRem(..)))
        .collect();
    assert_eq!(
        index,
        vec![
            &Op::SRem(Key::ContactDeals(id("c1")), id("d1")),
            &Op::SAdd(Key::ContactDeals(id("c2")), id("d1")),
            &Op::SAdd(Key::ContactDeals(id("c3")), id("d1")),
        ]
    );
    let deal: Deal = written(&p, &Key::Deal(id("d1"))).unwrap();
    assert_eq!(deal.contact_ids, ids(&["c2", "c3"]));
    assert_eq!(deal.uri.as_deref(), Some("https://crm.example/x/d1"));
    assert!(has_guard_on(&p, &Key::Deal(id("d1"))));
}

#[test]
fn deal_upserted_new_deal_and_unknown_responsible() {
    let e = deal_upserted(&["c1"], "m1");
    let reads = ReadsBuilder::new()
        .user("m1", &[("wa1", Role::Manager, true)])
        .absent(Read::Get(Key::Deal(id("d1"))))
        .build();
    let p = plan(decide_account(&e, &reads));
    assert!(!p.ops.iter().any(|op| matches!(op, Op::SRem(..))));
    assert!(
        p.ops
            .contains(&Op::SAdd(Key::ContactDeals(id("c1")), id("d1")))
    );

    let e = deal_upserted(&["c1"], "ghost");
    let reads = ReadsBuilder::new()
        .absent(Read::HGet(Key::Users, id("ghost")))
        .build();
    assert_eq!(rejection(decide_account(&e, &reads)).code(), "unknown_user");
}

fn contact_upserted(responsible: &str) -> Event {
    Event::ContactUpserted(ContactUpserted {
        envelope: env("ev-a5"),
        contact_id: id("c7"),
        name: "Ivan".into(),
        responsible_user_id: id(responsible),
        contact_data: vec![chat_ref()],
    })
}

#[test]
fn contact_upserted_settles_a_waiting_chat_and_withdraws_it() {
    let reads = ReadsBuilder::new()
        .user("m2", &[("wa1", Role::Manager, true)])
        .absent(Read::Get(Key::Contact(id("c7"))))
        .with(Read::Get(Key::Chat(chat_ref())), &pending(&["m1", "m2"]))
        .build();
    let p = plan(decide_account(&contact_upserted("m2"), &reads));
    assert_eq!(told(&p), pairs(&[("m1", "chat.withdrawn")]));
    let chat: Chat = written(&p, &Key::Chat(chat_ref())).unwrap();
    assert_eq!(chat.contact_id, Some(id("c7")));
    assert!(chat.pending.is_none());
    let contact: Contact = written(&p, &Key::Contact(id("c7"))).unwrap();
    assert_eq!(contact.responsible_user_id, id("m2"));
    assert!(has_guard_on(&p, &Key::Chat(chat_ref())));

    let reads = ReadsBuilder::new()
        .absent(Read::HGet(Key::Users, id("ghost")))
        .build();
    assert_eq!(
        rejection(decide_account(&contact_upserted("ghost"), &reads)).code(),
        "unknown_user"
    );
}

#[test]
fn channels_and_pipelines() {
    let e = Event::ChannelsUpserted(ChannelsUpserted {
        envelope: env("ev-a6"),
        channels: vec![
            Channel {
                channel_id: id("wa1"),
                chat_type: ChatType::Whatsapp,
                name: "Support".into(),
            },
            Channel {
                channel_id: id("ig1"),
                chat_type: ChatType::Instagram,
                name: "Sales".into(),
            },
        ],
    });
    assert_eq!(super::reads(&e), Some(vec![]));
    let p = plan(decide_account(&e, &Reads::default()));
    assert!(matches!(&p.ops[0], Op::HSet(Key::Channels, c, _) if *c == id("wa1")));
    assert!(matches!(&p.ops[1], Op::HSet(Key::Channels, c, _) if *c == id("ig1")));
    assert_eq!(p.ops[2], Op::Incr(Key::Config));

    let loaded = |stages: &[&str]| {
        Event::PipelinesLoaded(PipelinesLoaded {
            envelope: env("ev-a7"),
            pipelines: vec![Pipeline {
                pipeline_id: id(PIPELINE),
                name: "Sales".into(),
                stages: stages
                    .iter()
                    .map(|s| Stage {
                        stage_id: id(s),
                        name: s.to_uppercase(),
                    })
                    .collect(),
            }],
        })
    };
    let p = plan(decide_account(&loaded(&["a", "b"]), &Reads::default()));
    let stored: Vec<Pipeline> = written(&p, &Key::Pipelines).unwrap();
    assert_eq!(stored[0].stages.len(), 2);
    assert_eq!(
        rejection(decide_account(&loaded(&["a", "a"]), &Reads::default())).code(),
        "invalid"
    );
}

#[test]
fn chat_events_read_from_a_snapshot_not_from_reads() {
    for event in [
        Event::MessageInbound(inbound("ev-1")),
        Event::MessageOutbound(outbound("ev-1", "m1")),
        Event::SuitcaseRequested(suitcase("m1")),
    ] {
        assert_eq!(super::reads(&event), None);
        assert!(super::chat_query(&event).is_some());
    }
    let q = super::chat_query(&Event::SuitcaseRequested(suitcase("m1"))).unwrap();
    assert!(q.with_deals && q.channel_id.is_none() && q.user_id == Some(id("m1")));
}

mod waiting;
