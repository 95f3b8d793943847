//! The demo's short day at a shop: who works where, and what happens.

use serde_json::{Value, json};

pub const ACCOUNT: &str = "demo-shop";
const AT: &str = "2026-11-26T09:00:00Z";

/// Users of the demo, with the one line that says who they are.
pub const CAST: [(&str, &str); 6] = [
    ("anna", "manager on WhatsApp, takes new clients"),
    ("boris", "manager on WhatsApp, takes new clients"),
    ("quinn", "quality control on WhatsApp"),
    ("vera", "supervisor on WhatsApp and Telegram"),
    ("gleb", "manager on Telegram, takes new clients"),
    ("dina", "manager on Telegram, takes new clients"),
];

/// One step of the day: what it shows, and the event.
pub struct Step {
    pub says: &'static str,
    pub event: Value,
    /// Let the worker finish before the next step: events of different chats
    /// run in parallel, and the story needs this one to come first.
    pub then_wait: bool,
}

fn event(kind: &str, fields: Value) -> Value {
    let mut body = json!({ "eventId": uuid::Uuid::new_v4().to_string(), "type": kind,
                           "accountId": ACCOUNT, "occurredAt": AT });
    for (k, v) in fields.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    body
}

fn inbound(channel: &str, chat_type: &str, chat: &str, name: &str, text: &str) -> Value {
    event(
        "message.inbound",
        json!({ "messageId": uuid::Uuid::new_v4().to_string(), "channelId": channel,
                "chatType": chat_type, "chatId": chat, "text": text, "contact": { "name": name } }),
    )
}

fn reply(channel: &str, chat_type: &str, chat: &str, user: &str, text: &str) -> Value {
    event(
        "message.outbound",
        json!({ "messageId": uuid::Uuid::new_v4().to_string(), "channelId": channel,
                "chatType": chat_type, "chatId": chat, "userId": user, "text": text }),
    )
}

fn access(channel: &str, role: &str, new_clients: bool) -> Value {
    json!({ "channelId": channel, "role": role, "receivesNewClients": new_clients })
}

fn settings(distribution: &str) -> Value {
    event(
        "settings.updated",
        json!({ "newClients": { "pipelineId": "sales", "stageId": "new", "distribution": distribution },
                "links": { "deal": "https://crm.example/deals/{dealId}",
                           "newDeal": "https://crm.example/deals/new?contact={contactId}" } }),
    )
}

/// The whole day, published back to back: one account is one ordered stream,
/// so the set-up takes effect before the first client's message.
pub fn day() -> Vec<Step> {
    let users = json!([
        { "userId": "anna", "name": "Anna", "access": [access("wa", "manager", true)] },
        { "userId": "boris", "name": "Boris", "access": [access("wa", "manager", true)] },
        { "userId": "quinn", "name": "Quinn", "access": [access("wa", "quality_control", false)] },
        { "userId": "vera", "name": "Vera", "access": [access("wa", "supervisor", false), access("tg", "supervisor", false)] },
        { "userId": "gleb", "name": "Gleb", "access": [access("tg", "manager", true)] },
        { "userId": "dina", "name": "Dina", "access": [access("tg", "manager", true)] },
    ]);
    vec![
        Step {
            says: "The CRM registers two channels",
            event: event(
                "channels.upserted",
                json!({ "channels": [
                    { "channelId": "wa", "chatType": "whatsapp", "name": "WhatsApp Support" },
                    { "channelId": "tg", "chatType": "telegram", "name": "Telegram Sales" } ] }),
            ),
            then_wait: false,
        },
        Step {
            says: "... six users in three roles",
            event: event("users.upserted", json!({ "users": users })),
            then_wait: false,
        },
        Step {
            says: "... a pipeline",
            event: event(
                "pipelines.loaded",
                json!({ "pipelines": [{ "pipelineId": "sales", "name": "Sales",
                        "stages": [{ "stageId": "new", "name": "New" }, { "stageId": "won", "name": "Won" }] }] }),
            ),
            then_wait: false,
        },
        Step {
            says: "... and round robin for new clients",
            event: settings("round_robin"),
            then_wait: false,
        },
        Step {
            says: "Olga writes on WhatsApp: a new client, handed to anna in turn",
            event: inbound(
                "wa",
                "whatsapp",
                "+79001110000",
                "Olga",
                "Hi, do you deliver?",
            ),
            then_wait: true,
        },
        Step {
            says: "Pavel writes on WhatsApp: the next turn is boris's",
            event: inbound(
                "wa",
                "whatsapp",
                "+79002220000",
                "Pavel",
                "Price of the sofa?",
            ),
            then_wait: false,
        },
        Step {
            says: "Olga writes again: her responsible anna gets it",
            event: inbound("wa", "whatsapp", "+79001110000", "Olga", "Also to Kazan?"),
            then_wait: false,
        },
        Step {
            says: "anna answers Olga: sent to the gateway",
            event: reply("wa", "whatsapp", "+79001110000", "anna", "Yes, Kazan too."),
            then_wait: false,
        },
        Step {
            says: "quinn (quality control) tries to answer: refused, read only",
            event: reply("wa", "whatsapp", "+79001110000", "quinn", "Hello!"),
            then_wait: false,
        },
        Step {
            says: "boris answers anna's client: refused, not responsible",
            event: reply("wa", "whatsapp", "+79001110000", "boris", "I can help"),
            then_wait: false,
        },
        Step {
            says: "The CRM switches new clients to first reply",
            event: settings("first_reply"),
            then_wait: false,
        },
        Step {
            says: "Rita writes on Telegram: gleb and dina both see her",
            event: inbound("tg", "telegram", "rita_tg", "Rita", "Hello from Telegram"),
            then_wait: false,
        },
        Step {
            says: "dina answers first: she claims Rita",
            event: reply("tg", "telegram", "rita_tg", "dina", "I'm on it!"),
            then_wait: false,
        },
        Step {
            says: "gleb answers a moment later: too late",
            event: reply("tg", "telegram", "rita_tg", "gleb", "Me too!"),
            then_wait: false,
        },
    ]
}

/// The suitcase request of the day: anna opens Olga's chat.
pub fn suitcase() -> Value {
    event(
        "suitcase.requested",
        json!({ "userId": "anna", "chatType": "whatsapp", "chatId": "+79001110000" }),
    )
}
