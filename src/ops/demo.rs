//! `switchboard demo`: a live worker plays a short scripted day against the
//! local services and the demo prints, per user, what each one saw; then it
//! removes everything it created.
//!
//! The worker is the real one ([`crate::run`], in this process) on a fresh
//! prefix; the demo publishes as a CRM and a gateway would and reads the
//! users' queues, the CRM's and the gateway's messages, a suitcase answer and
//! the dead letters, as those clients would.

use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use tokio_util::sync::CancellationToken;

use super::demo_script::{ACCOUNT, CAST, day, suitcase};
use super::demo_text::{crm_line, gateway_line, notification_line, suitcase_line};
use super::teardown::{Options, teardown};
use super::{OpsError, Target, WAIT, amqp, close, close_channel, redis, within};
use crate::config::Config;
use crate::ids::Id;
use crate::names::{Names, inbound_key};

/// How long the demo waits for the worker to go quiet after the last event.
const QUIET: Duration = Duration::from_millis(1500);

/// What every party saw.
#[derive(Debug, Default)]
pub struct Report {
    pub prefix: String,
    pub steps: Vec<&'static str>,
    /// Per user (in the cast's order): who he is and one line per notification.
    pub users: Vec<(String, &'static str, Vec<String>)>,
    pub crm: Vec<String>,
    pub gateway: Vec<String>,
    pub suitcase: Option<String>,
    pub dead: Vec<String>,
}

/// Plays the day with a worker of this process on `config`'s services and prefix,
/// then removes the prefix (queues, exchanges, keys), whatever happened.
pub async fn demo(config: Config) -> Result<Report, OpsError> {
    let target = Target::from(&config);
    let names = target.names();
    let conn = amqp(&target).await?;
    let mut store = redis(&target).await?;
    let token = CancellationToken::new();
    let worker = tokio::spawn(crate::run(config, token.clone()));
    let played = play(&target, &conn, &names).await;
    token.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(30), worker).await;
    let options = Options {
        yes: true,
        force: true,
    };
    // A hard error of the broker (a channel's can close the whole connection)
    // must not leave the prefix behind: the clean-up then connects afresh.
    let cleaned = if conn.status().connected() {
        teardown(&conn, &mut store, &names, options).await
    } else {
        match amqp(&target).await {
            Ok(fresh) => {
                let cleaned = teardown(&fresh, &mut store, &names, options).await;
                close(&fresh).await;
                cleaned
            }
            Err(e) => Err(e),
        }
    };
    close(&conn).await;
    let mut report = played?;
    match stopped {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(OpsError::Refused(format!("the worker failed: {e}"))),
        _ => return Err(OpsError::Timeout("the demo's worker to stop".into())),
    }
    cleaned?;
    report.prefix = target.prefix;
    Ok(report)
}

async fn play(target: &Target, conn: &Connection, names: &Names) -> Result<Report, OpsError> {
    // The worker declared its topology when `P.dead`, declared last, exists.
    wait_for_queue(
        conn,
        &names.dead(),
        "the demo's worker to declare its topology",
    )
    .await?;
    let channel = within("opening a channel", conn.create_channel()).await?;
    let result = play_on(target, conn, &channel, names).await;
    close_channel(&channel).await;
    result
}

