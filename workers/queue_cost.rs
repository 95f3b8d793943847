//! `switchboard-queue-cost`: declares or deletes user queues the way the
//! worker does, for `scripts/user-queue-cost`, which measures what they cost a
//! broker node (file handles, memory) around these two steps.
//!
//! `declare` makes the topology of `--prefix` and `--count` user queues of
//! account `cost` (users `u0`..), with the worker's own [`UserQueues`]
//! (its channel pool, [`DECLARE_CHANNELS`] declares at a time), and prints
//! the seconds it took; with `--messages N` it then publishes N small
//! notifications to each queue through `P.notify`, confirmed (queues that
//! hold messages, as users' queues do until their clients read them).
//! `delete` removes the same queues and the topology.
//! Every request is under a timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use switchboard::UserQueueType;
use switchboard::amqp::{DECLARE_CHANNELS, UserQueues};
use switchboard::ids::Id;
use switchboard::names::Names;

/// How long one request may take.
const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Step {
    Declare,
    Delete,
}

#[derive(Parser)]
struct Args {
    step: Step,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5691/%2f")]
    amqp_url: String,
    #[arg(long)]
    prefix: String,
    #[arg(long)]
    count: usize,
    #[arg(long, value_enum, default_value_t = UserQueueType::Quorum)]
    user_queue_type: UserQueueType,
    #[arg(long, default_value_t = 0)]
    messages: usize,
}

/// Publishes `per_queue` small persistent messages to each user's queue
/// through `P.notify`, 500 confirms awaited at a time.
async fn fill(
    conn: &Connection,
    names: &Names,
    account: &Id,
    users: &[Id],
    per_queue: usize,
) -> Result<()> {
    let channel = within("channel.open", conn.create_channel()).await?;
    within(
        "confirm.select",
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    let body = br#"{"type":"chat.message","text":"a notification of about this size"}"#;
    let keys: Vec<String> = (0..per_queue)
        .flat_map(|_| {
            users
                .iter()
                .map(|u| switchboard::names::user_key(account, u))
        })
        .collect();
    for batch in keys.chunks(500) {
        let mut confirms = Vec::with_capacity(batch.len());
        for key in batch {
            let props = BasicProperties::default().with_delivery_mode(2);
            let publish = channel.basic_publish(
                names.notify().as_str().into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                body,
                props,
            );
            confirms.push(within("basic.publish", publish).await?);
        }
        for confirm in confirms {
            within("confirm", confirm).await?;
        }
    }
    Ok(())
}

async fn within<T, E: Into<anyhow::Error>>(
    what: &str,
    fut: impl Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    tokio::time::timeout(WAIT, fut)
        .await
        .with_context(|| format!("{what}: no answer within {WAIT:?}"))?
        .map_err(Into::into)
        .with_context(|| what.to_owned())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let names = Names::new(&args.prefix);
    let account = Id::parse("cost").expect("a valid id");
    let users: Vec<Id> = (0..args.count)
        .map(|i| Id::parse(format!("u{i}")).expect("a valid id"))
        .collect();
    let props =
        ConnectionProperties::default().with_connection_name("switchboard-queue-cost".into());
    let conn = Arc::new(within("connect", Connection::connect(&args.amqp_url, props)).await?);
    let channel = within("channel.open", conn.create_channel()).await?;
    match args.step {
        Step::Declare => {
            within(
                "declare the topology",
                switchboard::amqp::declare(&channel, &names, 1),
            )
            .await?;
            let queues = UserQueues::new(conn.clone(), names.clone()).of_type(args.user_queue_type);
            let started = Instant::now();
            let limit = WAIT * u32::try_from(args.count / DECLARE_CHANNELS + 1).unwrap_or(u32::MAX);
            tokio::time::timeout(limit, queues.declare_all(&account, &users))
                .await
                .context("declaring the user queues: not done in time")??;
            println!("{:.3}", started.elapsed().as_secs_f64());
            queues.close().await;
            fill(&conn, &names, &account, &users, args.messages).await?;
        }
        Step::Delete => {
            let mut doomed: Vec<String> = users
                .iter()
                .map(|u| names.user_queue(&account, u))
                .collect();
            doomed.push(names.dead());
            doomed.push(names.inbound_partition(0));
            for queue in &doomed {
                let options = QueueDeleteOptions::default();
                within(queue, channel.queue_delete(queue.as_str().into(), options)).await?;
            }
            for exchange in names.exchanges() {
                let options = ExchangeDeleteOptions::default();
                within(
                    &exchange,
                    channel.exchange_delete(exchange.as_str().into(), options),
                )
                .await?;
            }
        }
    }
    let _ = tokio::time::timeout(WAIT, conn.close(200, "done".into())).await;
    Ok(())
}
