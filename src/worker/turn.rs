//! A chat's events in a pipeline. The next event of a chat starts as soon as
//! the earlier one has handed its outputs to the publishing channel, which
//! keeps their order; it does not wait for the broker's confirms. The acks keep
//! the order instead: an event is acked only after the earlier event of its
//! chat was, so a chat's unacked events are always its latest ones and a
//! broken connection or a crash has them redelivered in their order.
//!
//! [`Lanes`] makes each starting event its [`Turn`]: the way to say "sent"
//! (the consumer then lets the next event of the chat start) and the link to
//! the earlier event's ack.
//!
//! The channel keeps the order only as long as it is the same channel: when the
//! broker refuses a message, the publisher renews its channel and the refused
//! event publishes again later. An event of the same chat must then not go
//! out on the new channel ahead of it, so a turn also knows the channel its
//! earlier event last sent on ([`Turn::wait_for`]): a send on another channel
//! waits until the earlier event is acked (seen when a RabbitMQ node dies: a
//! chat's notifications arrived `[0, 1, 3, 2]`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::sequencer::{Scope, Ticket};
use crate::amqp::WaitFor;
use crate::ids::Id;
use crate::model::ChatRef;

/// An event of a chat handed its outputs to the publishing channel.
pub struct Sent {
    pub account: Id,
    pub scope: Scope,
    pub ticket: Ticket,
}

/// The channel an event sent on, `ANY` while it sent nothing that the next
/// event of its chat could overtake.
type SentOn = Arc<AtomicU32>;
const ANY: u32 = u32::MAX;

/// What the next event of a chat needs of the latest one: when it is acked,
/// and the channel it last sent on.
struct Latest {
    ticket: Ticket,
    acked: oneshot::Receiver<()>,
    sent_on: SentOn,
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
        let sent_on: SentOn = Arc::new(AtomicU32::new(ANY));
        let latest = Latest {
            ticket,
            acked: ack,
            sent_on: sent_on.clone(),
        };
        let chats = match self.latest.get_mut(account) {
            Some(chats) => chats,
            None => self.latest.entry(account.clone()).or_default(),
        };
        let earlier = match chats.get_mut(chat) {
            Some(slot) => {
                let earlier = std::mem::replace(slot, latest);
                Some((earlier.acked, earlier.sent_on))
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
            sent_on,
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
    earlier: Option<(oneshot::Receiver<()>, SentOn)>,
    acked: Option<oneshot::Sender<()>>,
    sent_on: SentOn,
    /// The earlier event ended without an ack (seen by [`Turn::wait_for`]).
    earlier_lost: bool,
}

impl Turn {
    /// Tells the consumer, once, that the event's outputs are on the channel
    /// `channel` (`None`: it published nothing of its chat): the next event of
    /// its chat may start. A send again after a failure tells the channel again.
    pub fn sent(&mut self, channel: Option<u16>) {
        self.sent_on
            .store(channel.map_or(ANY, u32::from), Ordering::Release);
        if let Some((notes, sent)) = self.sent.take() {
            // The consumer gone means the session is over: nothing left to start.
            let _ = notes.send(sent);
        }
    }

    /// The channel this event may send on only after its earlier event was
    /// acked: any channel but the one the earlier event last sent on, as long
    /// as that one is not acked. `None`: any channel will do.
    pub fn wait_for(&mut self) -> Option<WaitFor> {
        let (acked, sent_on) = self.earlier.as_mut()?;
        match acked.try_recv() {
            Ok(()) => {
                self.earlier = None;
                None
            }
            // Ended unacked: the session is over; `earlier_acked` will say so.
            Err(oneshot::error::TryRecvError::Closed) => {
                self.earlier = None;
                self.earlier_lost = true;
                Some(WaitFor { unless_on: None })
            }
            Err(oneshot::error::TryRecvError::Empty) => match sent_on.load(Ordering::Acquire) {
                ANY => None,
                channel => Some(WaitFor {
                    unless_on: u16::try_from(channel).ok(),
                }),
            },
        }
    }

    /// Waits until the earlier event of the chat was acked. False if it ended
    /// without an ack: that happens only when the session ends (see
    /// `Processor::process`), and then this event must not be acked either.
    pub async fn earlier_acked(&mut self) -> bool {
        match self.earlier.take() {
            Some((earlier, _)) => earlier.await.is_ok(),
            None => !self.earlier_lost,
        }
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
        first.sent(Some(1));
        first.sent(Some(1));
        let note = notes.try_recv().unwrap();
        assert_eq!((note.ticket, &note.scope), (1, &one.as_ref().unwrap().1));
        assert!(notes.try_recv().is_err(), "sent is told once");
        first.acked();
        lanes.acked(one.as_ref(), 1);
        assert!(second.earlier_acked().await);
        // The second was not acked when the third started: the third waits for it.
        let mut third = lanes.turn(one.as_ref(), 4);
        drop(second);
        assert!(
            !third.earlier_acked().await,
            "the earlier one ended unacked"
        );
        lanes.acked(one.as_ref(), 4);
        lanes.acked(order("a", "2").as_ref(), 3);
        assert!(lanes.latest.is_empty(), "acked chats are forgotten");
    }

    #[tokio::test]
    async fn a_send_on_another_channel_waits_until_the_earlier_event_is_acked() {
        let (mut lanes, _notes) = Lanes::new();
        let one = order("a", "1");
        let mut first = lanes.turn(one.as_ref(), 1);
        let mut second = lanes.turn(one.as_ref(), 2);
        first.sent(Some(7));
        let wait = second.wait_for().expect("the first is not acked");
        assert!(!wait.blocks(7), "the same channel keeps their order");
        assert!(wait.blocks(8), "a renewed channel does not");
        // The first is sent again on a fresh channel after a refusal.
        first.sent(Some(8));
        assert!(!second.wait_for().unwrap().blocks(8));
        first.acked();
        assert_eq!(second.wait_for(), None, "acked: any channel will do");
        assert!(second.earlier_acked().await);
    }

    #[tokio::test]
    async fn a_dead_lettered_or_unacked_earlier_event() {
        let (mut lanes, _notes) = Lanes::new();
        let one = order("a", "1");
        let mut first = lanes.turn(one.as_ref(), 1);
        let mut second = lanes.turn(one.as_ref(), 2);
        first.sent(None);
        assert_eq!(second.wait_for(), None, "nothing of the chat to overtake");
        drop(first);
        let wait = second.wait_for().expect("ended unacked");
        assert!(wait.blocks(1) && wait.blocks(2));
        assert!(!second.earlier_acked().await);
    }

    #[tokio::test]
    async fn account_events_wait_for_no_ack() {
        let (mut lanes, mut notes) = Lanes::new();
        let account = Some((Id::parse("a").unwrap(), Scope::Account));
        let mut turn = lanes.turn(account.as_ref(), 1);
        turn.sent(Some(1));
        assert_eq!(turn.wait_for(), None);
        assert!(turn.earlier_acked().await);
        assert!(notes.try_recv().is_err());
        assert!(lanes.latest.is_empty());
    }
}
