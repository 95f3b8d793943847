//! The bench accounts and their events: the set-up a CRM would send (channel,
//! users, pipeline, settings), the known clients' contacts, and the client
//! messages both phases publish. Set-up waits until Redis shows it applied.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::Channel;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use switchboard::ids::Id;
use switchboard::store::AccountKeys;
use switchboard::store::Key;

use crate::amqp;
use crate::limit::within;
use crate::load::{Outgoing, mark};
use crate::shape::{Account, Shape, Step, Target};

pub const CHANNEL: &str = "wa";
/// Users per `users.upserted`, so that a thousand idle users stay far below the body limit.
const USERS_PER_EVENT: usize = 200;
const OCCURRED_AT: &str = "2026-01-01T00:00:00Z";

/// The event of `target`: a client's message, or for a claim the claimer's
/// reply; `mark` ("{phase}:{seq}:{publish µs}[:{measured at}]") rides in
/// `text` and comes back in the notifications (and the reply to send).
pub fn event_body(target: &Target<'_>, mark: &str) -> Vec<u8> {
    let chat = &target.chat;
    let message_id = uuid::Uuid::new_v4().to_string();
    let body = if target.step == Step::Claim {
        event(
            target.account,
            "message.outbound",
            json!({ "messageId": message_id, "channelId": CHANNEL, "chatType": "whatsapp",
                    "chatId": chat, "userId": target.responsible, "text": mark }),
        )
    } else {
        event(
            target.account,
            "message.inbound",
            json!({ "messageId": message_id, "channelId": CHANNEL, "chatType": "whatsapp",
                    "chatId": chat, "text": mark, "contact": { "name": format!("Client {chat}") } }),
        )
    };
    body.to_string().into_bytes()
}

/// Event `seq` of `phase`, of `target`, marked and ready to publish to `inbound`.
pub fn outgoing(
    inbound: &str,
    shape: &Shape,
    target: &Target<'_>,
    phase: u8,
    (seq, sent_us): (u64, u64),
) -> Outgoing {
    let mark = mark(phase, seq, sent_us, shape.measured_at(target));
    Outgoing::event(inbound, &target.account.key, event_body(target, &mark))
}

pub fn event(account: &Account, kind: &str, fields: Value) -> Value {
    let mut body = json!({ "eventId": uuid::Uuid::new_v4().to_string(), "type": kind, "accountId": account.name, "occurredAt": OCCURRED_AT });
    for (k, v) in fields.as_object().expect("fields are an object") {
        body[k] = v.clone();
    }
    body
}

/// The account as a CRM sets it up: one WhatsApp channel, `managers` taking
/// new clients (by round robin, or first reply for that scenario), quality
/// control on every chat, idle managers who take no new clients.
pub async fn set_up(
    publisher: &Channel,
    inbound: &str,
    rconn: &mut MultiplexedConnection,
    prefix: &str,
    account: &Account,
    shape: &Shape,
) -> Result<()> {
    let keys = AccountKeys::new(prefix, &account.id);
    let users: Vec<Value> = shape
        .managers
        .iter()
        .map(|u| (u, "manager", true))
        .chain(shape.qcs.iter().map(|u| (u, "quality_control", false)))
        .chain(shape.idle.iter().map(|u| (u, "manager", false)))
        .map(|(u, role, rnc)| {
            json!({ "userId": u, "name": format!("User {u}"),
                    "access": [{ "channelId": CHANNEL, "role": role, "receivesNewClients": rnc }] })
        })
        .collect();
    let distribution = if shape.first_reply() {
        "first_reply"
    } else {
        "round_robin"
    };
    let mut setup = vec![event(
        account,
        "channels.upserted",
        json!({ "channels": [{ "channelId": CHANNEL, "chatType": "whatsapp", "name": "Support" }] }),
    )];
    for chunk in users.chunks(USERS_PER_EVENT) {
        setup.push(event(account, "users.upserted", json!({ "users": chunk })));
    }
    setup.extend([
        event(
            account,
            "pipelines.loaded",
            json!({ "pipelines": [{ "pipelineId": "p", "name": "Sales", "stages": [{ "stageId": "s1", "name": "New" }] }] }),
        ),
        event(
            account,
            "settings.updated",
            json!({ "newClients": { "pipelineId": "p", "stageId": "s1", "distribution": distribution },
                    "links": { "deal": "https://crm.example/deals/{dealId}", "newDeal": "https://crm.example/deals/new?contact={contactId}" } }),
        ),
    ]);
    let config_key = keys.key(&Key::Config);
    for (n, body) in setup.iter().enumerate() {
        // One at a time: account events share a partition, but the next one
        // is decided on the config the previous one wrote.
        let confirm = amqp::publish(
            publisher,
            inbound,
            &account.key,
            body.to_string().as_bytes(),
        )
        .await?;
        if !amqp::confirmed(confirm).await? {
            bail!("the broker refused a set-up event of {}", account.name);
        }
        // A thousand users means a thousand queues declared before the ack.
        wait_counter(rconn, &config_key, n as u64 + 1, Duration::from_secs(300)).await?;
    }
    Ok(())
}

/// Known clients: `shape.chats` contacts the CRM already has, spread over the
/// accounts and their managers as [`Shape::known`] says; returns once every
/// one of them is applied.
pub async fn add_contacts(
    publisher: &Channel,
    inbound: &str,
    rconn: &mut MultiplexedConnection,
    prefix: &str,
    shape: &Shape,
) -> Result<()> {
    let mut events = Vec::with_capacity(shape.chats);
    let mut confirms = Vec::with_capacity(shape.chats);
    for c in 0..shape.chats {
        let target = shape.known(c);
        let body = event(
            target.account,
            "contact.upserted",
            json!({ "contactId": format!("contact-{c}"), "name": format!("Client {c}"),
                    "responsibleUserId": target.responsible,
                    "contactData": [{ "chatType": "whatsapp", "chatId": target.chat }] }),
        );
        let event_id = Id::parse(body["eventId"].as_str().expect("eventId")).expect("valid id");
        events.push(AccountKeys::new(prefix, &target.account.id).event(&event_id));
        let body = body.to_string();
        confirms
            .push(amqp::publish(publisher, inbound, &target.account.key, body.as_bytes()).await?);
    }
    let mut confirms: FuturesUnordered<_> = confirms.into_iter().map(amqp::confirmed).collect();
    while let Some(acked) = confirms.next().await {
        if !acked? {
            bail!("the broker refused a contact.upserted");
        }
    }
    wait_all_exist(rconn, &events, Duration::from_secs(60)).await
}

async fn wait_counter(
    conn: &mut MultiplexedConnection,
    key: &str,
    n: u64,
    limit: Duration,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let mut get = redis::cmd("GET");
        get.arg(key);
        let current: Option<u64> = within("Redis GET", get.query_async(conn)).await?;
        if current.unwrap_or(0) >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("account set-up not applied ({current:?} of {n} changes); see the log above");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_all_exist(
    conn: &mut MultiplexedConnection,
    keys: &[String],
    limit: Duration,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.exists(key);
        }
        let found: Vec<bool> = within("Redis EXISTS", pipe.query_async(conn)).await?;
        let n = found.iter().filter(|f| **f).count();
        if n == keys.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {n} of {} contacts applied", keys.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