/// Waits until `queue` exists (probed on throwaway channels: a failed passive
/// declare closes its channel).
async fn wait_for_queue(conn: &Connection, queue: &str, what: &str) -> Result<(), OpsError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let probe = within("opening a channel", conn.create_channel()).await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let found = tokio::time::timeout(
            WAIT,
            probe.queue_declare(queue.into(), passive, FieldTable::default()),
        )
        .await;
        close_channel(&probe).await;
        if matches!(found, Ok(Ok(_))) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(OpsError::Timeout(what.into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `queue` (a quorum queue that exists) can be read. Right after
/// its declare the broker may not have started the queue's process yet, and a
/// `basic.get` then fails with INTERNAL_ERROR (`noproc`), which closes the whole
/// connection: the demo's own exclusive queues would go with it. So the probe
/// runs on a connection of its own; a message it got goes back to the queue,
/// unacked, when that connection closes.
async fn wait_until_readable(target: &Target, queue: &str, what: &str) -> Result<(), OpsError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let probe = amqp(target).await?;
        let read = async {
            let channel = probe.create_channel().await?;
            channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                .await
        };
        let readable = matches!(tokio::time::timeout(WAIT, read).await, Ok(Ok(_)));
        close(&probe).await;
        if readable {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(OpsError::Timeout(what.into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A server-named queue of the demo's own, gone when the demo disconnects.
async fn own_queue(channel: &Channel, bind: Option<(&str, &str)>) -> Result<String, OpsError> {
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let queue = within(
        "declaring a queue",
        channel.queue_declare("".into(), options, FieldTable::default()),
    )
    .await?
    .name()
    .to_string();
    if let Some((exchange, key)) = bind {
        within(
            "binding a queue",
            channel.queue_bind(
                queue.as_str().into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
    }
    Ok(queue)
}

async fn publish(
    channel: &Channel,
    names: &Names,
    body: &[u8],
    props: BasicProperties,
) -> Result<(), OpsError> {
    let account = Id::parse(ACCOUNT).map_err(|e| OpsError::Input(e.to_string()))?;
    let props = props
        .with_content_type("application/json".into())
        .with_delivery_mode(2);
    let confirm = within(
        "publishing",
        channel.basic_publish(
            names.inbound().into(),
            inbound_key(&account).as_str().into(),
            BasicPublishOptions::default(),
            body,
            props,
        ),
    )
    .await?;
    within("a publisher confirm", confirm).await?;
    Ok(())
}

async fn play_on(
    target: &Target,
    conn: &Connection,
    channel: &Channel,
    names: &Names,
) -> Result<Report, OpsError> {
    within(
        "confirm.select",
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    let crm = own_queue(channel, Some((&names.crm(), "#"))).await?;
    let gateway = own_queue(channel, Some((&names.outbound(), "#"))).await?;
    let replies = own_queue(channel, None).await?;

    let account = Id::parse(ACCOUNT).map_err(|e| OpsError::Input(e.to_string()))?;
    let mut seen = Seen {
        users: CAST
            .iter()
            .map(|(user, _)| {
                let queue = names.user_queue(&account, &Id::parse(*user).expect("a valid id"));
                (*user, queue, Vec::new())
            })
            .collect(),
        crm,
        gateway,
        replies,
        report: Report::default(),
    };
    let mut queues_exist = false;
    for step in day() {
        publish(
            channel,
            names,
            step.event.to_string().as_bytes(),
            BasicProperties::default(),
        )
        .await?;
        seen.report.steps.push(step.says);
        if step.then_wait {
            if !queues_exist {
                // The users' queues exist once the worker applied `users.upserted`.
                for (_, queue, _) in &seen.users {
                    wait_for_queue(conn, queue, "the users' queues").await?;
                    wait_until_readable(target, queue, "the users' queues").await?;
                }
                queues_exist = true;
            }
            seen.quiet(channel, names, |_| true).await?;
        }
    }
    let props = BasicProperties::default()
        .with_reply_to(seen.replies.as_str().into())
        .with_correlation_id("demo-suitcase".into());
    publish(channel, names, suitcase().to_string().as_bytes(), props).await?;
    seen.report
        .steps
        .push("anna opens Olga's suitcase (her deals with Olga)");
    publish(
        channel,
        names,
        b"{ this is not JSON",
        BasicProperties::default(),
    )
    .await?;
    seen.report
        .steps
        .push("A broken gateway sends something that is not JSON");
    seen.quiet(channel, names, |r| {
        r.suitcase.is_some() && !r.dead.is_empty()
    })
    .await?;

    let mut report = seen.report;
    report.users = CAST
        .iter()
        .zip(seen.users)
        .map(|((user, who), (_, _, lines))| ((*user).to_owned(), *who, lines))
        .collect();
    Ok(report)
}

/// What the demo has read so far, and where from.
struct Seen {
    users: Vec<(&'static str, String, Vec<String>)>,
    crm: String,
    gateway: String,
    replies: String,
    report: Report,
}

impl Seen {
    /// Reads until `done` holds and nothing new came for [`QUIET`] (30 s at most).
    async fn quiet(
        &mut self,
        channel: &Channel,
        names: &Names,
        done: impl Fn(&Report) -> bool,
    ) -> Result<(), OpsError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut quiet_since = Instant::now();
        loop {
            if self.collect(channel, names).await? {
                quiet_since = Instant::now();
            }
            if (done(&self.report) && quiet_since.elapsed() >= QUIET) || Instant::now() > deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Takes whatever arrived; true if anything did.
    async fn collect(&mut self, channel: &Channel, names: &Names) -> Result<bool, OpsError> {
        let mut any = false;
        for (_, queue, lines) in &mut self.users {
            for body in drain(channel, queue).await? {
                lines.push(notification_line(&body));
                any = true;
            }
        }
        for body in drain(channel, &self.crm).await? {
            self.report.crm.push(crm_line(&body));
            any = true;
        }
        for body in drain(channel, &self.gateway).await? {
            self.report.gateway.push(gateway_line(&body));
            any = true;
        }
        if let Some(body) = drain(channel, &self.replies).await?.pop() {
            self.report.suitcase = Some(suitcase_line(&body));
            any = true;
        }
        for (body, reason) in drain_dead(channel, names).await? {
            let body = String::from_utf8_lossy(&body);
            self.report.dead.push(format!("{reason}  (body: {body})"));
            any = true;
        }
        Ok(any)
    }
}

/// Takes every message now in `queue`.
async fn drain(channel: &Channel, queue: &str) -> Result<Vec<Vec<u8>>, OpsError> {
    let mut out = Vec::new();
    while let Some(message) = within(
        "reading a queue",
        channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
    )
    .await?
    {
        out.push(message.delivery.data.clone());
    }
    Ok(out)
}

async fn drain_dead(channel: &Channel, names: &Names) -> Result<Vec<(Vec<u8>, String)>, OpsError> {
    let mut out = Vec::new();
    while let Some(message) = within(
        "reading P.dead",
        channel.basic_get(
            names.dead().as_str().into(),
            BasicGetOptions { no_ack: true },
        ),
    )
    .await?
    {
        let reason = message
            .delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-switchboard-error").cloned())
            .map(|v| match v {
                lapin::types::AMQPValue::LongString(s) => s.to_string(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        out.push((message.delivery.data.clone(), reason));
    }
    Ok(out)
}
