//! Builders of what tests publish: an account's set-up as a CRM sends it
//! ([`Account`]) and the events of a gateway, a CRM and a user's client.

use serde_json::{Value, json};
use switchboard::ids::Id;

use super::{TS, TestApp};

/// One user on channel "wa": (userId, role, receivesNewClients).
pub type Staff<'a> = (&'a str, &'a str, bool);

/// One seat of a user: (channelId, role, receivesNewClients).
pub type Seat<'a> = (&'a str, &'a str, bool);

/// The routing key of every event of `account` on `P.inbound`.
pub fn account_key(account: &str) -> String {
    switchboard::names::inbound_key(&Id::parse(account).expect("a valid account id"))
}

/// A fresh event id.
pub fn eid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An event of `kind` for `account` with the given fields and a fresh eventId.
pub fn event(kind: &str, account: &str, fields: Value) -> Value {
    let mut body =
        json!({ "eventId": eid(), "type": kind, "accountId": account, "occurredAt": TS });
    for (k, v) in fields.as_object().expect("fields are an object") {
        body[k] = v.clone();
    }
    body
}

/// A client's message on channel "wa".
pub fn inbound(account: &str, chat_id: &str, text: &str) -> Value {
    event(
        "message.inbound",
        account,
        json!({ "messageId": eid(), "channelId": "wa", "chatType": "whatsapp", "chatId": chat_id, "text": text,
                "contact": { "name": format!("Client {chat_id}") } }),
    )
}

/// A user's reply on channel "wa".
pub fn outbound(account: &str, chat_id: &str, user: &str, text: &str) -> Value {
    reply(account, "wa", "whatsapp", chat_id, user, text)
}

/// A user's reply on any channel.
pub fn reply(
    account: &str,
    channel: &str,
    chat_type: &str,
    chat_id: &str,
    user: &str,
    text: &str,
) -> Value {
    event(
        "message.outbound",
        account,
        json!({ "messageId": eid(), "channelId": channel, "chatType": chat_type, "chatId": chat_id, "userId": user, "text": text }),
    )
}

/// A user with his seats, as `users.upserted` lists him.
pub fn user_json(user: &str, seats: &[Seat]) -> Value {
    let access: Vec<Value> = seats
        .iter()
        .map(|(channel, role, rnc)| json!({ "channelId": channel, "role": role, "receivesNewClients": rnc }))
        .collect();
    json!({ "userId": user, "name": format!("User {user}"), "access": access })
}

/// `users.upserted` of one user with these seats (none: he loses all access).
pub fn user_upserted(account: &str, user: &str, seats: &[Seat]) -> Value {
    event(
        "users.upserted",
        account,
        json!({ "users": [user_json(user, seats)] }),
    )
}

/// `contact.upserted`: a contact the CRM has, with whatsapp chats `chat_ids`.
pub fn contact(account: &str, contact_id: &str, responsible: &str, chat_ids: &[&str]) -> Value {
    contact_on(account, contact_id, responsible, "whatsapp", chat_ids)
}

/// `contact.upserted` with chats of `chat_type`.
pub fn contact_on(
    account: &str,
    contact_id: &str,
    responsible: &str,
    chat_type: &str,
    chat_ids: &[&str],
) -> Value {
    let data: Vec<Value> = chat_ids
        .iter()
        .map(|c| json!({ "chatType": chat_type, "chatId": c }))
        .collect();
    event(
        "contact.upserted",
        account,
        json!({ "contactId": contact_id, "name": format!("Contact {contact_id}"), "responsibleUserId": responsible, "contactData": data }),
    )
}

/// `settings.updated` into pipeline and stage, with the standard links.
pub fn settings(account: &str, pipeline: &str, stage: &str, distribution: &str) -> Value {
    event(
        "settings.updated",
        account,
        json!({ "newClients": { "pipelineId": pipeline, "stageId": stage, "distribution": distribution },
                "links": { "deal": "https://crm.example/deals/{dealId}", "newDeal": "https://crm.example/deals/new?contact={contactId}" } }),
    )
}

