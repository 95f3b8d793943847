//! What the published events must cause, written down from the contract while
//! the events are made, never from the worker's code. A rule may name "the
//! owner" of a new chat (the manager the round robin chose, or the winner of
//! a claim): the run cannot know him in advance, so the check reads him from
//! the CRM's `contact.created` and resolves the rules then.

/// A user every account has: quality control sees every message.
pub const QC: &str = "qc";
/// The managers of every account, all eligible for new clients.
pub const MANAGERS: [&str; 4] = ["m1", "m2", "m3", "m4"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    RoundRobin,
    FirstReply,
}

impl Distribution {
    pub fn wire(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::FirstReply => "first_reply",
        }
    }
}

/// When a reply may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    Always,
    Never,
    /// Only when its author owns the chat; otherwise rejected.
    IfOwner,
}

/// What one good event must cause.
#[derive(Debug, Clone)]
pub enum Rule {
    /// A client's message: `to` and, when `owner`, the chat's owner see it
    /// (`chat.new` or `chat.message`, with the message's id).
    Inbound { to: Vec<&'static str>, owner: bool },
    /// A reply: sent (`message.send`, quality control sees it) when allowed,
    /// else `message.rejected` to its author with one of `reasons`.
    Reply {
        user: &'static str,
        allowed: Allowed,
        reasons: &'static [&'static str],
    },
    /// Several managers answer a waiting chat back to back: exactly one of
    /// them (the owner) wins: `chat.assigned`, his reply sent; the others get
    /// `claimed_by_other`; every manager but the winner gets `chat.withdrawn`.
    Race {
        replies: Vec<(&'static str, String)>,
    },
}

/// A good chat event and what it must cause.
#[derive(Debug, Clone)]
pub struct Expect {
    pub account: String,
    pub chat: String,
    pub message_id: String,
    pub rule: Rule,
}

/// A new client's chat: exactly one contact, one deal and one owner.
#[derive(Debug, Clone)]
pub struct NewChat {
    pub account: String,
    pub chat: String,
    pub distribution: Distribution,
}

#[derive(Debug, Default)]
pub struct Model {
    pub expects: Vec<Expect>,
    pub new_chats: Vec<NewChat>,
    /// Chats whose contact the CRM created: no `contact.created` may name them.
    pub known_chats: Vec<(String, String)>,
    /// The bad inputs, by eventId (or the whole body when it is not JSON).
    pub bad: Vec<String>,
}

impl Model {
    /// How many distinct notifications the rules call for, whoever the owners are.
    pub fn notifications(&self) -> usize {
        self.expects
            .iter()
            .map(|e| match &e.rule {
                Rule::Inbound { to, owner } => to.len() + usize::from(*owner),
                Rule::Reply { .. } => 1,
                // assigned + quality control + the losers' rejections + withdrawals
                Rule::Race { replies } => 2 + (replies.len() - 1) + (MANAGERS.len() - 1),
            })
            .sum()
    }

    /// `contact.created` plus `deal.created` events the CRM must get.
    pub fn crm_events(&self) -> usize {
        2 * self.new_chats.len()
    }
}
