//! `--contacts N`: N contacts the CRM already has, each with one deal, written
//! into the accounts before the run, and the Redis memory they take. They go
//! in through [`switchboard::store::bulk`]: the worker's own handlers decide each
//! `contact.upserted` and `deal.upserted`, and the writes go to Redis in
//! pipelines, thousands at a time, without passing through the broker.

use std::time::Instant;

use anyhow::{Result, bail};
use futures_util::StreamExt;
use futures_util::stream::{self, TryStreamExt};
use redis::aio::MultiplexedConnection;
use switchboard::events::{self, Event};
use switchboard::store::AccountKeys;

use crate::account::event;
use crate::limit::within;
use crate::redis_stats::used_memory;
use crate::shape::Shape;

/// Contacts per batch (each two events, two round trips).
const BATCH: u64 = 1000;
/// Batches in flight at once.
const IN_FLIGHT: usize = 4;

/// What loading the contacts cost.
#[derive(Debug)]
pub struct Preloaded {
    pub contacts: u64,
    pub secs: f64,
    /// `used_memory` after minus before, bytes (other clients of this Redis count too).
    pub memory_bytes: i64,
}

/// Writes `n` contacts, contact `c` into account `c % accounts`, responsible
/// manager `c % managers`, each with one open deal in the bench pipeline.
pub async fn contacts(
    rconn: &mut MultiplexedConnection,
    prefix: &str,
    shape: &Shape,
    n: u64,
) -> Result<Preloaded> {
    let start = Instant::now();
    let before = used_memory(rconn).await?;
    let accounts = shape.accounts.len() as u64;
    // Batch `b` holds contacts `b*BATCH..` of one account, so that it runs on the account's keys.
    let batches = (0..accounts).flat_map(|a| {
        let of_account = n / accounts + u64::from(a < n % accounts);
        (0..of_account.div_ceil(BATCH)).map(move |b| (a, b))
    });
    stream::iter(batches)
        .map(|(a, b)| {
            let mut conn = rconn.clone();
            async move {
                let account = &shape.accounts[a as usize];
                let keys = AccountKeys::new(prefix, &account.id);
                let of_account = n / accounts + u64::from(a < n % accounts);
                let mut batch = Vec::with_capacity(2 * BATCH as usize);
                for i in b * BATCH..((b + 1) * BATCH).min(of_account) {
                    let c = i * accounts + a;
                    batch.extend(contact_with_deal(shape, c)?);
                }
                let loaded = within(
                    "Redis bulk load",
                    switchboard::store::bulk::load(&mut conn, &keys, &batch),
                )
                .await?;
                if let Some(why) = loaded.refused.first() {
                    bail!(
                        "{} of {} preload events refused, e.g. {why}",
                        loaded.refused.len(),
                        batch.len()
                    );
                }
                Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    let after = used_memory(rconn).await?;
    Ok(Preloaded {
        contacts: n,
        secs: start.elapsed().as_secs_f64(),
        memory_bytes: after as i64 - before as i64,
    })
}

/// Contact `c` (`bulk-contact-{c}`, chat `bulk-{c}`) and its deal, as a CRM sends them.
fn contact_with_deal(shape: &Shape, c: u64) -> Result<[Event; 2]> {
    let account = &shape.accounts[(c % shape.accounts.len() as u64) as usize];
    let manager = &shape.managers[(c % shape.managers.len() as u64) as usize];
    let contact = format!("bulk-contact-{c}");
    let contact_event = event(
        account,
        "contact.upserted",
        serde_json::json!({ "contactId": contact, "name": format!("Client {c}"),
                "responsibleUserId": manager,
                "contactData": [{ "chatType": "whatsapp", "chatId": format!("bulk-{c}") }] }),
    );
    let deal_event = event(
        account,
        "deal.upserted",
        serde_json::json!({ "dealId": format!("bulk-deal-{c}"), "name": format!("Deal {c}"),
                "contactIds": [contact], "responsibleUserId": manager,
                "pipelineId": "p", "stageId": "s1", "closed": false }),
    );
    let parse = |v: serde_json::Value| {
        events::parse(v.to_string().as_bytes())
            .map_err(|e| anyhow::anyhow!("a preload event does not parse: {e}"))
    };
    Ok([parse(contact_event)?, parse(deal_event)?])
}
