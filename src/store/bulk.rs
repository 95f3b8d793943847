//! Bulk loading of account events straight into Redis, for the benchmark's
//! flat-cost and memory runs: a million contacts in about a minute instead of
//! two million events through the broker. The handlers decide each event as
//! the worker would, on values read for all of them in one pipeline; the
//! writes of all of them go in a second pipeline, as the same commands
//! `apply.lua` would run.
//!
//! There are no event records, no guards and no outputs, so this is only for
//! events that do not read one another's writes (distinct contacts and deals),
//! into an account no worker changes at the same time.

use redis::aio::ConnectionLike;

use super::StoreError;
use super::apply::Command;
use super::keys::{AccountKeys, Key};
use super::read::{decode, items_from, items_to};
use crate::events::Event;
use crate::handlers::{self, Decision};
use crate::state::{Read, Reads, Stored, Version};

/// What became of a batch.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Events whose writes were made.
    pub written: usize,
    /// Why each of the others was not: a rejection, or an event this cannot load.
    pub refused: Vec<String>,
}

/// Decides each of `events` (account events of the account of `keys`) on the
/// state as it is now and writes what the decisions change: two round trips
/// for the whole batch.
pub async fn load(
    conn: &mut impl ConnectionLike,
    keys: &AccountKeys,
    events: &[Event],
) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    let mut wanted = Vec::with_capacity(events.len());
    for event in events {
        let items: Option<Vec<_>> = handlers::reads(event).and_then(|reads| {
            reads
                .into_iter()
                .map(|read| match read {
                    Read::Item(item) => Some(item),
                    Read::ChannelState(_) => None,
                })
                .collect()
        });
        match items {
            Some(items) => wanted.push((event, items)),
            None => loaded.refused.push(format!(
                "{}: not an account event that reads plain items",
                event.type_name()
            )),
        }
    }
    let mut pipe = redis::pipe();
    pipe.get(keys.key(&Key::Config));
    let all: Vec<_> = wanted
        .iter()
        .flat_map(|(_, items)| items)
        .cloned()
        .collect();
    items_to(&mut pipe, keys, &all);
    let mut values: Vec<Option<String>> = pipe.query_async(conn).await?;
    let config = if values.is_empty() {
        None
    } else {
        values.remove(0)
    };
    let mut values = items_from(&all, values).into_iter();

    let mut writes = redis::pipe();
    for (event, items) in wanted {
        let mut reads = Reads {
            config: Version::stored(config.clone()),
            ..Reads::default()
        };
        for item in items {
            let raw = values.next().flatten();
            let value = raw.as_deref().map(|raw| decode(&item, raw)).transpose()?;
            let version = Version::stored(raw);
            reads.items.insert(item, Stored { version, value });
        }
        match handlers::decide_account(event, &reads) {
            Decision::Apply(plan) => {
                for command in plan.changes.iter().flat_map(Command::of) {
                    command.add_to(&mut writes, keys);
                }
                loaded.written += 1;
            }
            Decision::Answer(_) => loaded.written += 1,
            Decision::Reject(why) => loaded.refused.push(why.header()),
        }
    }
    let (): () = writes.query_async(conn).await?;
    Ok(loaded)
}
