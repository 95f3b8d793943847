//! `switchboard teardown`: removes everything of one prefix: its queues
//! (`P.inbound.{n}`, `P.dead`, every `P.user.*`), its exchanges (`P.inbound`,
//! `P.notify`, `P.crm`, `P.outbound`) and every Redis key `P:*`.
//!
//! The broker's management API may not be there, so the queues are found from
//! what the names are made of: the partitions by probing every number a worker
//! may use (0..256), the users' queues from every account's users in Redis
//! (a removed user is kept there, so his queue is found too). Queues that CRMs
//! and gateways bound to `P.crm` and `P.outbound` are theirs and stay; they
//! only lose their bindings. It refuses while workers still consume (they
//! would declare it all again), and the default prefix without `yes`.

use super::RedisConn;
use lapin::Connection;
use lapin::options::QueueDeleteOptions;

use super::{OpsError, close_channel, unescape_key_part, within};
use crate::ids::Id;
use crate::names::Names;

use crate::partitioning::MAX_PARTITIONS;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Needed to tear down the default prefix `switchboard`.
    pub yes: bool,
    /// Tear down even while workers consume.
    pub force: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Deleted queues with the messages they held.
    pub queues: Vec<(String, u32)>,
    pub exchanges: Vec<String>,
    /// Redis keys removed.
    pub keys: usize,
}

pub async fn teardown(
    conn: &Connection,
    redis: &mut RedisConn,
    names: &Names,
    options: Options,
) -> Result<Report, OpsError> {
    if names.prefix() == "switchboard" && !options.yes {
        return Err(OpsError::Refused(
            "refusing to tear down the default prefix `switchboard` without --yes".into(),
        ));
    }
    let mut candidates: Vec<String> = (0..MAX_PARTITIONS)
        .map(|n| names.inbound_partition(n))
        .collect();
    candidates.push(names.dead());
    candidates.extend(user_queues(redis, names).await?);

    let mut found = Vec::new();
    let mut consumers = 0;
    for queue in candidates {
        if let Some((messages, consumer_count)) =
            super::probe::queue(conn, &queue, &format!("queue.declare {queue}")).await?
        {
            consumers += consumer_count;
            found.push((queue, messages));
        }
    }
    if consumers > 0 && !options.force {
        return Err(OpsError::Refused(format!(
            "{consumers} consumers still read the queues of prefix {:?} (running workers or clients): stop them first, or pass --force",
            names.prefix()
        )));
    }

    let mut report = Report::default();
    let channel = within("opening a channel", conn.create_channel()).await?;
    let result = delete(&channel, conn, names, found, &mut report).await;
    close_channel(&channel).await;
    result?;
    report.keys = unlink_prefix(redis, names.prefix()).await?;
    Ok(report)
}

async fn delete(
    channel: &lapin::Channel,
    conn: &Connection,
    names: &Names,
    queues: Vec<(String, u32)>,
    report: &mut Report,
) -> Result<(), OpsError> {
    for (queue, _) in queues {
        let messages = within(
            &format!("queue.delete {queue}"),
            channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()),
        )
        .await?;
        report.queues.push((queue, messages));
    }
    for exchange in names.exchanges() {
        if super::probe::exchange(conn, &exchange, &format!("exchange.declare {exchange}")).await? {
            within(
                &format!("exchange.delete {exchange}"),
                channel.exchange_delete(exchange.as_str().into(), Default::default()),
            )
            .await?;
            report.exchanges.push(exchange);
        }
    }
    Ok(())
}

/// The queue of every user of every account of the prefix.
async fn user_queues(redis: &mut RedisConn, names: &Names) -> Result<Vec<String>, OpsError> {
    let mut queues = Vec::new();
    let pattern = format!("{}:{{*}}:users", names.prefix());
    for key in redis.scan(&pattern).await?.all(redis).await? {
        let escaped = key
            .strip_prefix(&format!("{}:{{", names.prefix()))
            .and_then(|rest| rest.strip_suffix("}:users"));
        let Some(account) = escaped
            .and_then(unescape_key_part)
            .and_then(|a| Id::parse(a).ok())
        else {
            continue;
        };
        let users: Vec<String> =
            within("HKEYS", redis::cmd("HKEYS").arg(&key).query_async(redis)).await?;
        for user in users.into_iter().filter_map(|u| Id::parse(u).ok()) {
            queues.push(names.user_queue(&account, &user));
        }
    }
    Ok(queues)
}

/// Removes every key `{prefix}:*`, a SCAN batch at a time (never KEYS), on
/// every master of a cluster.
async fn unlink_prefix(redis: &mut RedisConn, prefix: &str) -> Result<usize, OpsError> {
    let mut scan = redis.scan(&format!("{prefix}:*")).await?;
    let mut removed = 0;
    while let Some(batch) = scan.next(redis).await? {
        redis.unlink(&batch).await?;
        removed += batch.len();
    }
    Ok(removed)
}
