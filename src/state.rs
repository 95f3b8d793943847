//! The account's state as the decisions see it: its items ([`Item`]), what an
//! event reads ([`Read`], [`Reads`], [`ChatSnapshot`], [`ChannelState`]) and
//! what it changes ([`Plan`]: guards, [`Change`]s, outputs).
//!
//! Plain domain data shared by the pure decisions (`handlers`) and the store
//! (`store`), which alone knows Redis: its key names, its commands and the JSON
//! the values are kept in. A value's [`Version`] is opaque here: a guard hands
//! it back to the store, which compares it with what Redis holds at apply time.

use std::collections::HashMap;

use crate::ids::Id;
use crate::model::{
    Channel, Chat, ChatRef, Contact, Deal, Pipeline, RoundRobin, Seat, Settings, User, WaitingEntry,
};
use crate::output::{CrmEvent, Output, Outputs};

/// One item of an account's state that an event may read and a plan may guard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    /// The account's configuration (channels, users, pipelines, settings) as a
    /// whole: it changes with each of them.
    Config,
    Settings,
    Pipelines,
    Channel(Id),
    User(Id),
    Chat(ChatRef),
    Contact(Id),
    Deal(Id),
    /// The round-robin pool of one channel.
    RoundRobin(Id),
}

/// What an account event reads: one item, or one channel's [`ChannelState`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Read {
    Item(Item),
    ChannelState(Id),
}

/// A value of an [`Item`], decoded by the store.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemValue {
    Settings(Settings),
    Pipelines(Vec<Pipeline>),
    Channel(Channel),
    User(User),
    Chat(Chat),
    Contact(Contact),
    Deal(Deal),
    RoundRobin(RoundRobin),
}

/// A value as it was read, opaque to the decisions: a [`Guard`] carries it
/// back to the store, which checks that the item still holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version(Option<String>);

impl Version {
    /// For the store: the stored form of the value, `None` for absent.
    pub fn stored(raw: Option<String>) -> Self {
        Self(raw)
    }

    /// For the store: what the guard expects to find.
    pub fn expected(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// A value with the [`Version`] it was read at, for the guard of a later write.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    pub version: Version,
    pub value: Option<T>,
}

impl<T> Default for Stored<T> {
    fn default() -> Self {
        Self {
            version: Version::default(),
            value: None,
        }
    }
}

impl<T> Stored<T> {
    /// A guard that holds while `item` (the item this was read from) is unchanged.
    pub fn guard(&self, item: Item) -> Guard {
        Guard {
            item,
            expect: self.version.clone(),
        }
    }
}

/// Typed accessors of [`Reads`]: `name(key) -> type = Kind` reads the value
/// of `Item::Kind(key)` (an item without a key takes none).
macro_rules! read_as {
    ($($name:ident($($key:ident: $key_ty:ty)?) -> $ty:ty = $kind:ident;)*) => {$(
        pub fn $name(&self $(, $key: &$key_ty)?) -> Option<&$ty> {
            match self.value(Item::$kind$(($key.clone()))?) {
                Some(ItemValue::$kind(v)) => Some(v),
                _ => None,
            }
        }
    )*};
}

/// The values of the reads an account event asked for.
#[derive(Debug, Default)]
pub struct Reads {
    pub config: Version,
    pub items: HashMap<Item, Stored<ItemValue>>,
    /// The channels asked for with [`Read::ChannelState`].
    pub channels: HashMap<Id, ChannelState>,
}

impl Reads {
    fn value(&self, item: Item) -> Option<&ItemValue> {
        self.items.get(&item).and_then(|s| s.value.as_ref())
    }

    read_as! {
        settings() -> Settings = Settings;
        pipelines() -> Vec<Pipeline> = Pipelines;
        channel(id: Id) -> Channel = Channel;
        user(id: Id) -> User = User;
        chat(chat: ChatRef) -> Chat = Chat;
        deal(id: Id) -> Deal = Deal;
    }

    /// A guard that holds while `item` still has the value it was read with.
    pub fn guard(&self, item: Item) -> Guard {
        let expect = self
            .items
            .get(&item)
            .map(|s| s.version.clone())
            .unwrap_or_default();
        Guard { item, expect }
    }

