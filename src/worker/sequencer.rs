//! Order inside one account's stream, with chats in parallel.
//!
//! All events of an account arrive on one partition, in the order they were
//! published. A worker handles them in parallel where order cannot matter and
//! in sequence where it can:
//! - two events of one chat never decide at once: the later starts once the
//!   earlier has applied its changes and handed its outputs to the publishing
//!   channel ([`Sequencer::sent`]), so the two are published in order; it does
//!   not wait for the earlier one's confirms (the pipeline acks a chat's events
//!   in order, see `tasks`);
//! - an account event (set-up, contacts, deals) is a barrier: it starts only when
//!   every earlier event of its account has finished (confirmed and acked), and
//!   every later event of the account waits until it has finished;
//! - events of different chats (and of different accounts) run side by side.
//!
//! The [`Sequencer`] is plain data: the consumer offers it each delivery with a
//! [`Ticket`] of its own and tells it when one sent its outputs and when one
//! finished; it answers which may start now.

use std::collections::VecDeque;

// foldhash: the maps are keyed by chat and account on every event (std's SipHash
// took about 3% of the worker's instructions); seeded per process like std's.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::ids::Id;
use crate::model::ChatRef;

/// What an event may conflict with inside its account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// An account event: conflicts with every event of its account.
    Account,
    /// A chat event: conflicts with events of the same chat and with account events.
    Chat(ChatRef),
}

/// One event's number, unique in a session: tells apart two events of one chat.
pub type Ticket = u64;

/// One account's events: those running and those waiting for an earlier one.
#[derive(Debug)]
struct Stream<T> {
    /// Started and not finished.
    running: usize,
    barrier_running: bool,
    /// Chats with an event that started and has not sent its outputs yet.
    chats_deciding: HashMap<ChatRef, Ticket>,
    waiting: VecDeque<(Scope, Ticket, T)>,
}

impl<T> Default for Stream<T> {
    fn default() -> Self {
        Self {
            running: 0,
            barrier_running: false,
            chats_deciding: HashMap::new(),
            waiting: VecDeque::new(),
        }
    }
}

impl<T> Stream<T> {
    /// Whether `scope` is free of every running event.
    fn free(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Account => self.running == 0,
            Scope::Chat(chat) => !self.barrier_running && !self.chats_deciding.contains_key(chat),
        }
    }

    fn start(&mut self, scope: &Scope, ticket: Ticket) {
        self.running += 1;
        match scope {
            Scope::Account => self.barrier_running = true,
            Scope::Chat(chat) => {
                self.chats_deciding.insert(chat.clone(), ticket);
            }
        }
    }

    /// The event `ticket` of `chat` no longer holds its chat (if it still did).
    fn sent(&mut self, chat: &ChatRef, ticket: Ticket) {
        if self.chats_deciding.get(chat) == Some(&ticket) {
            self.chats_deciding.remove(chat);
        }
    }

    fn finish(&mut self, scope: &Scope, ticket: Ticket) {
        self.running = self.running.saturating_sub(1);
        match scope {
            Scope::Account => self.barrier_running = false,
            Scope::Chat(chat) => self.sent(chat, ticket),
        }
    }

    /// Starts every waiting event that no running or earlier waiting event
    /// conflicts with, in order. Events that stay keep their place, unmoved.
    fn release(&mut self, ready: &mut Vec<T>) {
        let mut blocked_chats: HashSet<ChatRef> = HashSet::new();
        let mut i = 0;
        while let Some((scope, _, _)) = self.waiting.get(i) {
            let earlier_blocks = match scope {
                // Any earlier event still waiting blocks a barrier.
                Scope::Account => i > 0,
                Scope::Chat(chat) => blocked_chats.contains(chat),
            };
            if !earlier_blocks && self.free(scope) {
                let (scope, ticket, item) = self.waiting.remove(i).expect("an index just read");
                self.start(&scope, ticket);
                ready.push(item);
                continue;
            }
            match scope {
                // Nothing after a waiting barrier may start.
                Scope::Account => break,
                Scope::Chat(chat) => {
                    blocked_chats.insert(chat.clone());
                }
            }
            i += 1;
        }
    }

    fn idle(&self) -> bool {
        self.running == 0 && self.waiting.is_empty()
    }
}

/// The order keeper of every account a worker is handling.
#[derive(Debug)]
pub struct Sequencer<T> {
    streams: HashMap<Id, Stream<T>>,
}

impl<T> Default for Sequencer<T> {
    fn default() -> Self {
        Self {
            streams: HashMap::new(),
        }
    }
}

