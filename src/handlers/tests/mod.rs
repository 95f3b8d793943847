//! Table-style tests of the pure decisions, written against the contract
//! (`../shared/contract.md`): what each user, the CRM and the gateway would receive.
//!
//! The standard cast of channel `wa1` (WhatsApp), see [`Snap::team`]:
//! `m1`, `m2` eligible managers, `m3` a manager without new clients,
//! `q1` quality control, `s1` supervisor.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    Change, ChatSnapshot, Decision, Guard, Item, ItemValue, Plan, Read, Reads, ReplyTo, Stored,
    Version, decide_account, decide_chat,
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
use crate::names::{self, Names};
use crate::output::{Message, Notification, Output, Outputs, RejectReason};

mod account;
mod decode;
mod fan_out;
mod inbound;
mod outbound;
mod reads;
mod suitcase;
mod users;
mod waiting;

use decode::*;
use reads::*;

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

/// A value as the store would give it; its version is opaque, any text does.
fn stored<T: std::fmt::Debug>(value: T) -> Stored<T> {
    Stored {
        version: version_of(&value),
        value: Some(value),
    }
}

fn version_of(value: &impl std::fmt::Debug) -> Version {
    Version::stored(Some(format!("{value:?}")))
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
            config: Version::stored(Some("7".into())),
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
