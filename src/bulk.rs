//! Bulk loading of account events straight into Redis, for the benchmark's
//! flat-cost and memory runs: a million contacts in about a minute instead of
//! two million events through the broker. The handlers decide each event as
//! the worker would, on values read for all of them in one pipeline; the
//! writes of all of them go in a second pipeline, in the store's key layout.
//!
//! There are no event records, no guards and no outputs, so this is only for
//! events that do not read one another's writes (distinct contacts and deals),
//! into an account no worker changes at the same time.

use redis::aio::ConnectionLike;

use crate::events::Event;
use crate::handlers::{self, Decision, Op, Read, Reads};
use crate::store::AccountKeys;

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
) -> Result<Loaded, redis::RedisError> {
    let mut loaded = Loaded::default();
    let mut wanted: Vec<(&Event, Vec<Read>)> = Vec::with_capacity(events.len());
    for event in events {
        match handlers::reads(event) {
            Some(reads) if !reads.iter().any(|r| matches!(r, Read::Channel(_))) => {
                wanted.push((event, reads));
            }
            _ => loaded.refused.push(format!(
                "{}: not an account event that reads plain keys",
                event.type_name()
            )),
        }
    }
    let mut pipe = redis::pipe();
    pipe.get(keys.key(&handlers::Key::Config));
    for read in wanted.iter().flat_map(|(_, reads)| reads) {
        match read {
            Read::Get(k) => pipe.get(keys.key(k)),
            Read::HGet(k, f) => pipe.hget(keys.key(k), f.as_str()),
            Read::Channel(_) => unreachable!("events reading a channel are refused above"),
        };
    }
    let values: Vec<Option<String>> = pipe.query_async(conn).await?;
    let mut values = values.into_iter();
    let config = values.next().flatten();

    let mut writes = redis::pipe();
    for (event, reads) in wanted {
        let reads = Reads {
            config: config.clone(),
            values: reads
                .into_iter()
                .map(|r| (r, values.next().flatten()))
                .collect(),
            ..Reads::default()
        };
        match handlers::decide_account(event, &reads) {
            Decision::Apply(plan) => {
                for op in &plan.ops {
                    command(&mut writes, keys, op);
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

/// One write of a plan as its Redis command, as `apply.lua` makes it.
fn command(pipe: &mut redis::Pipeline, keys: &AccountKeys, op: &Op) {
    match op {
        Op::Set(k, v) => pipe.set(keys.key(k), v).ignore(),
        Op::Del(k) => pipe.del(keys.key(k)).ignore(),
        Op::HSet(k, f, v) => pipe.hset(keys.key(k), f.as_str(), v).ignore(),
        Op::HDel(k, f) => pipe.hdel(keys.key(k), f.as_str()).ignore(),
        Op::SAdd(k, m) => pipe.sadd(keys.key(k), m.as_str()).ignore(),
        Op::SRem(k, m) => pipe.srem(keys.key(k), m.as_str()).ignore(),
        Op::Incr(k) => pipe.incr(keys.key(k), 1).ignore(),
    };
}