impl<T> Sequencer<T> {
    /// Offers the next event of `account`. Returns it if it may start now (it
    /// then counts as running until [`Sequencer::finish`]); otherwise keeps it
    /// until an earlier event sends or finishes.
    pub fn offer(&mut self, account: &Id, scope: Scope, ticket: Ticket, item: T) -> Option<T> {
        let stream = match self.streams.get_mut(account) {
            Some(stream) => stream,
            None => self.streams.entry(account.clone()).or_default(),
        };
        stream.waiting.push_back((scope, ticket, item));
        let mut ready = Vec::with_capacity(1);
        stream.release(&mut ready);
        debug_assert!(ready.len() <= 1, "only the new event can become ready");
        ready.pop()
    }

    /// Marks that the event `ticket` of `account` handed its outputs to the
    /// publishing channel and returns the events that may start now: the next
    /// event of its chat. An account event holds its account until it finishes.
    pub fn sent(&mut self, account: &Id, scope: &Scope, ticket: Ticket) -> Vec<T> {
        let mut ready = Vec::new();
        if let (Some(stream), Scope::Chat(chat)) = (self.streams.get_mut(account), scope) {
            stream.sent(chat, ticket);
            stream.release(&mut ready);
        }
        ready
    }

    /// Marks the event `ticket` of `account` finished and returns the events
    /// that may start now.
    pub fn finish(&mut self, account: &Id, scope: &Scope, ticket: Ticket) -> Vec<T> {
        let mut ready = Vec::new();
        if let Some(stream) = self.streams.get_mut(account) {
            stream.finish(scope, ticket);
            stream.release(&mut ready);
            if stream.idle() {
                self.streams.remove(account);
            }
        }
        ready
    }

    /// Removes the waiting events that `held` selects (a partition handed over,
    /// a shutdown) and returns them; running events are not touched.
    pub fn take_waiting(&mut self, held: impl Fn(&T) -> bool) -> Vec<T> {
        let mut taken = Vec::new();
        for stream in self.streams.values_mut() {
            let (take, keep): (VecDeque<_>, VecDeque<_>) = stream
                .waiting
                .drain(..)
                .partition(|(_, _, item)| held(item));
            stream.waiting = keep;
            taken.extend(take.into_iter().map(|(_, _, item)| item));
        }
        self.streams.retain(|_, s| !s.idle());
        taken
    }