/// An account's set-up: channel "wa" (WhatsApp, "Support") unless others are
/// given, its users, pipeline "p" with stages "s1" and "s2", settings with a
/// distribution if one is given, and users removed after.
pub struct Account {
    id: String,
    channels: Vec<Value>,
    users: Vec<Value>,
    pipelines: bool,
    distribution: Option<String>,
    removed: Vec<String>,
}

impl Account {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            channels: Vec::new(),
            users: Vec::new(),
            pipelines: true,
            distribution: None,
            removed: Vec::new(),
        }
    }

    /// A channel besides (or, when given first, instead of) "wa".
    pub fn channel(mut self, id: &str, chat_type: &str, name: &str) -> Self {
        self.channels
            .push(json!({ "channelId": id, "chatType": chat_type, "name": name }));
        self
    }

    /// Users with one seat each, on "wa".
    pub fn staff(mut self, staff: &[Staff]) -> Self {
        for (user, role, rnc) in staff {
            self.users.push(user_json(user, &[("wa", role, *rnc)]));
        }
        self
    }

    /// A user with these seats.
    pub fn user(mut self, user: &str, seats: &[Seat]) -> Self {
        self.users.push(user_json(user, seats));
        self
    }

    pub fn distribution(mut self, distribution: Option<&str>) -> Self {
        self.distribution = distribution.map(str::to_owned);
        self
    }

    /// No `pipelines.loaded` (nor settings, which need a pipeline).
    pub fn without_pipelines(mut self) -> Self {
        self.pipelines = false;
        self
    }

    /// `users.removed` of these users, last.
    pub fn removed(mut self, users: &[&str]) -> Self {
        self.removed.extend(users.iter().map(|u| (*u).to_owned()));
        self
    }

    /// The set-up as events, in order, for publishing back to back.
    pub fn events(&self) -> Vec<Value> {
        let id = self.id.as_str();
        let channels = if self.channels.is_empty() {
            vec![json!({ "channelId": "wa", "chatType": "whatsapp", "name": "Support" })]
        } else {
            self.channels.clone()
        };
        let mut events = vec![
            event("channels.upserted", id, json!({ "channels": channels })),
            event("users.upserted", id, json!({ "users": self.users })),
        ];
        if self.pipelines {
            events.push(event(
                "pipelines.loaded",
                id,
                json!({ "pipelines": [{ "pipelineId": "p", "name": "Sales", "stages": [{ "stageId": "s1", "name": "New" }, { "stageId": "s2", "name": "Won" }] }] }),
            ));
            if let Some(distribution) = &self.distribution {
                events.push(settings(id, "p", "s1", distribution));
            }
        }
        if !self.removed.is_empty() {
            events.push(event(
                "users.removed",
                id,
                json!({ "userIds": self.removed }),
            ));
        }
        events
    }

    /// Publishes the set-up and waits until all of it is applied.
    pub async fn apply(&self, app: &TestApp) {
        let events = self.events();
        for e in &events {
            app.publish_event(e).await;
        }
        app.wait_config(&self.id, events.len() as u64).await;
    }
}

/// A standard account: channel "wa", the given users, pipeline "p" and,
/// unless `None`, settings with that distribution. Waits until it is applied.
pub async fn setup_account(
    app: &TestApp,
    account: &str,
    staff: &[Staff<'_>],
    distribution: Option<&str>,
) {
    Account::new(account)
        .staff(staff)
        .distribution(distribution)
        .apply(app)
        .await;
}

/// A test's app with queues of its own bound to `P.crm` and `P.outbound`
/// (with `#`) and account "acc" set up with `staff`: how most tests start.
pub struct Fixture {
    pub app: TestApp,
    pub crm: String,
    pub outbound: String,
}

impl Fixture {
    pub async fn new(workers: usize, staff: &[Staff<'_>], distribution: Option<&str>) -> Self {
        Self::with(TestApp::spawn(workers).await, staff, distribution).await
    }

    /// The same on an app started otherwise (a tuned configuration).
    pub async fn with(mut app: TestApp, staff: &[Staff<'_>], distribution: Option<&str>) -> Self {
        let crm = app.bind_crm().await;
        let outbound = app.bind_outbound().await;
        setup_account(&app, "acc", staff, distribution).await;
        Self { app, crm, outbound }
    }
}
