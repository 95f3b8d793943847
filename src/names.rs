//! Names on the broker: queues, exchanges and routing keys built from ids.
//!
//! Ids are escaped ([`Id::name_part`]: `%`, `.`, `*`, `#` become `%XX`) so a
//! `.` inside an id cannot pass for a word separator and two different
//! `(account, user)` pairs can never share a queue. AMQP names are at most 255 bytes; a longer one is shortened to its
//! readable head plus a digest of the whole, which keeps it unique.

use crate::ids::Id;
use crate::output::{Destination, derive_id};

/// The longest AMQP short string.
const MAX_NAME_BYTES: usize = 255;

/// Exchange and queue names under one prefix.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
    /// `P.notify`, `P.crm` and `P.outbound`, built once: every message sent
    /// names one of them.
    notify: String,
    crm: String,
    outbound: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            notify: format!("{prefix}.notify"),
            crm: format!("{prefix}.crm"),
            outbound: format!("{prefix}.outbound"),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn inbound(&self) -> String {
        format!("{}.inbound", self.prefix)
    }

    /// The internal consistent-hash exchange behind `P.inbound` that spreads
    /// accounts over the partitions.
    pub fn inbound_hash(&self) -> String {
        format!("{}.inbound.hash", self.prefix)
    }

    /// The consistent-hash exchange that carries the routing of `P.inbound`
    /// while `switchboard partitions` changes the count (see `ops::partitions`).
    pub fn inbound_next(&self) -> String {
        format!("{}.inbound.next", self.prefix)
    }

    /// Partition `n` of the inbound stream.
    pub fn inbound_partition(&self, n: u16) -> String {
        format!("{}.inbound.{n}", self.prefix)
    }

    pub fn notify(&self) -> String {
        self.notify.clone()
    }

    pub fn crm(&self) -> String {
        self.crm.clone()
    }

    pub fn outbound(&self) -> String {
        self.outbound.clone()
    }

    /// Every exchange the worker declares (for removing a prefix).
    pub fn exchanges(&self) -> [String; 6] {
        [
            self.inbound(),
            self.inbound_hash(),
            self.inbound_next(),
            self.notify(),
            self.crm(),
            self.outbound(),
        ]
    }

    pub fn dead(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    /// The exchange and routing key of a message of `account` to `to`.
    pub fn destination(&self, account: &Id, to: &Destination) -> (String, String) {
        match to {
            Destination::User(user) => (self.notify(), user_key(account, user)),
            Destination::Crm(kind) => (self.crm(), crm_key(account, kind)),
            Destination::Gateway(channel) => (self.outbound(), outbound_key(account, channel)),
            // The default exchange routes by queue name.
            Destination::ReplyTo(queue) => (String::new(), queue.clone()),
        }
    }

    /// `P.user.{accountId}.{userId}`.
    pub fn user_queue(&self, account: &Id, user: &Id) -> String {
        bounded(format!(
            "{}.user.{}.{}",
            self.prefix,
            account.name_part(),
            user.name_part()
        ))
    }
}

/// Routing key of every event of an account on `P.inbound`: `{accountId}`,
/// escaped and bounded like every name, so all events of one account are one
/// ordered stream in one partition. The worker refuses an event whose routing
/// key is not this key of its own account.
pub fn inbound_key(account: &Id) -> String {
    bounded(account.name_part())
}

/// Routing key of a user's notifications on `P.notify`: `{accountId}.{userId}`.
pub fn user_key(account: &Id, user: &Id) -> String {
    two_words(account, user.as_str().len(), |out| user.push_name_part(out))
}

/// Routing key on `P.crm`: `{accountId}.{type}`.
pub fn crm_key(account: &Id, kind: &str) -> String {
    two_words(account, kind.len(), |out| out.push_str(kind))
}

/// Routing key on `P.outbound`: `{accountId}.{channelId}`.
pub fn outbound_key(account: &Id, channel: &Id) -> String {
    two_words(account, channel.as_str().len(), |out| {
        channel.push_name_part(out)
    })
}

/// `{accountId}.{second}`, bounded, in one string sized for the unescaped
/// parts (an id seldom needs escaping).
fn two_words(account: &Id, second_len: usize, second: impl FnOnce(&mut String)) -> String {
    let mut key = String::with_capacity(account.as_str().len() + 1 + second_len);
    account.push_name_part(&mut key);
    key.push('.');
    second(&mut key);
    bounded(key)
}

fn bounded(name: String) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let digest = derive_id(&["amqp-name", &name]);
    let mut end = MAX_NAME_BYTES - digest.as_str().len() - 1;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}~{digest}", &name[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_in_ids_do_not_merge_queues() {
        let names = Names::new("p");
        let a = names.user_queue(&Id::parse("a.b").unwrap(), &Id::parse("c").unwrap());
        let b = names.user_queue(&Id::parse("a").unwrap(), &Id::parse("b.c").unwrap());
        assert_ne!(a, b);
        assert_eq!(a, "p.user.a%2Eb.c");
    }

    #[test]
    fn inbound_key_is_the_escaped_account() {
        assert_eq!(inbound_key(&Id::parse("acme.ru").unwrap()), "acme%2Eru");
        assert_eq!(inbound_key(&Id::parse("a%*#").unwrap()), "a%25%2A%23");
        let long = inbound_key(&Id::parse("é".repeat(128)).unwrap());
        assert!(long.len() <= MAX_NAME_BYTES && long.contains('~'));
    }

    #[test]
    fn routing_keys_are_the_escaped_words() {
        let names = Names::new("pre.fix");
        let id = |s: &str| Id::parse(s).unwrap();
        let account = id("acme.ru");
        let cases = [
            (
                Destination::User(id("u#1")),
                "pre.fix.notify",
                "acme%2Eru.u%231",
            ),
            (
                Destination::Crm("contact.created"),
                "pre.fix.crm",
                "acme%2Eru.contact.created",
            ),
            (
                Destination::Gateway(id("ch*%")),
                "pre.fix.outbound",
                "acme%2Eru.ch%2A%25",
            ),
            (Destination::ReplyTo("amq.gen-1".into()), "", "amq.gen-1"),
        ];
        for (to, exchange, key) in cases {
            assert_eq!(
                names.destination(&account, &to),
                (exchange.to_owned(), key.to_owned())
            );
        }
        assert_eq!(names.notify(), "pre.fix.notify");
        assert_eq!(names.crm(), "pre.fix.crm");
        assert_eq!(names.outbound(), "pre.fix.outbound");
        // A key too long for AMQP is bounded as before.
        let long = id(&"é".repeat(128));
        let key = user_key(&long, &long);
        assert!(key.len() <= MAX_NAME_BYTES && key.contains('~'));
        assert_eq!(
            key,
            bounded(format!("{}.{}", long.name_part(), long.name_part()))
        );
    }

    #[test]
    fn long_names_fit_and_stay_distinct() {
        let names = Names::new("p");
        let long = |c: &str| Id::parse(c.repeat(128)).unwrap();
        let a = names.user_queue(&long("é"), &long("ü"));
        let b = names.user_queue(&long("é"), &long("ö"));
        assert!(a.len() <= MAX_NAME_BYTES && b.len() <= MAX_NAME_BYTES);
        assert_ne!(a, b);
    }
}
