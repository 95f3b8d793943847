//! Who sees and who gets a chat: roles on a channel, the round-robin choice,
//! and the builders of the notifications and ids every handler makes.

use crate::events::{Envelope, Timestamp};
use crate::ids::Id;
use crate::model::{ChatType, RoundRobin, Seat};
use crate::output::{
    CrmEnvelope, Notification, NotificationType, Outputs, Recipient, RejectReason, derive_id,
    derive_ids,
};

/// The seat of `user` on the channel, if he has one.
pub fn seat_of(seats: &[(Id, Seat)], user: &Id) -> Option<Seat> {
    seats
        .iter()
        .find(|(id, _)| id == user)
        .map(|(_, seat)| *seat)
}

/// Managers who take new clients of the channel, by id.
pub fn eligible(seats: &[(Id, Seat)]) -> Vec<Id> {
    seats
        .iter()
        .filter(|(_, s)| s.eligible())
        .map(|(id, _)| id.clone())
        .collect()
}

/// Quality control and supervisors of the channel, by id.
pub fn observers(seats: &[(Id, Seat)]) -> Vec<Id> {
    seats
        .iter()
        .filter(|(_, s)| s.role.observes_all())
        .map(|(id, _)| id.clone())
        .collect()
}

/// Supervisors of the channel, by id.
pub fn supervisors(seats: &[(Id, Seat)]) -> Vec<Id> {
    seats
        .iter()
        .filter(|(_, s)| s.role == crate::model::Role::Supervisor)
        .map(|(id, _)| id.clone())
        .collect()
}

/// The manager whose last new client is oldest (never = 0), ties by id.
pub fn next_in_turn(candidates: &[Id], pool: &RoundRobin) -> Option<Id> {
    candidates
        .iter()
        .min_by_key(|id| (pool.last.get(*id).copied().unwrap_or(0), (*id).clone()))
        .cloned()
}

/// The pool after `user` got a new client. Managers who left the channel are
/// dropped from it, so the pool never grows past the channel's users.
pub fn take_turn(pool: &RoundRobin, user: &Id, candidates: &[Id]) -> RoundRobin {
    let mut next = RoundRobin {
        turn: pool.turn + 1,
        last: pool.last.clone(),
    };
    next.last.retain(|id, _| candidates.contains(id));
    next.last.insert(user.clone(), next.turn);
    next
}

/// The chat a notification is about, and what to tell of it.
#[derive(Debug, Clone)]
pub struct About<'a> {
    pub envelope: &'a Envelope,
    pub channel_id: &'a Id,
    pub chat_type: ChatType,
    pub chat_id: &'a Id,
    pub contact_id: Option<&'a Id>,
    pub deal_id: Option<&'a Id>,
    pub message_id: Option<&'a Id>,
    pub text: Option<&'a str>,
}

impl<'a> About<'a> {
    /// The chat alone, with no message.
    pub fn new(
        envelope: &'a Envelope,
        channel_id: &'a Id,
        chat_type: ChatType,
        chat_id: &'a Id,
        contact_id: Option<&'a Id>,
    ) -> Self {
        About {
            envelope,
            channel_id,
            chat_type,
            chat_id,
            contact_id,
            deal_id: None,
            message_id: None,
            text: None,
        }
    }

    /// The chat with one of its messages.
    pub fn with_message(self, message_id: &'a Id, text: Option<&'a str>) -> Self {
        About {
            message_id: Some(message_id),
            text,
            ..self
        }
    }

    /// The chat as this tells of it, without the message.
    pub fn without_message(&self) -> Self {
        About {
            message_id: None,
            text: None,
            ..self.clone()
        }
    }

    /// Tells `user` of the chat; the notification's id is derived from the
    /// event, the user and the type, so it repeats exactly on a redelivery.
    /// Notifications with the same template share it (see [`Outputs::notify`]).
    pub fn notify(
        &self,
        outputs: &mut Outputs,
        user: &Id,
        kind: NotificationType,
        reason: Option<RejectReason>,
    ) {
        let to = Recipient {
            user: user.clone(),
            kind,
            // A slot's id is filled in with the user (see `Variant::filled`).
            id: if user.is_slot() {
                Id::slot()
            } else {
                self.notification_id(user, kind)
            },
            reason,
        };
        outputs.notify(|t| self.is(t), |to| self.notification(to), to);
    }

    /// [`About::notification_id`] of each of `users`, derived at once.
    pub fn notification_ids(&self, users: &[Id], kind: NotificationType) -> Vec<Id> {
        let each: Vec<[&str; 2]> = users.iter().map(|u| [u.as_str(), kind.as_str()]).collect();
        derive_ids(&self.notification_name(), &each)
    }

    /// The id of the notification of `kind` that tells `user` of this event.
    pub fn notification_id(&self, user: &Id, kind: NotificationType) -> Id {
        let [what, account, event] = self.notification_name();
        derive_id(&[what, account, event, user.as_str(), kind.as_str()])
    }

    /// The start of the name a notification id of this event is derived
    /// from (the user and the kind follow), one for both ways to derive it.
    fn notification_name(&self) -> [&str; 3] {
        let env = self.envelope;
        [
            "notification",
            env.account_id.as_str(),
            env.event_id.as_str(),
        ]
    }

