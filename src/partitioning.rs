//! The partition count of a deployment and how it changes while events flow.
//!
//! The count in effect is recorded in Redis (`P:partitions`, field `count`),
//! not only in each worker's `--partitions`: the flag seeds it the first time
//! and every worker then follows the record, so a change made by
//! `switchboard partitions --to M` reaches every worker without a restart.
//!
//! A change keeps each account's order with a *fence* (see `ops::partitions`):
//! the command switches the routing to the new set of partitions at one
//! instant and puts a marker at the end of every old partition, before or
//! after the switch ([`markers`]). A worker that
//! meets a marker lets every earlier delivery of that partition finish,
//! records the partition as fenced, and starts nothing after the marker until
//! the change is over. Only when every old partition is fenced does the
//! command record the new count; the workers then consume the new set. So an
//! account's events routed before the switch are all handled before any routed
//! after it, wherever the switch moved the account.
//!
//! This module holds what the worker and the command must agree on: the keys,
//! the marker, and the state read back from Redis.

use std::collections::HashMap;
use std::ops::Range;

/// Header that marks a fence marker; its value is the change's id.
pub const FENCE_HEADER: &str = "x-switchboard-fence";

/// The hash holding the count in effect and the change in progress.
pub fn state_key(prefix: &str) -> String {
    format!("{prefix}:partitions")
}

/// The set of old partitions fenced so far during change `id`.
pub fn fenced_key(prefix: &str, id: &str) -> String {
    format!("{prefix}:partitions:fenced:{id}")
}

/// How long the fenced set of a change is kept: long enough for any change
/// to finish, short enough that an abandoned one leaves nothing for ever.
pub const FENCED_TTL_SECS: u64 = 7 * 24 * 3600;

/// A change in progress: its id (the markers carry it) and the new count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: String,
    pub to: u16,
}

/// What `P:partitions` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// The count in effect; `None` before any worker of this version started.
    pub count: Option<u16>,
    pub change: Option<Change>,
}

impl State {
    /// Reads the fields of `P:partitions` (an `HGETALL`). A field that does
    /// not parse is reported, never guessed.
    pub fn from_fields(fields: &HashMap<String, String>) -> Result<Self, String> {
        let number = |name: &str| -> Result<Option<u16>, String> {
            fields
                .get(name)
                .map(|raw| {
                    raw.parse::<u16>()
                        .ok()
                        .filter(|n| (1..=MAX_PARTITIONS).contains(n))
                        .ok_or_else(|| format!("partitions field {name} is {raw:?}"))
                })
                .transpose()
        };
        let count = number("count")?;
        let change = match (fields.get("change"), number("to")?) {
            (Some(id), Some(to)) => Some(Change { id: id.clone(), to }),
            (None, None) => None,
            _ => return Err("partitions fields change and to go together".into()),
        };
        Ok(State { count, change })
    }

    /// Whether a marker of change `id` belongs to the change in progress
    /// (otherwise it is left over from a finished or abandoned one).
    pub fn is_current(&self, id: &str) -> bool {
        self.change.as_ref().is_some_and(|c| c.id == id)
    }
}

/// The most partitions a deployment may have (`--partitions`).
pub const MAX_PARTITIONS: u16 = 256;

/// The old partitions that get their marker before the switch of the routing
/// from `from` to `to` partitions, and those that get it after.
///
/// A marker must have, in its queue, every event routed by the old count
/// before it and every event of a moved account routed by the new count after
/// it. The consistent hash is a jump hash over the partitions in order, so
/// accounts move only into the added partitions (more partitions) or only out
/// of the removed ones (fewer):
/// - more: the old partitions receive no moved account, so their markers go
///   in after the switch (all they got before it is old); the added ones are
///   not consumed before the release;
/// - fewer: the kept partitions receive the moved accounts, so their markers go
///   in before the switch (what follows, from either count, waits for the
///   release; a kept account's events stay in order in its queue); the removed
///   ones get nothing after the switch, so their markers go in after it.
pub fn markers(from: u16, to: u16) -> (Range<u16>, Range<u16>) {
    if to >= from {
        (0..0, 0..from)
    } else {
        (0..to, to..from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_state_reads_its_count_and_change() {
        assert_eq!(State::from_fields(&fields(&[])), Ok(State::default()));
        let state =
            State::from_fields(&fields(&[("count", "4"), ("change", "c1"), ("to", "9")])).unwrap();
        assert_eq!(state.count, Some(4));
        assert!(state.is_current("c1"));
        assert!(!state.is_current("c0"));
        assert!(!State::default().is_current("c1"));
    }

    #[test]
    fn markers_precede_the_switch_only_where_moved_accounts_arrive() {
        assert_eq!(markers(4, 7), (0..0, 0..4));
        assert_eq!(markers(7, 3), (0..3, 3..7));
        // Every old partition gets exactly one marker.
        for (from, to) in [(1, 2), (64, 65), (64, 16), (2, 1)] {
            let (before, after) = markers(from, to);
            assert_eq!(before.len() + after.len(), usize::from(from));
            assert_eq!(before.end, after.start);
        }
    }

    #[test]
    fn a_broken_state_is_an_error() {
        for broken in [
            fields(&[("count", "0")]),
            fields(&[("count", "x")]),
            fields(&[("count", "257")]),
            fields(&[("count", "4"), ("change", "c1")]),
            fields(&[("count", "4"), ("to", "8")]),
        ] {
            assert!(State::from_fields(&broken).is_err(), "{broken:?}");
        }
    }
}
