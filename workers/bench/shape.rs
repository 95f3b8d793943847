//! The shape of a scenario: how many accounts, which chats belong to which
//! account, who is responsible for each, and which account and chat every
//! published event goes to. Both phases take their routing from here, so the
//! ceiling carries the same streams as Switchboard.
//!
//! Known chat `c` (of `0..chats`) belongs to account `c % accounts`, and its
//! responsible is manager `(c / accounts) % managers` of that account. Event
//! `seq` of a known scenario is of chat `seq % chats`, so consecutive events
//! go round robin over the accounts and over each account's chats. New
//! clients get chats of their own; [`Shape::outputs`] says what the worker
//! publishes for each event, which is what the ceiling relays.

use switchboard::ids::Id;
use switchboard::names::{crm_key, inbound_key, outbound_key, user_key};

use crate::args::{Args, Scenario};

/// One bench account: its id and the routing key all its events carry.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub id: Id,
    /// `{accountId}` escaped, as the contract routes every event on `P.inbound`.
    pub key: String,
}

impl Account {
    fn new(k: usize) -> Self {
        let name = format!("bench-account-{k}");
        let id = Id::parse(&name).expect("valid id");
        let key = inbound_key(&id);
        Self { name, id, key }
    }
}

/// What an event is, which decides what the worker publishes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A message of a settled chat: the responsible and quality control are told.
    Known,
    /// A new client's first message under round robin: the chosen manager and
    /// quality control get `chat.new`; `contact.created` and `deal.created` go to the CRM.
    RoundRobin,
    /// A new client's first message under first reply: every eligible manager
    /// and quality control get `chat.new`.
    Offer,
    /// The reply that claims an offered chat: the claimer gets `chat.assigned`,
    /// the other managers `chat.withdrawn`, quality control the reply; the
    /// reply goes to the gateway, `contact.created` and `deal.created` to the CRM.
    Claim,
}

/// Where one event goes and whose output is measured.
#[derive(Debug)]
pub struct Target<'a> {
    pub account: &'a Account,
    pub chat: String,
    /// The known chat's responsible; a new client's manager (for round robin
    /// the one a bare relay uses, an equal spread; the worker's choice may
    /// differ); the claimer of a first-reply chat.
    pub responsible: &'a str,
    pub step: Step,
}

/// Where an output goes, for the ceiling's relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    Notify,
    Crm,
    Outbound,
}

/// Whose copy of an event is measured: the client's message and the manager's
/// notification, or the claim and the gateway's reply.
pub const TO_GATEWAY: &str = "@gateway";

/// The accounts, their users and the spread of chats over them.
#[derive(Debug)]
pub struct Shape {
    pub accounts: Vec<Account>,
    pub chats: usize,
    /// Every account has the same users: these managers (round robin or first
    /// reply), quality control, and idle users nobody notifies.
    pub managers: Vec<String>,
    pub qcs: Vec<String>,
    pub idle: Vec<String>,
    scenario: Scenario,
}

impl Shape {
    pub fn new(args: &Args) -> Self {
        Self {
            accounts: (0..args.accounts).map(Account::new).collect(),
            chats: args.chats,
            managers: (0..args.managers).map(|i| format!("manager-{i}")).collect(),
            qcs: (0..args.quality_control)
                .map(|i| format!("qc-{i}"))
                .collect(),
            idle: (0..args.users).map(|i| format!("idle-{i}")).collect(),
            scenario: args.scenario,
        }
    }

    /// Whether new clients are offered to every manager and claimed by a reply.
    pub fn first_reply(&self) -> bool {
        self.scenario == Scenario::FirstReply
    }

