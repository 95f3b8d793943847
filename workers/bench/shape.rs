//! The shape of a scenario: how many accounts, which chats belong to which
//! account, who is responsible for each, and which account and chat every
//! published event goes to. Both phases take their routing from here, so the
//! ceiling carries the same streams as Switchboard.
//!
//! Known chat `c` (of `0..chats`) belongs to account `c % accounts`, and its
//! responsible is manager `(c / accounts) % managers` of that account. Event
//! `seq` of a known scenario is of chat `seq % chats`, so consecutive events
//! go round robin over the accounts and over each account's chats.

use switchboard::ids::Id;
use switchboard::names::inbound_key;

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

/// Where one event goes and who should be told first.
#[derive(Debug)]
pub struct Target<'a> {
    pub account: &'a Account,
    pub chat: String,
    /// The manager expected to get the notification whose latency is measured.
    pub responsible: &'a str,
}

/// The accounts, their users and the spread of chats over them.
#[derive(Debug)]
pub struct Shape {
    pub accounts: Vec<Account>,
    pub chats: usize,
    /// Every account has the same users: these managers (round robin) and quality control.
    pub managers: Vec<String>,
    pub qcs: Vec<String>,
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
            scenario: args.scenario,
        }
    }

    /// Known chat `c`: its account, chat id and responsible manager.
    pub fn known(&self, c: usize) -> Target<'_> {
        let n = self.accounts.len();
        Target {
            account: &self.accounts[c % n],
            chat: format!("+7900{c:07}"),
            responsible: &self.managers[(c / n) % self.managers.len()],
        }
    }

    /// A new client's chat `{tag}-{seq}`, on the accounts in turn. Its
    /// responsible is the round robin's choice; the one named here is what a
    /// bare relay uses, an equal spread over the managers.
    pub fn fresh(&self, tag: &str, seq: u64) -> Target<'_> {
        let n = self.accounts.len() as u64;
        let m = self.managers.len() as u64;
        Target {
            account: &self.accounts[(seq % n) as usize],
            chat: format!("{tag}-{seq}"),
            responsible: &self.managers[((seq / n) % m) as usize],
        }
    }

    /// Measured event `seq` of the scenario.
    pub fn event(&self, seq: u64) -> Target<'_> {
        if self.scenario.is_new(seq) || self.chats == 0 {
            self.fresh("new", seq)
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
