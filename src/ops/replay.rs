//! `switchboard dead replay`: puts dead letters back on `P.inbound`, each as it
//! came, and takes each off `P.dead` only once its replay is safe.
//!
//! For every dead letter that matches: publish the original body with its
//! original routing key and properties (less the headers the worker and the
//! broker added), `mandatory`, on a confirm channel (an input to `P.inbound`;
//! an undelivered output, whose destination kept refusing, to the exchange
//! it was for: `P.notify`, `P.crm` or `P.outbound`); wait for the broker's
//! confirm; only then ack the dead letter. A refusal (nack, unroutable, missing
//! exchange, lost connection, timeout) stops the replay: the dead letter being
//! replayed and every one not replayed yet stay unacked and go back to `P.dead`
//! when the channel closes. So a dead letter is never lost; at worst, when the
//! connection dies between a confirm and its ack, it is replayed a second time,
//! which the worker ignores (same `eventId`).

use lapin::options::{BasicAckOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};

use super::dead::{DeadLetter, Filter, Reader};
use super::publish::{Unsent, publish_mandatory, taken};
use super::{OpsError, close_channel, within};
use crate::ids::Id;
use crate::names::{Names, inbound_key};

/// Headers that are not the publisher's: the worker's reason, original key and
/// time of death, and the broker's delivery counters of a quorum queue.
const ADDED_HEADERS: [&str; 6] = [
    super::dead::REASON,
    super::dead::ROUTING_KEY,
    super::dead::EXCHANGE,
    super::dead::DEAD_AT,
    "x-delivery-count",
    "x-acquired-count",
];

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub filter: Filter,
    /// At most this many.
    pub limit: Option<usize>,
    /// Route by the body's `accountId` instead of the original key (for events
    /// refused because a publisher used another key).
    pub rekey: bool,
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Report {
    /// Republished, confirmed, and removed from `P.dead`.
    pub replayed: usize,
    /// Left in `P.dead`: did not match, or no routing key could be found.
    pub kept: usize,
    /// Why the replay stopped early; what was not replayed is still in `P.dead`.
    pub stopped: Option<String>,
}

pub async fn replay(
    conn: &Connection,
    names: &Names,
    options: &Options,
) -> Result<Report, OpsError> {
    let take = within("opening a channel", conn.create_channel()).await?;
    let publish = match open_confirm(conn).await {
        Ok(channel) => channel,
        Err(e) => {
            close_channel(&take).await;
            return Err(e);
        }
    };
    let result = run(&take, &publish, names, options).await;
    close_channel(&publish).await;
    // Returns every dead letter that was read but not acked.
    close_channel(&take).await;
    result
}

async fn open_confirm(conn: &Connection) -> Result<Channel, OpsError> {
    let channel = within("opening a channel", conn.create_channel()).await?;
    within(
        "confirm.select",
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    Ok(channel)
}

async fn run(
    take: &Channel,
    publish: &Channel,
    names: &Names,
    options: &Options,
) -> Result<Report, OpsError> {
    let queue = names.dead();
    let mut report = Report::default();
    let mut reader = Reader::new(names);
    let limit = options.limit.unwrap_or(usize::MAX);
    // Only what was there at the start: a replay that dies again must not be met twice.
    while report.replayed < limit {
        let Some(letter) = reader.next(take).await? else {
            break;
        };
        let position = letter.position;
        if !options.filter.matches(&letter) {
            report.kept += 1;
            continue;
        }
        let exchange = match exchange(&letter, names) {
            Ok(exchange) => exchange,
            Err(why) => {
                tracing::warn!(position, why, "Dead letter kept.");
                report.kept += 1;
                continue;
            }
        };
        let key = if exchange == names.inbound() {
            routing_key(&letter, options.rekey)
        } else {
            letter.routing_key()
        };
        let Some(key) = key else {
            tracing::warn!(
                position,
                "Dead letter has no routing key and no accountId; kept."
            );
            report.kept += 1;
            continue;
        };
        if let Err(why) = republish(publish, &exchange, &key, &letter).await {
            report.stopped = Some(format!("dead letter {position}: {why}"));
            return Ok(report);
        }
        // Confirmed: now, and only now, it may leave P.dead.
        if let Err(e) = within(
            "basic.ack",
            take.basic_ack(letter.delivery_tag, BasicAckOptions::default()),
        )
        .await
        {
            report.stopped = Some(format!(
                "dead letter {position} was replayed but could not be removed from {queue} ({e}); it will be replayed again next time, which has no further effect"
            ));
            return Ok(report);
        }
        report.replayed += 1;
    }
    Ok(report)
}

/// The exchange to replay to: `P.inbound` for an input; for an undelivered
/// output the exchange it was for, which must be one of this prefix's output
/// exchanges.
fn exchange(letter: &DeadLetter, names: &Names) -> Result<String, &'static str> {
    let Some(exchange) = letter.exchange() else {
        return Ok(names.inbound());
    };
    if [names.notify(), names.crm(), names.outbound()].contains(&exchange) {
        Ok(exchange)
    } else {
        Err("an undelivered output for an exchange that is not this prefix's")
    }
}

/// The key to replay with: the original, or the account's with `rekey`.
fn routing_key(letter: &DeadLetter, rekey: bool) -> Option<String> {
    let by_account = || {
        let account = Id::parse(letter.account()?).ok()?;
        Some(inbound_key(&account))
    };
    if rekey {
        return by_account().or_else(|| letter.routing_key());
    }
    letter.routing_key().or_else(by_account)
}

/// The dead letter's properties less the added headers: what the publisher sent.
pub fn original_properties(letter: &DeadLetter) -> BasicProperties {
    let p = &letter.properties;
    let mut out = BasicProperties::default();
    // Each property the publisher set, copied as is: `getter => setter`.
    macro_rules! copy_set {
        ($($get:ident => $set:ident),+ $(,)?) => {$(
            if let Some(v) = p.$get() {
                out = out.$set(v.clone());
            }
        )+};
    }
    copy_set!(
        content_type => with_content_type,
        content_encoding => with_content_encoding,
        delivery_mode => with_delivery_mode,
        priority => with_priority,
        correlation_id => with_correlation_id,
        reply_to => with_reply_to,
        expiration => with_expiration,
        message_id => with_message_id,
        timestamp => with_timestamp,
        kind => with_type,
        user_id => with_user_id,
        app_id => with_app_id,
        cluster_id => with_cluster_id,
    );
    if let Some(headers) = p.headers() {
        let mut kept = FieldTable::default();
        for (name, value) in headers.inner() {
            if !ADDED_HEADERS.contains(&name.as_str()) {
                kept.insert(name.clone(), value.clone());
            }
        }
        if !kept.inner().is_empty() {
            out = out.with_headers(kept);
        }
    }
    out
}

/// Publishes one dead letter to `exchange` and waits for the broker's confirm.
async fn republish(
    channel: &Channel,
    exchange: &str,
    key: &str,
    letter: &DeadLetter,
) -> Result<(), OpsError> {
    let properties = original_properties(letter);
    let confirm = publish_mandatory(channel, exchange, key, &letter.body, properties).await?;
    match taken(within("the publisher confirm", confirm).await?) {
        Ok(()) => Ok(()),
        Err(Unsent::Unroutable) => Err(OpsError::Refused(format!(
            "{exchange} routed it nowhere (no queue bound): is a worker running with this --prefix?"
        ))),
        Err(Unsent::Refused) => Err(OpsError::Refused(format!(
            "the broker refused it ({exchange})"
        ))),
    }
}