    /// Known chat `c`: its account, chat id and responsible manager.
    pub fn known(&self, c: usize) -> Target<'_> {
        let n = self.accounts.len();
        Target {
            account: &self.accounts[c % n],
            chat: format!("+7900{c:07}"),
            responsible: &self.managers[(c / n) % self.managers.len()],
            step: Step::Known,
        }
    }

    /// A new client's chat `{tag}-{k}`, on the accounts in turn, spread evenly
    /// over the managers.
    fn fresh(&self, tag: &str, k: u64, step: Step) -> Target<'_> {
        let n = self.accounts.len() as u64;
        let m = self.managers.len() as u64;
        Target {
            account: &self.accounts[(k % n) as usize],
            chat: format!("{tag}-{k}"),
            responsible: &self.managers[((k / n) % m) as usize],
            step,
        }
    }

    /// Event `seq` of the scenario's new clients, chats tagged `tag`: under
    /// first reply, event `2k` is chat `k`'s first message and `2k + 1` its claim.
    pub fn new_client(&self, tag: &str, seq: u64) -> Target<'_> {
        match self.scenario {
            Scenario::FirstReply if seq.is_multiple_of(2) => self.fresh(tag, seq / 2, Step::Offer),
            Scenario::FirstReply => self.fresh(tag, seq / 2, Step::Claim),
            _ => self.fresh(tag, seq, Step::RoundRobin),
        }
    }

    /// Measured event `seq` of the scenario.
    pub fn event(&self, seq: u64) -> Target<'_> {
        let new = match self.scenario {
            Scenario::Known => false,
            Scenario::Mixed => seq % 10 == 9,
            Scenario::New | Scenario::FirstReply => true,
        };
        if new || self.chats == 0 {
            self.new_client("new", seq)
        } else {
            self.known((seq % self.chats as u64) as usize)
        }
    }

    /// Every `(account, user, is a manager)` whose queue a client reads.
    pub fn users(&self) -> impl Iterator<Item = (&Account, &str, bool)> {
        self.accounts.iter().flat_map(|a| {
            self.managers
                .iter()
                .map(move |u| (a, u.as_str(), true))
                .chain(self.qcs.iter().map(move |u| (a, u.as_str(), false)))
        })
    }

    /// What the worker publishes for `target`, by exchange and routing key:
    /// what the ceiling's relay publishes in its place.
    pub fn outputs(&self, target: &Target<'_>) -> Vec<(Exchange, String)> {
        let account = &target.account.id;
        let notify = |u: &str| {
            (
                Exchange::Notify,
                user_key(account, &Id::parse(u).expect("valid id")),
            )
        };
        let crm = |kind: &str| (Exchange::Crm, crm_key(account, kind));
        let mut out = Vec::new();
        match target.step {
            Step::Known | Step::RoundRobin => out.push(notify(target.responsible)),
            Step::Offer | Step::Claim => out.extend(self.managers.iter().map(|u| notify(u))),
        }
        out.extend(self.qcs.iter().map(|u| notify(u)));
        if matches!(target.step, Step::RoundRobin | Step::Claim) {
            out.push(crm("contact.created"));
            out.push(crm("deal.created"));
        }
        if target.step == Step::Claim {
            let channel = Id::parse(crate::account::CHANNEL).expect("valid id");
            out.push((Exchange::Outbound, outbound_key(account, &channel)));
        }
        out
    }

    /// Whose copy of `target`'s event is measured: any manager's (`None`), the
    /// claimer's, or the gateway's ([`TO_GATEWAY`]).
    pub fn measured_at<'a>(&self, target: &Target<'a>) -> Option<&'a str> {
        match target.step {
            Step::Known | Step::RoundRobin => None,
            Step::Offer => Some(target.responsible),
            Step::Claim => Some(TO_GATEWAY),
        }
    }
}

/// `"1 account x 1000 chats"` or `"8 accounts x 125 chats"` (a range when uneven).
pub fn describe(accounts: usize, chats: usize) -> String {
    let (lo, hi) = (chats / accounts.max(1), chats.div_ceil(accounts.max(1)));
    let per = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    };
    let plural = if accounts == 1 { "" } else { "s" };
    format!("{accounts} account{plural} x {per} chats")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn shape(scenario: &str) -> Shape {
        let args = Args::parse_from([
            "switchboard-bench",
            "--scenario",
            scenario,
            "--managers",
            "3",
            "--users",
            "5",
        ]);
        Shape::new(&args)
    }

    fn count(outputs: &[(Exchange, String)], exchange: Exchange) -> usize {
        outputs.iter().filter(|(e, _)| *e == exchange).count()
    }

    #[test]
    fn the_ceiling_relays_what_the_worker_publishes_for_each_step() {
        use Exchange::{Crm, Notify, Outbound};
        let known = shape("known");
        let out = known.outputs(&known.event(0));
        assert_eq!(
            [count(&out, Notify), count(&out, Crm), count(&out, Outbound)],
            [2, 0, 0],
            "the responsible and quality control"
        );
        let new = shape("new");
        let out = new.outputs(&new.event(0));
        assert_eq!(
            [count(&out, Notify), count(&out, Crm), count(&out, Outbound)],
            [2, 2, 0]
        );
        let first = shape("first-reply");
        let (offer, claim) = (first.event(4), first.event(5));
        assert_eq!((offer.step, claim.step), (Step::Offer, Step::Claim));
        assert_eq!(offer.chat, claim.chat, "the claim is of the offered chat");
        let out = first.outputs(&offer);
        assert_eq!(
            [count(&out, Notify), count(&out, Crm), count(&out, Outbound)],
            [4, 0, 0],
            "every manager and quality control, never the idle users"
        );
        let out = first.outputs(&claim);
        assert_eq!(
            [count(&out, Notify), count(&out, Crm), count(&out, Outbound)],
            [4, 2, 1],
            "assigned, withdrawn twice, quality control; contact and deal; the reply"
        );
        assert_eq!(first.measured_at(&claim), Some(TO_GATEWAY));
        assert_eq!(first.measured_at(&offer), Some(offer.responsible));
    }

    #[test]
    fn mixed_is_one_new_client_in_ten() {
        let mixed = shape("mixed");
        let new = (0..100)
            .filter(|seq| mixed.event(*seq).step == Step::RoundRobin)
            .count();
        assert_eq!(new, 10);
    }
}