    pub fn config_guard(&self) -> Guard {
        Guard {
            item: Item::Config,
            expect: self.config.clone(),
        }
    }
}

/// A channel's seats, round-robin pool and the chats waiting on it: what
/// offering waiting chats to users who gain access needs. The pool's version
/// is its turn counter.
#[derive(Debug, Clone, Default)]
pub struct ChannelState {
    /// Sorted by user id.
    pub seats: Vec<(Id, Seat)>,
    pub round_robin: Stored<RoundRobin>,
    pub waiting: Vec<WaitingChat>,
}

/// One entry of a channel's waiting index, with the chat (and its contact, if
/// it has one) as stored.
#[derive(Debug, Clone)]
pub struct WaitingChat {
    pub entry: WaitingEntry,
    pub chat: Stored<Chat>,
    pub contact: Stored<Contact>,
}

/// "This item still holds exactly the value it was read with (or is absent)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub item: Item,
    pub expect: Version,
}

/// One change of the account's state, in the domain's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Channels, users, pipelines or settings changed: bumps [`Item::Config`].
    ConfigChanged,
    SaveSettings(Settings),
    SavePipelines(Vec<Pipeline>),
    SaveChannel(Channel),
    SaveUser(User),
    SaveSeat {
        channel: Id,
        user: Id,
        seat: Seat,
    },
    RemoveSeat {
        channel: Id,
        user: Id,
    },
    SaveChat(ChatRef, Chat),
    SaveContact(Contact),
    SaveDeal(Deal),
    /// The deal shows in the contact's suitcase.
    LinkDeal {
        contact: Id,
        deal: Id,
    },
    UnlinkDeal {
        contact: Id,
        deal: Id,
    },
    SaveRoundRobin(Id, RoundRobin),
    /// The chat waits on the channel to be claimed (the channel's waiting index).
    MarkWaiting {
        channel: Id,
        entry: WaitingEntry,
    },
    UnmarkWaiting {
        channel: Id,
        chat: ChatRef,
    },
    /// No change of its own: the plan creates `item` (a contact or a deal,
    /// saved by another change) under an id derived from its event, so no
    /// version stored it before at the key of an older layout. A hint for the
    /// store, which then neither reads nor removes that key. (Only the
    /// event's own first application could have, and it left the event's
    /// record, which the apply finds first.)
    Created(Item),
}

/// State changes and outputs of one event, applied at once or not at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub guards: Vec<Guard>,
    pub changes: Vec<Change>,
    pub outputs: Outputs,
    /// Users whose notification queues must exist before the event is acked.
    pub declare_users: Vec<Id>,
    /// What the plan decided, for the metrics.
    pub tally: Tally,
    /// A new client handed out by round robin: which manager gets him is
    /// decided when the plan is applied, so new clients of one channel at
    /// once do not conflict.
    pub turn: Option<Turn>,
}

/// A round-robin turn taken when the plan is applied: the store gives the
/// client to the manager of `managers` whose last new client is oldest (never
/// first, ties by id; see [`crate::model::RoundRobin`]), records the turn in
/// the channel's pool and applies the plan's own changes, then what the turn
/// adds for that manager.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub channel: Id,
    /// The channel's eligible managers, sorted by id.
    pub managers: Vec<Id>,
    pub adds: TurnAdds,
}

/// What a [`Turn`] adds to the plan for the manager who takes it.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnAdds {
    /// The same for every manager but for his id: the changes and outputs
    /// made for [`Id::slot`] as the manager, whose notification (the
    /// [`crate::output::Recipient`] of user [`Id::slot`]) has the id of `notification_ids`
    /// at his place in [`Turn::managers`]. Built once however many managers.
    Template {
        variant: Variant,
        notification_ids: Vec<Id>,
    },
    /// One variant per manager, at his place in [`Turn::managers`]: where the
    /// managers' variants differ by more than the id (a manager who was shown
    /// the chat, or who already is the contact's responsible).
    Variants(Vec<Variant>),
}

/// What a plan with a [`Turn`] adds for one manager.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variant {
    pub changes: Vec<Change>,
    pub outputs: Outputs,
}

impl Turn {
    /// What the turn adds if `manager` takes it; `None` if he is none of its managers.
    pub fn variant(&self, manager: &Id) -> Option<Variant> {
        let at = self.managers.iter().position(|m| m == manager)?;
        match &self.adds {
            TurnAdds::Template {
                variant,
                notification_ids,
            } => Some(variant.filled(manager, notification_ids.get(at)?)),
            TurnAdds::Variants(variants) => variants.get(at).cloned(),
        }
    }
}

