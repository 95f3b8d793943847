//! How `inspect` views read on a terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::inspect::{AccountView, ChatView};
use crate::ids::Id;
use crate::model::{Distribution, Role, User};

fn who(users: &BTreeMap<Id, User>, id: &Id) -> String {
    match users.get(id) {
        Some(user) if user.removed => format!("{} ({}, removed)", id, user.name),
        Some(user) => format!("{} ({})", id, user.name),
        None => format!("{id} (unknown user)"),
    }
}

fn list(users: &BTreeMap<Id, User>, ids: &[Id]) -> String {
    if ids.is_empty() {
        return "nobody".into();
    }
    ids.iter()
        .map(|id| who(users, id))
        .collect::<Vec<_>>()
        .join(", ")
}

fn role(role: Role) -> &'static str {
    match role {
        Role::QualityControl => "quality_control",
        Role::Manager => "manager",
        Role::Supervisor => "supervisor",
    }
}

impl ChatView {
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Chat {}:{} of account {}",
            self.chat.chat_type.as_str(),
            self.chat.chat_id,
            self.account_id
        );
        let Some(state) = &self.state else {
            let _ = writeln!(
                out,
                "  Switchboard has never seen this chat (no message from this client yet)."
            );
            return out;
        };
        if !state.seen_on.is_empty() {
            let seen: Vec<_> = state.seen_on.iter().map(Id::as_str).collect();
            let _ = writeln!(out, "  wrote to channels: {}", seen.join(", "));
        }
        match &state.pending {
            Some(pending) => {
                let _ = writeln!(
                    out,
                    "  claim:       waiting to be claimed on channel {}",
                    pending.channel_id.as_ref().map_or("?", Id::as_str)
                );
                let _ = writeln!(out, "  shown to:    {}", list(&self.users, &pending.shown));
            }
            None => {
                let _ = writeln!(out, "  claim:       settled");
                if !state.shown.is_empty() {
                    let _ = writeln!(
                        out,
                        "  was shown as new to: {}",
                        list(&self.users, &state.shown)
                    );
                }
            }
        }
        match &self.contact {
            Some(contact) => {
                let _ = writeln!(
                    out,
                    "  contact:     {} ({})",
                    contact.contact_id, contact.name
                );
                let _ = writeln!(
                    out,
                    "  responsible: {}",
                    who(&self.users, &contact.responsible_user_id)
                );
                for data in &contact.contact_data {
                    let _ = writeln!(
                        out,
                        "  identity:    {}:{}",
                        data.chat_type.as_str(),
                        data.chat_id
                    );
                }
            }
            None => {
                let _ = writeln!(out, "  contact:     none yet");
            }
        }
        if self.deals.is_empty() {
            let _ = writeln!(out, "  deals:       none");
        }
        for deal in &self.deals {
            let _ = writeln!(
                out,
                "  deal:        {} {:?} [{}] pipeline {} stage {} responsible {}{}",
                deal.deal_id,
                deal.name,
                if deal.closed { "closed" } else { "open" },
                deal.pipeline_id,
                deal.stage_id,
                who(&self.users, &deal.responsible_user_id),
                deal.uri
                    .as_ref()
                    .map(|u| format!(" {u}"))
                    .unwrap_or_default()
            );
        }
        out
    }
}

impl AccountView {
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Account {}", self.account_id);
        let Some(config) = self.config else {
            let _ = writeln!(
                out,
                "  Switchboard knows nothing of this account (no set-up event applied)."
            );
            return out;
        };
        let _ = writeln!(out, "  set-up changes applied: {config}");
        match &self.settings {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "  new clients: {} into pipeline {} stage {}",
                    match s.new_clients.distribution {
                        Distribution::FirstReply => "first_reply",
                        Distribution::RoundRobin => "round_robin",
                    },
                    s.new_clients.pipeline_id,
                    s.new_clients.stage_id
                );
                let _ = writeln!(
                    out,
                    "  links:       deal {}  new deal {}",
                    s.links.deal, s.links.new_deal
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  new clients: no settings yet (handled as first reply, no deal created)"
                );
            }
        }
        for p in &self.pipelines {
            let stages: Vec<_> = p
                .stages
                .iter()
                .map(|s| format!("{} ({})", s.stage_id, s.name))
                .collect();
            let _ = writeln!(
                out,
                "  pipeline:    {} ({}): {}",
                p.pipeline_id,
                p.name,
                stages.join(", ")
            );
        }
        let users: BTreeMap<Id, User> = self
            .users
            .iter()
            .map(|u| (u.user_id.clone(), u.clone()))
            .collect();
        for ch in &self.channels {
            let c = &ch.channel;
            let _ = writeln!(
                out,
                "  channel {} ({}, {:?})",
                c.channel_id,
                c.chat_type.as_str(),
                c.name
            );
            if ch.seats.is_empty() {
                let _ = writeln!(out, "    no users");
            }
            for (id, seat) in &ch.seats {
                let turn = ch
                    .round_robin
                    .last
                    .get(id)
                    .map_or("never".into(), |t| format!("turn {t}"));
                let takes = if seat.eligible() {
                    format!(", takes new clients (last: {turn})")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "    {:<16} {}{takes}",
                    role(seat.role),
                    who(&users, id)
                );
            }
            let _ = writeln!(
                out,
                "    round robin: {} new clients handed out; next: {}",
                ch.round_robin.turn,
                ch.next_in_turn
                    .as_ref()
                    .map_or("nobody eligible".into(), |id| who(&users, id))
            );
        }
        let removed: Vec<_> = self
            .users
            .iter()
            .filter(|u| u.removed)
            .map(|u| u.user_id.clone())
            .collect();
        if !removed.is_empty() {
            let _ = writeln!(out, "  removed users: {}", list(&users, &removed));
        }
        if let Some(waiting) = &self.waiting {
            let _ = writeln!(out, "  chats waiting to be claimed: {}", waiting.len());
            for (chat, state) in waiting {
                let shown = state
                    .pending
                    .as_ref()
                    .map(|p| p.shown.clone())
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    {}:{} shown to {}",
                    chat.chat_type.as_str(),
                    chat.chat_id,
                    list(&users, &shown)
                );
            }
        }
        out
    }
}
