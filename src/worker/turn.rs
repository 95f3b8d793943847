//! A chat's events in a pipeline. The next event of a chat starts as soon as
//! the earlier one has handed its outputs to the publishing channel: its
//! snapshot, decision and apply overlap the earlier one's confirms. It sends
//! its own outputs only once the earlier event was acked, which is after all
//! of the earlier one's messages were confirmed. The acks keep the order too:
//! an event is acked only after the earlier event of its chat was, so a chat's
//! unacked events are always its latest ones and a broken connection or a
//! crash has them redelivered in their order.
//!
//! Why a send waits for the earlier event's confirms: the broker decides on
//! each message alone. A queue at its `max-length` with `reject-publish`
//! refuses (nacks) one message and accepts the next one on the same channel if
//! a reader took one in between; a refused event is sent again later. Had the
//! chat's next event already sent, its message would be ahead of the refused
//! one (seen: a quality-control queue got a chat's messages `[.., 9, 8]`).
//! Waiting costs a chat one confirm per message, and nothing to other chats.
//!
//! [`Lanes`] makes each starting event its [`Turn`]: the way to say "sent"
//! (the consumer then lets the next event of the chat start) and the link to
//! the earlier event's ack.

// foldhash: see `sequencer`.
use foldhash::{HashMap, HashMapExt};

use tokio::sync::{mpsc, oneshot};

use super::sequencer::{Scope, Ticket};
use crate::ids::Id;
use crate::model::ChatRef;

/// An event of a chat handed its outputs to the publishing channel.
pub struct Sent {
    pub account: Id,
    pub scope: Scope,
    pub ticket: Ticket,
}

/// What the next event of a chat needs of the latest one: when it is acked.
struct Latest {
    ticket: Ticket,
    acked: oneshot::Receiver<()>,
}

/// The latest started event of each chat that was not acked yet, with the
/// receiving end of its ack, for the next event of the chat to wait on.
pub struct Lanes {
    notes: mpsc::UnboundedSender<Sent>,
    latest: HashMap<Id, HashMap<ChatRef, Latest>>,
}

impl Lanes {
    /// The lanes of a session, and where their [`Sent`] notes arrive.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Sent>) {
        let (notes, received) = mpsc::unbounded_channel();
        let lanes = Self {
            notes,
            latest: HashMap::new(),
        };
        (lanes, received)
    }

    /// The turn of the event `ticket` that starts now. Events of one chat
    /// start in their order (the sequencer sees to it), so the latest one
    /// recorded for its chat is the one it follows.
    pub fn turn(&mut self, order: Option<&(Id, Scope)>, ticket: Ticket) -> Turn {
        let Some((account, Scope::Chat(chat))) = order else {
            // An account event starts when every earlier event of its account
            // finished, and nothing of its account starts before it finished.
            return Turn::default();
        };
        let (acked, ack) = oneshot::channel();
        let latest = Latest { ticket, acked: ack };
        let chats = match self.latest.get_mut(account) {
            Some(chats) => chats,
            None => self.latest.entry(account.clone()).or_default(),
        };
        let earlier = match chats.get_mut(chat) {
            Some(slot) => {
                let earlier = std::mem::replace(slot, latest);
                Some(earlier.acked)
            }
            None => {
                chats.insert(chat.clone(), latest);
                None
            }
        };
        let sent = Sent {
            account: account.clone(),
            scope: Scope::Chat(chat.clone()),
            ticket,
        };
        Turn {
            sent: Some((self.notes.clone(), sent)),
            earlier,
            acked: Some(acked),
            earlier_lost: false,
        }
    }

    /// The event `ticket` was acked: nothing need wait for it any more, unless
    /// a later event of its chat already follows it.
    pub fn acked(&mut self, order: Option<&(Id, Scope)>, ticket: Ticket) {
        let Some((account, Scope::Chat(chat))) = order else {
            return;
        };
        let Some(chats) = self.latest.get_mut(account) else {
            return;
        };
        if chats
            .get(chat)
            .is_some_and(|latest| latest.ticket == ticket)
        {
            chats.remove(chat);
            if chats.is_empty() {
                self.latest.remove(account);
            }
        }
    }
}