impl Variant {
    /// A template's variant for `manager`: every [`Id::slot`] that stands for
    /// the manager becomes `manager`, the id of his notification
    /// `notification_id`. The places a manager can take are the responsible
    /// of a contact, a deal and their CRM events, and a notification's
    /// recipient; a template has the slot nowhere else.
    pub fn filled(&self, manager: &Id, notification_id: &Id) -> Variant {
        let mut variant = self.clone();
        for change in &mut variant.changes {
            fill_change(change, manager);
        }
        for output in &mut variant.outputs.0 {
            fill_output(output, manager, notification_id);
        }
        variant
    }
}

/// Fills the [`Id::slot`] that stands for a turn's manager in `change` with
/// `manager` (see [`Variant::filled`]); whether it had one.
pub fn fill_change(change: &mut Change, manager: &Id) -> bool {
    let id = match change {
        Change::SaveContact(c) => &mut c.responsible_user_id,
        Change::SaveDeal(d) => &mut d.responsible_user_id,
        _ => return false,
    };
    fill(id, manager)
}

/// Fills the [`Id::slot`]s that stand for a turn's manager in `output` with
/// `manager`, and his notification's id with `notification_id` (see
/// [`Variant::filled`]); whether it had any.
pub fn fill_output(output: &mut Output, manager: &Id, notification_id: &Id) -> bool {
    match output {
        Output::Notify { to, .. } => {
            let mut any = false;
            for recipient in to.iter_mut().filter(|r| r.user.is_slot()) {
                recipient.user.clone_from(manager);
                recipient.id.clone_from(notification_id);
                any = true;
            }
            any
        }
        Output::Crm(
            CrmEvent::ContactCreated {
                responsible_user_id,
                ..
            }
            | CrmEvent::DealCreated {
                responsible_user_id,
                ..
            }
            | CrmEvent::ContactResponsibleChanged {
                responsible_user_id,
                ..
            },
        ) => fill(responsible_user_id, manager),
        Output::Send(_) | Output::Reply { .. } => false,
    }
}

/// `id` := `manager` if it is the slot; whether it was.
fn fill(id: &mut Id, manager: &Id) -> bool {
    let slot = id.is_slot();
    if slot {
        id.clone_from(manager);
    }
    slot
}

impl Plan {
    /// The plan as it is applied when `manager` takes the turn (the plan
    /// itself when it has no turn); `None` if he is none of its managers.
    pub fn with_turn_to(&self, manager: Option<&Id>) -> Option<Plan> {
        let Some(turn) = &self.turn else {
            return manager.is_none().then(|| self.clone());
        };
        let variant = turn.variant(manager?)?;
        // Field by field: cloning `self` would copy the turn.
        let mut changes = self.changes.clone();
        changes.extend(variant.changes);
        let mut outputs = self.outputs.clone();
        outputs.0.extend(variant.outputs.0);
        Some(Plan {
            guards: self.guards.clone(),
            changes,
            outputs,
            declare_users: self.declare_users.clone(),
            tally: self.tally,
            turn: None,
        })
    }
}

/// Decisions of a plan worth counting: claims and round-robin hand-outs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub claims_won: u32,
    pub claims_lost: u32,
    pub round_robin: u32,
}

/// Everything a chat event (`message.*`, `suitcase.requested`) may need, read in one step.
#[derive(Debug, Clone, Default)]
pub struct ChatSnapshot {
    pub config: Version,
    pub settings: Option<Settings>,
    pub channel: Option<Channel>,
    /// The seats the decision may need, sorted by user id: the channel's
    /// quality control and supervisors, the contact's responsible and the
    /// event's user, and, unless the chat is settled on a responsible who has
    /// a seat, every eligible manager. Not every seat of the channel.
    pub seats: Vec<(Id, Seat)>,
    pub chat: Stored<Chat>,
    pub contact: Stored<Contact>,
    /// The user named by the event, if any.
    pub user: Option<User>,
    /// The contact's deals (suitcase only).
    pub deals: Vec<Deal>,
}

/// What a chat event needs in its snapshot besides the common parts.
pub struct ChatQuery {
    pub channel_id: Option<Id>,
    pub chat: ChatRef,
    pub user_id: Option<Id>,
    pub with_deals: bool,
}
