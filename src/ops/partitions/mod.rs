//! `switchboard partitions --to M`: changes the partition count of a live
//! deployment without losing an event or breaking an account's order.
//!
//! Changing the count moves accounts between partitions, so events of one
//! account could sit in an old and a new partition at once. The change
//! therefore switches the routing at one instant and fences what came before
//! ([`crate::partitioning`] says what the workers do):
//!
//! 1. **Record** the change in `P:partitions` (its id and `to`); every step
//!    after it is recorded there too (`step`), so running the command again
//!    after a failure goes on where it stopped.
//! 2. **Switch**: declare the partitions `0..M`, bind them in order to a new
//!    consistent-hash exchange `P.inbound.next`, and bind `P.inbound` to it.
//!    From that instant every event is routed by the new count; `P.inbound`
//!    routes through a binding or, having none, through its alternate
//!    exchange, never both, so no event is doubled or dropped.
//! 3. **Fence**: put a marker at the end of each old partition. A worker lets
//!    every earlier event of the partition finish, records the partition as
//!    fenced and holds what follows. Wait until every old partition is fenced:
//!    then every event routed before the switch has been handled, and none
//!    routed after it. Which markers go in before the switch and which after
//!    is [`markers`]: a partition that may receive moved accounts gets its
//!    marker before, so that none of their events can be ahead of it.
//! 4. **Rebuild** `P.inbound.hash` with the partitions `0..M` in order (no
//!    event passes it while `P.inbound` is bound to `P.inbound.next`), then
//!    **switch back**: unbind `P.inbound` from `P.inbound.next`, so events
//!    take the alternate exchange again, over the same buckets in the same
//!    order, so no account moves. Delete `P.inbound.next`.
//! 5. **Release**: record the count `M` and end the change. The workers drop
//!    the markers, return what they held, and consume the partitions `0..M`.
//! 6. **Remove** (fewer partitions): once no worker consumes a partition
//!    `>= M`, take what is left in it (markers; anything else goes back to
//!    `P.inbound`) and delete it.
//!
//! Events keep flowing into the partitions throughout; the workers pause
//! between the switch and the release (about as long as the old partitions
//! take to drain, plus a few ticks), and then catch up.

mod remove;
mod ring;

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::time::Duration;

use crate::ops::RedisConn;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use super::{OpsError, close_channel, within};
use crate::names::Names;
use crate::partitioning::{FENCE_HEADER, State, fenced_key, markers, state_key};

/// How often the fenced set and the removed partitions' consumers are polled.
const POLL: Duration = Duration::from_millis(500);

/// Where a change has got to, as recorded in `P:partitions` (`step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Recorded,
    Switched,
    Fenced,
    Rebuilt,
}