    /// Whether `t` is this chat's template (compared without copying the text).
    fn is(&self, t: &Notification) -> bool {
        t.account_id == self.envelope.account_id
            && t.channel_id == *self.channel_id
            && t.chat_type == self.chat_type
            && t.chat_id == *self.chat_id
            && t.contact_id.as_ref() == self.contact_id
            && t.deal_id.as_ref() == self.deal_id
            && t.message_id.as_ref() == self.message_id
            && t.text.as_deref() == self.text
            && t.occurred_at == self.envelope.occurred_at
    }

    fn notification(&self, to: &Recipient) -> Notification {
        Notification {
            notification_id: to.id.clone(),
            kind: to.kind,
            user_id: to.user.clone(),
            reason: to.reason,
            account_id: self.envelope.account_id.clone(),
            channel_id: self.channel_id.clone(),
            chat_type: self.chat_type,
            chat_id: self.chat_id.clone(),
            contact_id: self.contact_id.cloned(),
            deal_id: self.deal_id.cloned(),
            message_id: self.message_id.cloned(),
            text: self.text.map(str::to_owned),
            occurred_at: self.envelope.occurred_at.clone(),
        }
    }
}

/// Ids and envelopes of what an event creates, all derived from the event.
pub struct Derived<'a> {
    pub envelope: &'a Envelope,
}

impl Derived<'_> {
    pub fn id(&self, what: &str) -> Id {
        derive_id(&[
            what,
            self.envelope.account_id.as_str(),
            self.envelope.event_id.as_str(),
        ])
    }

    pub fn crm_envelope(&self, kind: &str) -> CrmEnvelope {
        CrmEnvelope {
            event_id: self.id(kind),
            account_id: self.envelope.account_id.clone(),
            occurred_at: self.occurred_at().clone(),
        }
    }

    pub fn occurred_at(&self) -> &Timestamp {
        &self.envelope.occurred_at
    }
}

/// Adds `user` to `list` unless present; keeps first-seen order.
pub fn push_unique(list: &mut Vec<Id>, user: &Id) {
    if !list.contains(user) {
        list.push(user.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    fn seat(role: Role, rnc: bool) -> Seat {
        Seat {
            role,
            receives_new_clients: rnc,
        }
    }

    #[test]
    fn eligibility_and_observers() {
        let seats = vec![
            (id("m1"), seat(Role::Manager, true)),
            (id("m2"), seat(Role::Manager, false)),
            (id("q"), seat(Role::QualityControl, true)),
            (id("s"), seat(Role::Supervisor, true)),
        ];
        assert_eq!(eligible(&seats), vec![id("m1")]);
        assert_eq!(observers(&seats), vec![id("q"), id("s")]);
        assert_eq!(supervisors(&seats), vec![id("s")]);
        assert_eq!(seat_of(&seats, &id("m2")).unwrap().role, Role::Manager);
        assert!(seat_of(&seats, &id("x")).is_none());
    }

    #[test]
    fn round_robin_is_even() {
        let managers = vec![id("a"), id("b"), id("c")];
        let mut pool = RoundRobin::default();
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..31 {
            let next = next_in_turn(&managers, &pool).unwrap();
            *counts.entry(next.clone()).or_insert(0) += 1;
            pool = take_turn(&pool, &next, &managers);
        }
        assert_eq!(
            counts.values().copied().collect::<Vec<_>>(),
            vec![11, 10, 10]
        );
    }

    #[test]
    fn a_joining_manager_is_served_first_and_then_evenly() {
        let mut pool = RoundRobin::default();
        let two = vec![id("a"), id("b")];
        for _ in 0..4 {
            let n = next_in_turn(&two, &pool).unwrap();
            pool = take_turn(&pool, &n, &two);
        }
        let three = vec![id("a"), id("b"), id("c")];
        assert_eq!(next_in_turn(&three, &pool), Some(id("c")));
        let pool = take_turn(&pool, &id("c"), &three);
        // After c, the oldest turn is a's (turn 3).
        assert_eq!(next_in_turn(&three, &pool), Some(id("a")));
    }

    #[test]
    fn notification_ids_derived_at_once_are_each_ones_id() {
        let envelope = Envelope {
            event_id: id("e1"),
            account_id: id("acc"),
            occurred_at: serde_json::from_value("2026-01-01T10:00:00Z".into()).unwrap(),
        };
        let (channel, chat) = (id("wa"), id("c1"));
        let about = About::new(&envelope, &channel, ChatType::Whatsapp, &chat, None);
        let users = [id("m1"), id("m2"), id("x".repeat(100).as_str())];
        let at_once = about.notification_ids(&users, NotificationType::ChatNew);
        assert_eq!(at_once.len(), users.len());
        for (user, at_once) in users.iter().zip(&at_once) {
            assert_eq!(
                *at_once,
                about.notification_id(user, NotificationType::ChatNew)
            );
        }
    }

    #[test]
    fn departed_managers_leave_the_pool() {
        let pool = take_turn(&RoundRobin::default(), &id("gone"), &[id("gone")]);
        let pool = take_turn(&pool, &id("a"), &[id("a")]);
        assert!(!pool.last.contains_key(&id("gone")));
        assert_eq!(next_in_turn(&[], &pool), None);
    }
}