/// One event's place in its chat's lane (empty for account events and input
/// without an account: nothing runs beside those).
#[derive(Default)]
pub struct Turn {
    sent: Option<(mpsc::UnboundedSender<Sent>, Sent)>,
    earlier: Option<oneshot::Receiver<()>>,
    acked: Option<oneshot::Sender<()>>,
    /// The earlier event ended without an ack (seen by [`Turn::earlier_acked`]).
    earlier_lost: bool,
}

impl Turn {
    /// Tells the consumer, once, that the event's outputs are on the channel
    /// (or that it publishes nothing of its chat): the next event of its chat
    /// may start.
    pub fn sent(&mut self) {
        if let Some((notes, sent)) = self.sent.take() {
            // The consumer gone means the session is over: nothing left to start.
            let _ = notes.send(sent);
        }
    }

    /// Waits until the earlier event of the chat was acked; at once if it
    /// was, or if there is none. False if it ended without an ack: that
    /// happens only when the session ends (see `Processor::process`), and then
    /// this event must neither send nor be acked. Cancel-safe: a wait given
    /// up leaves the link to the earlier event in place.
    pub async fn earlier_acked(&mut self) -> bool {
        if let Some(earlier) = self.earlier.as_mut() {
            self.earlier_lost = earlier.await.is_err();
            self.earlier = None;
        }
        !self.earlier_lost
    }

    /// The event was acked: the next event of its chat may be.
    pub fn acked(&mut self) {
        if let Some(acked) = self.acked.take() {
            let _ = acked.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::ChatType;

    fn order(account: &str, chat: &str) -> Option<(Id, Scope)> {
        let chat = ChatRef {
            chat_type: ChatType::Telegram,
            chat_id: Id::parse(chat).unwrap(),
        };
        Some((Id::parse(account).unwrap(), Scope::Chat(chat)))
    }

    #[tokio::test]
    async fn each_event_of_a_chat_waits_for_the_earlier_ones_ack() {
        let (mut lanes, mut notes) = Lanes::new();
        let one = order("a", "1");
        let mut first = lanes.turn(one.as_ref(), 1);
        let mut second = lanes.turn(one.as_ref(), 2);
        let mut other = lanes.turn(order("a", "2").as_ref(), 3);
        assert!(
            other.earlier_acked().await,
            "another chat waits for nothing"
        );
        assert!(first.earlier_acked().await);
        first.sent();
        first.sent();
        let note = notes.try_recv().unwrap();
        assert_eq!((note.ticket, &note.scope), (1, &one.as_ref().unwrap().1));
        assert!(notes.try_recv().is_err(), "sent is told once");
        // Sent is not enough: the second waits until the first is acked.
        let waiting = tokio::time::timeout(Duration::from_millis(50), second.earlier_acked());
        assert!(waiting.await.is_err(), "the first is sent, not acked");
        first.acked();
        lanes.acked(one.as_ref(), 1);
        assert!(second.earlier_acked().await);
        assert!(second.earlier_acked().await, "asked again, the same answer");
        // The second was not acked when the third started: the third waits for it.
        let mut third = lanes.turn(one.as_ref(), 4);
        drop(second);
        assert!(
            !third.earlier_acked().await,
            "the earlier one ended unacked"
        );
        assert!(!third.earlier_acked().await, "and stays so");
        lanes.acked(one.as_ref(), 4);
        lanes.acked(order("a", "2").as_ref(), 3);
        assert!(lanes.latest.is_empty(), "acked chats are forgotten");
    }

    #[tokio::test]
    async fn account_events_wait_for_no_ack() {
        let (mut lanes, mut notes) = Lanes::new();
        let account = Some((Id::parse("a").unwrap(), Scope::Account));
        let mut turn = lanes.turn(account.as_ref(), 1);
        turn.sent();
        assert!(turn.earlier_acked().await);
        assert!(notes.try_recv().is_err());
        assert!(lanes.latest.is_empty());
    }
}