impl Step {
    fn parse(raw: Option<&String>) -> Result<Self, OpsError> {
        match raw.map(String::as_str) {
            None | Some("recorded") => Ok(Step::Recorded),
            Some("switched") => Ok(Step::Switched),
            Some("fenced") => Ok(Step::Fenced),
            Some("rebuilt") => Ok(Step::Rebuilt),
            Some(other) => Err(OpsError::Corrupt(format!("partitions step {other:?}"))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Step::Recorded => "recorded",
            Step::Switched => "switched",
            Step::Fenced => "fenced",
            Step::Rebuilt => "rebuilt",
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub from: u16,
    pub to: u16,
    /// Whether it went on with a change an earlier run had begun.
    pub resumed: bool,
    /// Partitions deleted (fewer partitions).
    pub removed: Vec<String>,
    /// Events found in a removed partition and published again to `P.inbound`.
    pub republished: usize,
}

/// Changes the count to `to`, waiting up to `wait` for the fences; `progress`
/// gets one line per step. Nothing to do when the count is already `to`.
pub async fn change(
    conn: &Connection,
    redis: &mut RedisConn,
    names: &Names,
    to: u16,
    wait: Duration,
    progress: &mut dyn FnMut(String),
) -> Result<Report, OpsError> {
    let key = state_key(names.prefix());
    let (state, fields) = read_state(redis, &key).await?;
    let Some(from) = state.count else {
        return Err(OpsError::NotFound(format!(
            "no partition count recorded in {key}: start a worker of this version first"
        )));
    };
    let (id, resumed) = match &state.change {
        Some(change) if change.to == to => (change.id.clone(), true),
        Some(change) => {
            return Err(OpsError::Refused(format!(
                "a change to {} partitions is in progress (id {}); run this command with --to {} to finish it first",
                change.to, change.id, change.to
            )));
        }
        None if from == to => {
            return Ok(Report {
                from,
                to,
                resumed: false,
                removed: Vec::new(),
                republished: 0,
            });
        }
        None => (begin(redis, &key, to).await?, false),
    };
    let mut step = Step::parse(fields.get("step"))?;
    progress(format!(
        "{} the change {id} from {from} to {to} partitions at step {}.",
        if resumed { "Resuming" } else { "Began" },
        step.name()
    ));
    let channel = within("channel.open", conn.create_channel()).await?;
    let result = async {
        within(
            "confirm.select",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        let (before, after) = markers(from, to);
        if step < Step::Switched {
            place_markers(&channel, names, &id, before).await?;
            ring::switch(&channel, names, to).await?;
            step = record_step(redis, &key, Step::Switched).await?;
            progress(format!(
                "Switched: new events are routed over {to} partitions."
            ));
        }
        if step < Step::Fenced {
            place_markers(&channel, names, &id, after).await?;
            progress(format!(
                "Markers placed in {from} old partitions; waiting for the workers to reach them."
            ));
            await_fences(redis, names, &id, from, wait, progress).await?;
            step = record_step(redis, &key, Step::Fenced).await?;
        }
        if step < Step::Rebuilt {
            ring::rebuild(conn, &channel, names, from.max(to), to).await?;
            step = record_step(redis, &key, Step::Rebuilt).await?;
            progress(format!(
                "Rebuilt {} over {to} partitions.",
                names.inbound_hash()
            ));
        }
        ring::switch_back(&channel, names).await?;
        release(redis, names, &key, &id, to).await?;
        progress(format!(
            "Released: the workers now consume {to} partitions."
        ));
        let (removed, republished) = remove::remove(conn, &channel, names, to, from, wait).await?;
        Ok(Report {
            from,
            to,
            resumed,
            removed,
            republished,
        })
    }
    .await;
    close_channel(&channel).await;
    result
}

async fn read_state(
    redis: &mut RedisConn,
    key: &str,
) -> Result<(State, HashMap<String, String>), OpsError> {
    let fields: HashMap<String, String> =
        within("HGETALL", redis::cmd("HGETALL").arg(key).query_async(redis)).await?;
    let state = State::from_fields(&fields).map_err(OpsError::Corrupt)?;
    Ok((state, fields))
}

/// Records a new change, unless another run recorded one first.
async fn begin(redis: &mut RedisConn, key: &str, to: u16) -> Result<String, OpsError> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let fresh: bool = within(
        "HSETNX",
        redis::cmd("HSETNX")
            .arg(key)
            .arg("change")
            .arg(&id)
            .query_async(redis),
    )
    .await?;
    if !fresh {
        return Err(OpsError::Refused(
            "another change of the partition count began just now; run this command again to see it".into(),
        ));
    }
    within(
        "HSET",
        redis::cmd("HSET")
            .arg(key)
            .arg("to")
            .arg(to)
            .arg("step")
            .arg(Step::Recorded.name())
            .query_async::<()>(redis),
    )
    .await?;
    Ok(id)
}

async fn record_step(redis: &mut RedisConn, key: &str, step: Step) -> Result<Step, OpsError> {
    within(
        "HSET",
        redis::cmd("HSET")
            .arg(key)
            .arg("step")
            .arg(step.name())
            .query_async::<()>(redis),
    )
    .await?;
    Ok(step)
}

/// A marker at the end of each partition of `partitions`, confirmed.
async fn place_markers(
    channel: &Channel,
    names: &Names,
    id: &str,
    partitions: Range<u16>,
) -> Result<(), OpsError> {
    let mut headers = FieldTable::default();
    headers.insert(FENCE_HEADER.into(), AMQPValue::LongString(id.into()));
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers);
    for n in partitions {
        let partition = names.inbound_partition(n);
        let confirm = within(
            "basic.publish",
            channel.basic_publish(
                "".into(),
                partition.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &[],
                properties.clone(),
            ),
        )
        .await?;
        match within("the confirm of a marker", confirm).await? {
            Confirmation::Ack(None) => {}
            other => {
                return Err(OpsError::Refused(format!(
                    "the broker did not take the marker for {partition}: {other:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Waits until the workers have fenced every old partition `0..from`.
async fn await_fences(
    redis: &mut RedisConn,
    names: &Names,
    id: &str,
    from: u16,
    wait: Duration,
    progress: &mut dyn FnMut(String),
) -> Result<(), OpsError> {
    let key = fenced_key(names.prefix(), id);
    let deadline = tokio::time::Instant::now() + wait;
    let mut reported = usize::MAX;
    loop {
        let fenced: BTreeSet<u16> = within(
            "SMEMBERS",
            redis::cmd("SMEMBERS").arg(&key).query_async(redis),
        )
        .await?;
        let missing: Vec<u16> = (0..from).filter(|n| !fenced.contains(n)).collect();
        if missing.is_empty() {
            progress(format!("All {from} old partitions fenced."));
            return Ok(());
        }
        if missing.len() != reported {
            reported = missing.len();
            progress(format!(
                "{} of {from} old partitions fenced.",
                from as usize - reported
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(OpsError::Refused(format!(
                "{} of {from} old partitions not fenced after {} s (first: {}): is a worker running? \
                 Run this command again to go on waiting; events meanwhile wait in their partitions",
                missing.len(),
                wait.as_secs(),
                names.inbound_partition(missing[0])
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Step 5: the new count in effect and the change over, in one transaction.
async fn release(
    redis: &mut RedisConn,
    names: &Names,
    key: &str,
    id: &str,
    to: u16,
) -> Result<(), OpsError> {
    within(
        "MULTI",
        redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(key)
            .arg("count")
            .arg(to)
            .ignore()
            .cmd("HDEL")
            .arg(key)
            .arg("change")
            .arg("to")
            .arg("step")
            .ignore()
            .query_async::<()>(redis),
    )
    .await?;
    let fenced = fenced_key(names.prefix(), id);
    within(
        "DEL",
        redis::cmd("DEL").arg(&fenced).query_async::<()>(redis),
    )
    .await
}
