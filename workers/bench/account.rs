//! The bench account and its events: the set-up a CRM would send (channel,
//! users, pipeline, settings), the known clients' contacts, and the client
//! messages both phases publish. Set-up waits until Redis shows it applied.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::{Channel, Confirmation};
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use switchboard::handlers::Key;
use switchboard::ids::Id;
use switchboard::store::AccountKeys;

use crate::amqp;

pub const ACCOUNT: &str = "bench-account";
const CHANNEL: &str = "wa";
const OCCURRED_AT: &str = "2026-01-01T00:00:00Z";

pub fn id() -> Id {
    Id::parse(ACCOUNT).expect("valid id")
}

/// The chat of known client `i`.
pub fn known_chat(i: usize) -> String {
    format!("+7900{i:07}")
}

/// The routing key of a chat's messages: its account's, like every event.
pub fn chat_key(_chat: &str) -> String {
    switchboard::names::inbound_key(&switchboard::ids::Id::parse(ACCOUNT).expect("valid id"))
}

/// A client's message; `mark` ("{phase}:{seq}:{publish µs}") rides in `text`
/// and comes back in the notification.
pub fn inbound_body(chat: &str, mark: &str) -> Vec<u8> {
    event(
        "message.inbound",
        json!({ "messageId": uuid::Uuid::new_v4().to_string(), "channelId": CHANNEL, "chatType": "whatsapp",
                "chatId": chat, "text": mark, "contact": { "name": format!("Client {chat}") } }),
    )
    .to_string()
    .into_bytes()
}

fn event(kind: &str, fields: Value) -> Value {
    let mut body = json!({ "eventId": uuid::Uuid::new_v4().to_string(), "type": kind, "accountId": ACCOUNT, "occurredAt": OCCURRED_AT });
    for (k, v) in fields.as_object().expect("fields are an object") {
        body[k] = v.clone();
    }
    body
}

/// The account as a CRM sets it up: one WhatsApp channel, `managers` with
/// round robin for new clients, quality control on every chat.
pub async fn set_up(
    publisher: &Channel,
    inbound: &str,
    rconn: &mut MultiplexedConnection,
    keys: &AccountKeys,
    managers: &[String],
    qcs: &[String],
) -> Result<()> {
    let users: Vec<Value> = managers
        .iter()
        .map(|u| (u, "manager", true))
        .chain(qcs.iter().map(|u| (u, "quality_control", false)))
        .map(|(u, role, rnc)| {
            json!({ "userId": u, "name": format!("User {u}"),
                    "access": [{ "channelId": CHANNEL, "role": role, "receivesNewClients": rnc }] })
        })
        .collect();
    let setup = [
        event(
            "channels.upserted",
            json!({ "channels": [{ "channelId": CHANNEL, "chatType": "whatsapp", "name": "Support" }] }),
        ),
        event("users.upserted", json!({ "users": users })),
        event(
            "pipelines.loaded",
            json!({ "pipelines": [{ "pipelineId": "p", "name": "Sales", "stages": [{ "stageId": "s1", "name": "New" }] }] }),
        ),
        event(
            "settings.updated",
            json!({ "newClients": { "pipelineId": "p", "stageId": "s1", "distribution": "round_robin" },
                    "links": { "deal": "https://crm.example/deals/{dealId}", "newDeal": "https://crm.example/deals/new?contact={contactId}" } }),
        ),
    ];
    let config_key = keys.key(&Key::Config);
    for (n, body) in setup.iter().enumerate() {
        // One at a time: account events share a partition, but the next one
        // is decided on the config the previous one wrote.
        let confirm = amqp::publish(publisher, inbound, ACCOUNT, body.to_string().as_bytes())
            .await?
            .await?;
        if let Confirmation::Nack(_) = confirm {
            bail!("the broker refused a set-up event");
        }
        wait_counter(rconn, &config_key, n as u64 + 1, Duration::from_secs(30)).await?;
    }
    Ok(())
}

/// Known clients: `chats` contacts the CRM already has, spread over the
/// managers; returns once every one of them is applied.
pub async fn add_contacts(
    publisher: &Channel,
    inbound: &str,
    rconn: &mut MultiplexedConnection,
    keys: &AccountKeys,
    managers: &[String],
    chats: usize,
) -> Result<()> {
    let mut events = Vec::with_capacity(chats);
    let mut confirms = FuturesUnordered::new();
    for i in 0..chats {
        let body = event(
            "contact.upserted",
            json!({ "contactId": format!("contact-{i}"), "name": format!("Client {i}"),
                    "responsibleUserId": managers[i % managers.len()],
                    "contactData": [{ "chatType": "whatsapp", "chatId": known_chat(i) }] }),
        );
        let event_id = Id::parse(body["eventId"].as_str().expect("eventId")).expect("valid id");
        events.push(keys.event(&event_id));
        let body = body.to_string();
        confirms.push(amqp::publish(publisher, inbound, ACCOUNT, body.as_bytes()).await?);
    }
    while let Some(confirm) = confirms.next().await {
        confirm?;
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
        let current: Option<u64> = redis::cmd("GET").arg(key).query_async(conn).await?;
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
        let found: Vec<bool> = pipe.query_async(conn).await?;
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