    /// Events waiting for an earlier one, over all accounts.
    pub fn waiting(&self) -> usize {
        self.streams.values().map(|s| s.waiting.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChatType;

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    fn chat(s: &str) -> Scope {
        Scope::Chat(ChatRef {
            chat_type: ChatType::Telegram,
            chat_id: id(s),
        })
    }

    /// Each test event is its own ticket.
    fn offer(seq: &mut Sequencer<u64>, account: &str, scope: Scope, n: u64) -> Option<u64> {
        seq.offer(&id(account), scope, n, n)
    }

    #[test]
    fn different_chats_run_side_by_side() {
        let mut seq = Sequencer::default();
        assert_eq!(offer(&mut seq, "a", chat("1"), 1), Some(1));
        assert_eq!(offer(&mut seq, "a", chat("2"), 2), Some(2));
        assert_eq!(offer(&mut seq, "b", chat("1"), 3), Some(3));
    }

    #[test]
    fn one_chat_runs_in_order() {
        let mut seq = Sequencer::default();
        let a = id("a");
        assert_eq!(offer(&mut seq, "a", chat("1"), 1), Some(1));
        assert_eq!(offer(&mut seq, "a", chat("1"), 2), None);
        assert_eq!(offer(&mut seq, "a", chat("1"), 3), None);
        // Another chat is not held up by the waiting ones.
        assert_eq!(offer(&mut seq, "a", chat("2"), 4), Some(4));
        assert_eq!(seq.finish(&a, &chat("1"), 1), vec![2]);
        assert_eq!(seq.finish(&a, &chat("1"), 2), vec![3]);
        assert_eq!(seq.finish(&a, &chat("1"), 3), Vec::<u64>::new());
    }

    #[test]
    fn a_chat_event_starts_once_the_earlier_one_sent() {
        let mut seq = Sequencer::default();
        let a = id("a");
        assert_eq!(offer(&mut seq, "a", chat("1"), 1), Some(1));
        assert_eq!(offer(&mut seq, "a", chat("1"), 2), None);
        assert_eq!(offer(&mut seq, "a", chat("1"), 3), None);
        assert_eq!(seq.sent(&a, &chat("1"), 1), vec![2]);
        // The earlier one finishing later does not free the chat of the running one.
        assert!(seq.finish(&a, &chat("1"), 1).is_empty());
        assert_eq!(seq.sent(&a, &chat("1"), 2), vec![3]);
        // A repeated or late report changes nothing.
        assert!(seq.sent(&a, &chat("1"), 2).is_empty());
        assert_eq!(offer(&mut seq, "a", chat("1"), 4), None, "3 still deciding");
        assert_eq!(seq.finish(&a, &chat("1"), 3), vec![4]);
    }

    #[test]
    fn an_account_event_waits_until_earlier_events_finished_not_sent() {
        let mut seq = Sequencer::default();
        let a = id("a");
        assert_eq!(offer(&mut seq, "a", chat("1"), 1), Some(1));
        assert_eq!(offer(&mut seq, "a", Scope::Account, 2), None);
        assert_eq!(
            offer(&mut seq, "a", chat("1"), 3),
            None,
            "after the barrier"
        );
        assert!(seq.sent(&a, &chat("1"), 1).is_empty());
        assert_eq!(seq.finish(&a, &chat("1"), 1), vec![2]);
        // The barrier holds its account until it finished, whatever it sent.
        assert!(seq.sent(&a, &Scope::Account, 2).is_empty());
        assert_eq!(offer(&mut seq, "a", chat("2"), 4), None);
        assert_eq!(seq.finish(&a, &Scope::Account, 2), vec![3, 4]);
    }

    #[test]
    fn an_account_event_waits_for_earlier_events_and_holds_later_ones() {
        let mut seq = Sequencer::default();
        let a = id("a");
        assert_eq!(offer(&mut seq, "a", chat("1"), 1), Some(1));
        assert_eq!(offer(&mut seq, "a", chat("2"), 2), Some(2));
        assert_eq!(offer(&mut seq, "a", Scope::Account, 3), None);
        assert_eq!(
            offer(&mut seq, "a", chat("3"), 4),
            None,
            "after the barrier"
        );
        // Other accounts go on.
        assert_eq!(offer(&mut seq, "b", chat("3"), 5), Some(5));
        assert!(seq.finish(&a, &chat("1"), 1).is_empty());
        assert_eq!(seq.finish(&a, &chat("2"), 2), vec![3]);
        assert_eq!(offer(&mut seq, "a", chat("4"), 6), None, "barrier running");
        assert_eq!(seq.finish(&a, &Scope::Account, 3), vec![4, 6]);
    }

    #[test]
    fn a_barrier_first_runs_alone() {
        let mut seq = Sequencer::default();
        let a = id("a");
        assert_eq!(offer(&mut seq, "a", Scope::Account, 1), Some(1));
        assert_eq!(offer(&mut seq, "a", Scope::Account, 2), None);
        assert_eq!(offer(&mut seq, "a", chat("1"), 3), None);
        assert_eq!(seq.finish(&a, &Scope::Account, 1), vec![2]);
        assert_eq!(seq.finish(&a, &Scope::Account, 2), vec![3]);
        assert_eq!(seq.finish(&a, &chat("1"), 3), Vec::<u64>::new());
        assert_eq!(seq.waiting(), 0);
        assert!(seq.streams.is_empty(), "idle accounts are forgotten");
    }

    #[test]
    fn a_waiting_chat_event_keeps_its_place_behind_its_chat() {
        let mut seq = Sequencer::default();
        let a = id("a");
        assert_eq!(offer(&mut seq, "a", chat("1"), 1), Some(1));
        assert_eq!(offer(&mut seq, "a", chat("1"), 2), None);
        assert_eq!(offer(&mut seq, "a", chat("2"), 3), Some(3));
        assert_eq!(offer(&mut seq, "a", chat("2"), 4), None);
        assert_eq!(seq.finish(&a, &chat("2"), 3), vec![4]);
        assert_eq!(seq.finish(&a, &chat("1"), 1), vec![2]);
    }

    #[test]
    fn held_events_are_taken_back() {
        let mut seq = Sequencer::default();
        let a = id("a");
        assert_eq!(offer(&mut seq, "a", chat("1"), 10), Some(10));
        assert_eq!(offer(&mut seq, "a", chat("1"), 11), None);
        assert_eq!(offer(&mut seq, "b", Scope::Account, 20), Some(20));
        assert_eq!(offer(&mut seq, "b", chat("1"), 21), None);
        let mut taken = seq.take_waiting(|item| *item >= 20);
        taken.sort();
        assert_eq!(taken, vec![21]);
        assert_eq!(seq.waiting(), 1);
        assert!(seq.finish(&id("b"), &Scope::Account, 20).is_empty());
        assert_eq!(seq.finish(&a, &chat("1"), 10), vec![11]);
    }
}
