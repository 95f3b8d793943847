//! JSON Schemas (draft 2020-12) of every message in and out of the worker,
//! generated from the Rust types with `schemars` and tidied here where serde's
//! attributes (flatten, internal tags, untagged, skipped `None`s) make the raw
//! output loose or confusing.
//!
//! [`all`] is the whole set as `(file, schema)`; [`write_all`] writes it under a
//! directory (the repository keeps it in `schemas/`). `tests/schemas.rs` fails
//! when the committed files differ and rewrites them with
//! `SWITCHBOARD_BLESS=1 cargo test --test schemas`.

use std::collections::BTreeSet;
use std::path::Path;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use crate::events::Event;
use crate::output::{CrmEvent, MessageSend, Notification, SuitcaseReply};

/// The draft every schema is written in.
pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The file of the union of every inbound event.
pub const INBOUND_UNION: &str = "inbound/event.json";

/// The file of the union of every CRM event.
pub const CRM_UNION: &str = "out/crm-event.json";

const PREFIX_NOTE: &str = "`P` is the worker's name prefix (`--prefix`, env `SWITCHBOARD_PREFIX`, \
    `switchboard` by default). Body: UTF-8 JSON, content_type `application/json`, persistent.";

const ESCAPE_NOTE: &str = "Ids inside queue names and routing keys are escaped: `%`, `.`, `*` and `#` \
    become `%25`, `%2E`, `%2A` and `%23`, so an id `a.b` is `a%2Eb` there and cannot pass for two words; \
    a name longer than 255 bytes is cut to its head plus a digest.";

/// One inbound event type: its file, who publishes it, its routing key and what it does.
struct Inbound {
    kind: &'static str,
    file: &'static str,
    publisher: &'static str,
    routing_key: &'static str,
    about: &'static str,
}

const CHAT_KEY: &str = "{accountId}.{chatType}.{chatId}";
const ACCOUNT_KEY: &str = "{accountId}";

const INBOUND: [Inbound; 10] = [
    Inbound {
        kind: "channels.upserted",
        file: "inbound/channels.upserted.json",
        publisher: "the CRM",
        routing_key: ACCOUNT_KEY,
        about: "Registers or updates the account's channels (messenger accounts of the company).",
    },
    Inbound {
        kind: "users.upserted",
        file: "inbound/users.upserted.json",
        publisher: "the CRM",
        routing_key: ACCOUNT_KEY,
        about: "Creates or replaces each listed user; his access list is replaced whole and his \
            notification queue `P.user.{accountId}.{userId}` is declared. Every `channelId` must be \
            a known channel.",
    },
    Inbound {
        kind: "users.removed",
        file: "inbound/users.removed.json",
        publisher: "the CRM",
        routing_key: ACCOUNT_KEY,
        about: "The listed users lose all access; their clients wait for a new responsible user. Every \
            listed user must be known.",
    },
    Inbound {
        kind: "pipelines.loaded",
        file: "inbound/pipelines.loaded.json",
        publisher: "the CRM",
        routing_key: ACCOUNT_KEY,
        about: "Replaces the account's pipelines and their stages.",
    },
    Inbound {
        kind: "settings.updated",
        file: "inbound/settings.updated.json",
        publisher: "the CRM",
        routing_key: ACCOUNT_KEY,
        about: "The account's new-client rules and CRM link templates. The pipeline and stage must \
            exist (see `pipelines.loaded`). In `links.deal` `{dealId}`, and in `links.newDeal` \
            `{contactId}`, is replaced by the percent-escaped id.",
    },
    Inbound {
        kind: "contact.upserted",
        file: "inbound/contact.upserted.json",
        publisher: "the CRM",
        routing_key: ACCOUNT_KEY,
        about: "A contact the CRM already has: its messenger identities and its responsible user, who \
            must be a known user.",
    },
    Inbound {
        kind: "deal.upserted",
        file: "inbound/deal.upserted.json",
        publisher: "the CRM",
        routing_key: ACCOUNT_KEY,
        about: "A deal created or changed in the CRM. Without `uri` the suitcase links it through \
            `links.deal` of `settings.updated`. The responsible user must be known.",
    },
    Inbound {
        kind: "message.inbound",
        file: "inbound/message.inbound.json",
        publisher: "a messenger gateway",
        routing_key: CHAT_KEY,
        about: "A client wrote to a channel, which must be a known channel.",
    },
    Inbound {
        kind: "message.outbound",
        file: "inbound/message.outbound.json",
        publisher: "the CRM (a user's chat window)",
        routing_key: CHAT_KEY,
        about: "A user wants to send a reply (the channel and the user must be known). If his role on the channel allows it the worker \
            publishes `message.send` (see `out/message.send.json`), otherwise he gets a \
            `message.rejected` notification.",
    },
    Inbound {
        kind: "suitcase.requested",
        file: "inbound/suitcase.requested.json",
        publisher: "the CRM (a user's chat window)",
        routing_key: CHAT_KEY,
        about: "Asks for the user's suitcase of the chat. The AMQP properties `reply_to` and \
            `correlation_id` must be set; the answer (see `out/suitcase.reply.json`) goes to \
            `reply_to` with the same `correlation_id`.",
    },
];

/// One CRM event type.
struct Crm {
    kind: &'static str,
    file: &'static str,
    about: &'static str,
}

const CRM: [Crm; 3] = [
    Crm {
        kind: "contact.created",
        file: "out/contact.created.json",
        about: "The worker created a contact for a new client (its `contactId` is made up by the \
            worker).",
    },
    Crm {
        kind: "deal.created",
        file: "out/deal.created.json",
        about: "The worker created the new client's deal in the configured pipeline and stage (its \
            `dealId` is made up by the worker).",
    },
    Crm {
        kind: "contact.responsibleChanged",
        file: "out/contact.responsibleChanged.json",
        about: "A contact whose responsible user lost access to the channel got a new responsible \
            user.",
    },
];

/// Every schema as `(path under schemas/, schema)`: one file per inbound event
/// type, the union of them, and every message the worker publishes.
pub fn all() -> Vec<(&'static str, Value)> {
    let mut out = inbound();
    out.push(("out/notification.json", notification()));
    out.extend(crm());
    out.push(("out/message.send.json", message_send()));
    out.push(("out/suitcase.reply.json", suitcase_reply()));
    out
}

/// Writes every schema of [`all`] under `dir`, creating its folders.
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    for (file, schema) in all() {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, render(&schema))?;
    }
    Ok(())
}

/// A schema as it is written to disk: pretty JSON, keywords in a fixed,
/// readable order (`$schema`, `$id`, `title`, `description`, `type` first,
/// `$defs` last), a final newline. Independent of serde_json's `preserve_order`.
pub fn render(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&Ordered(schema)).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// The `$id` of a file: `inbound/message.inbound.json` is
/// `urn:switchboard:v1:inbound:message.inbound`.
pub fn id_of(file: &str) -> String {
    format!(
        "urn:switchboard:v1:{}",
        file.trim_end_matches(".json").replace('/', ":")
    )
}

fn root<T: JsonSchema>() -> Map<String, Value> {
    let schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = Value::from(schema);
    inline_timestamps(&mut value);
    match value {
        Value::Object(map) => map,
        other => panic!(
            "schema of {} is not an object: {other}",
            std::any::type_name::<T>()
        ),
    }
}

fn take_defs(root: &mut Map<String, Value>) -> Map<String, Value> {
    match root.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    }
}

/// The inbound files: one per variant of [`Event`], then their union.
fn inbound() -> Vec<(&'static str, Value)> {
    let mut event = root::<Event>();
    let mut defs = take_defs(&mut event);
    let Some(Value::Array(variants)) = event.remove("oneOf") else {
        panic!("the schema of Event has no oneOf: has schemars changed how it writes tagged enums?")
    };
    let mut files = Vec::new();
    let mut union = Vec::new();
    for variant in &variants {
        let kind = variant
            .pointer("/properties/type/const")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("an Event variant without a `type` const: {variant}"));
        let def_name = variant
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .unwrap_or_else(|| panic!("Event variant {kind} is not a $ref: {variant}"))
            .to_owned();
        let spec = INBOUND.iter().find(|i| i.kind == kind).unwrap_or_else(|| {
            panic!("event type {kind} has no entry in INBOUND (src/schemas.rs)")
        });
        let Some(Value::Object(mut body)) = defs.remove(&def_name) else {
            panic!("Event variant {kind} refers to a missing $defs/{def_name}")
        };
        // The variant struct flattens `Envelope`, whose description leaks onto
        // it; the tag lives on the enum. Put both right.
        body.remove("description");
        add_type_const(&mut body, kind);
        let description = format!(
            "{} Published by {} to the exchange `P.inbound` with routing key `{}`. {PREFIX_NOTE}",
            spec.about, spec.publisher, spec.routing_key
        );
        files.push((
            spec.file,
            finish(spec.file, kind, &description, body.clone(), &defs),
        ));
        let mut def = Map::new();
        def.insert("title".into(), kind.into());
        def.insert("description".into(), spec.about.into());
        def.extend(body);
        union.push(def_name.clone());
        defs.insert(def_name, Value::Object(def));
    }
    for spec in &INBOUND {
        assert!(
            files.iter().any(|(file, _)| *file == spec.file),
            "INBOUND lists {} but Event has no such variant",
            spec.kind
        );
    }
    let mut body = Map::new();
    body.insert(
        "oneOf".into(),
        union
            .iter()
            .map(|name| json!({ "$ref": format!("#/$defs/{name}") }))
            .collect(),
    );
    let description = format!(
        "Any event the worker accepts on the exchange `P.inbound`, told apart by `type`; each \
         variant is also its own file in this folder. A reference to an unknown channel or user \
         is refused like a malformed event. Chat events (`message.inbound`, \
         `message.outbound`, `suitcase.requested`) use routing key `{CHAT_KEY}`, account events \
         `{ACCOUNT_KEY}`. Input that does not match goes to the queue `P.dead` with a header \
         `x-switchboard-error`. {PREFIX_NOTE}"
    );
    files.push((
        INBOUND_UNION,
        finish(INBOUND_UNION, "event", &description, body, &defs),
    ));
    files
}

fn notification() -> Value {
    const FILE: &str = "out/notification.json";
    let mut body = root::<Notification>();
    let defs = take_defs(&mut body);
    omitted_not_null(&mut body);
    // The contract ties `reason` to `message.rejected`; the type cannot say so.
    body.insert(
        "if".into(),
        json!({ "properties": { "type": { "const": "message.rejected" } }, "required": ["type"] }),
    );
    body.insert("then".into(), json!({ "required": ["reason"] }));
    body.insert("else".into(), json!({ "not": { "required": ["reason"] } }));
    let description = format!(
        "A notification for one CRM user: `chat.new`, `chat.message`, `chat.assigned`, \
         `chat.withdrawn`, or `message.rejected` (only it has `reason`). `notificationId` is the same \
         for the same cause, so a client can drop repeats. Fields that do not apply are omitted, \
         never null. Published by the worker to the direct exchange `P.notify` with routing key \
         `{{accountId}}.{{userId}}`, bound to the user's durable queue `P.user.{{accountId}}.{{userId}}` \
         (declared as soon as the user is known). {ESCAPE_NOTE} {PREFIX_NOTE}"
    );
    finish(FILE, "notification", &description, body, &defs)
}

/// One file per CRM event type, then their union.
fn crm() -> Vec<(&'static str, Value)> {
    let mut event = root::<CrmEvent>();
    let mut defs = take_defs(&mut event);
    let Some(Value::Array(variants)) = event.remove("oneOf") else {
        panic!(
            "the schema of CrmEvent has no oneOf: has schemars changed how it writes tagged enums?"
        )
    };
    let mut files = Vec::new();
    let mut union = Vec::new();
    for variant in variants {
        let Value::Object(mut body) = variant else {
            panic!("a CrmEvent variant is not an object")
        };
        let kind = body
            .get("properties")
            .and_then(|p| p.pointer("/type/const"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("a CrmEvent variant without a `type` const"))
            .to_owned();
        let spec = CRM.iter().find(|c| c.kind == kind).unwrap_or_else(|| {
            panic!("CRM event type {kind} has no entry in CRM (src/schemas.rs)")
        });
        // The flattened `CrmEnvelope`'s description leaks onto every variant.
        body.remove("description");
        add_type_const(&mut body, &kind);
        let description = format!(
            "{} Published by the worker to the topic exchange `P.crm` with routing key \
             `{{accountId}}.{kind}`. {ESCAPE_NOTE} {PREFIX_NOTE}",
            spec.about
        );
        files.push((
            spec.file,
            finish(spec.file, &kind, &description, body.clone(), &defs),
        ));
        let def_name = pascal(&kind);
        let mut def = Map::new();
        def.insert("title".into(), kind.clone().into());
        def.insert("description".into(), spec.about.into());
        def.extend(body);
        defs.insert(def_name.clone(), Value::Object(def));
        union.push(def_name);
    }
    assert_eq!(
        files.len(),
        CRM.len(),
        "CRM lists a type CrmEvent does not have"
    );
    let mut body = Map::new();
    body.insert(
        "oneOf".into(),
        union
            .iter()
            .map(|name| json!({ "$ref": format!("#/$defs/{name}") }))
            .collect(),
    );
    let description = format!(
        "Any event the worker publishes to the topic exchange `P.crm`, told apart by `type`, with \
         routing key `{{accountId}}.{{type}}`; each variant is also its own file in this folder. \
         CRMs bind their own queues. {ESCAPE_NOTE} {PREFIX_NOTE}"
    );
    files.push((
        CRM_UNION,
        finish(CRM_UNION, "crm-event", &description, body, &defs),
    ));
    files
}

fn message_send() -> Value {
    const FILE: &str = "out/message.send.json";
    let mut body = root::<MessageSend>();
    let mut defs = take_defs(&mut body);
    // `type` is a one-variant enum in Rust; on the wire it is a constant.
    defs.remove("MessageSendType");
    add_type_const(&mut body, "message.send");
    let description = format!(
        "An approved reply for the gateway to deliver: the fields of the `message.outbound` request \
         (`eventId` and `occurredAt` are the request's) with `type` `message.send`, plus the \
         chat's `contactId`. Published by the worker to the topic exchange `P.outbound` with \
         routing key `{{accountId}}.{{channelId}}`; gateways bind their own queues. {ESCAPE_NOTE} \
         {PREFIX_NOTE}"
    );
    finish(FILE, "message.send", &description, body, &defs)
}

fn suitcase_reply() -> Value {
    const FILE: &str = "out/suitcase.reply.json";
    let mut body = root::<SuitcaseReply>();
    let mut defs = take_defs(&mut body);
    // Untagged in Rust: exactly one of the two forms, never a mix.
    let Some(Value::Array(mut forms)) = body.remove("anyOf") else {
        panic!(
            "the schema of SuitcaseReply has no anyOf: has schemars changed how it writes untagged enums?"
        )
    };
    assert_eq!(forms.len(), 2, "SuitcaseReply has two forms");
    // The worker always writes the link fields, as null when there is no link.
    require(&mut forms[0], "newDealUri");
    forms[0]["title"] = "found".into();
    forms[1]["title"] = "error".into();
    body.insert("oneOf".into(), Value::Array(forms));
    if let Some(deal) = defs.get_mut("SuitcaseDeal") {
        require(deal, "uri");
    }
    if let Some(Value::Object(error)) = defs.get_mut("SuitcaseError") {
        error.insert(
            "description".into(),
            "`no_access`: the user is unknown or has no access to any channel; `unknown_chat`: the \
             chat has no contact yet."
                .into(),
        );
    }
    let description = "The answer to `suitcase.requested`: either the suitcase `{contactId, deals, \
        newDealUri}` (the deals of the chat's contact where the asking user is responsible, open \
        ones first, each with its CRM link) or `{error}`. `uri` comes from `deal.upserted`, else \
        from `links.deal`; `newDealUri` from `links.newDeal`; either is null when there is no link \
        to give (no `settings.updated` yet). Published by the worker to the default exchange with \
        routing key = the request's AMQP `reply_to`, with the request's `correlation_id`. Body: \
        UTF-8 JSON, content_type `application/json`.";
    finish(FILE, "suitcase.reply", description, body, &defs)
}

/// Wraps a body into a standalone schema: draft, `$id`, title, description
/// and only the `$defs` it uses.
fn finish(
    file: &str,
    title: &str,
    description: &str,
    body: Map<String, Value>,
    defs: &Map<String, Value>,
) -> Value {
    let mut schema = Map::new();
    schema.insert("$schema".into(), DRAFT.into());
    schema.insert("$id".into(), id_of(file).into());
    schema.insert("title".into(), title.into());
    schema.insert("description".into(), description.into());
    for (key, value) in body {
        if !matches!(key.as_str(), "$schema" | "$id" | "title" | "description") {
            schema.insert(key, value);
        }
    }
    let used = used_defs(&Value::Object(schema.clone()), defs);
    if !used.is_empty() {
        let defs: Map<String, Value> = used
            .into_iter()
            .map(|name| (name.clone(), defs[&name].clone()))
            .collect();
        schema.insert("$defs".into(), Value::Object(defs));
    }
    Value::Object(schema)
}

/// The names of the `$defs` a schema reaches, following refs through `defs`.
fn used_defs(schema: &Value, defs: &Map<String, Value>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut todo = Vec::new();
    collect_refs(schema, &mut todo);
    while let Some(name) = todo.pop() {
        let def = defs
            .get(&name)
            .unwrap_or_else(|| panic!("$ref to a missing $defs/{name}"));
        if used.insert(name) {
            collect_refs(def, &mut todo);
        }
    }
    used
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix("#/$defs/") {
                            out.push(name.to_owned());
                        }
                    }
                    ("$defs", _) => {}
                    _ => collect_refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Makes `type` a required constant, first among the properties.
fn add_type_const(body: &mut Map<String, Value>, kind: &str) {
    let properties = body.entry("properties").or_insert_with(|| json!({}));
    properties["type"] = json!({ "type": "string", "const": kind });
    let required = body.entry("required").or_insert_with(|| json!([]));
    let Value::Array(required) = required else {
        panic!("`required` is not an array")
    };
    required.retain(|r| r != "type");
    required.insert(0, "type".into());
}

/// Adds `field` to an object schema's `required`.
fn require(schema: &mut Value, field: &str) {
    let required = schema
        .as_object_mut()
        .expect("an object schema")
        .entry("required")
        .or_insert_with(|| json!([]));
    let Value::Array(required) = required else {
        panic!("`required` is not an array")
    };
    if !required.iter().any(|r| r == field) {
        required.push(field.into());
    }
}

/// For an output whose optional fields are skipped when `None`: an optional
/// property is absent or a value, never null.
fn omitted_not_null(body: &mut Map<String, Value>) {
    let required: Vec<Value> = body
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(Value::Object(properties)) = body.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if required.iter().any(|r| r == name) {
            continue;
        }
        let Value::Object(property) = property else {
            continue;
        };
        if let Some(Value::Array(types)) = property.get_mut("type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types[0].clone();
                property.insert("type".into(), only);
            }
        }
        if let Some(Value::Array(options)) = property.remove("anyOf") {
            let mut rest: Vec<Value> = options
                .into_iter()
                .filter(|o| o != &json!({ "type": "null" }))
                .collect();
            match (rest.len(), rest.pop()) {
                (1, Some(Value::Object(only))) => property.extend(only),
                (_, last) => {
                    rest.extend(last);
                    property.insert("anyOf".into(), Value::Array(rest));
                }
            }
        }
    }
}

/// `Timestamp` is a string in Rust; on the wire it is an RFC 3339 date-time.
/// Replaces every `$ref` to it with the plain string schema and drops the def.
fn inline_timestamps(value: &mut Value) {
    const REF: &str = "#/$defs/Timestamp";
    match value {
        Value::Object(map) => {
            if map.get("$ref").and_then(Value::as_str) == Some(REF) {
                map.remove("$ref");
                map.insert("type".into(), "string".into());
                map.insert("format".into(), "date-time".into());
                if !map.contains_key("description") {
                    map.insert("description".into(), "RFC 3339 date-time.".into());
                }
            }
            if let Some(Value::Object(defs)) = map.get_mut("$defs") {
                defs.remove("Timestamp");
            }
            map.values_mut().for_each(inline_timestamps);
        }
        Value::Array(items) => items.iter_mut().for_each(inline_timestamps),
        _ => {}
    }
}

/// `contact.responsibleChanged` -> `ContactResponsibleChanged`.
fn pascal(kind: &str) -> String {
    kind.split('.')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// Serializes a value with object keys in [`rank`] order, whatever the map type.
struct Ordered<'a>(&'a Value);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_by_key(|k| (rank(k), k.as_str()));
                let mut out = serializer.serialize_map(Some(keys.len()))?;
                for key in keys {
                    out.serialize_entry(key, &Ordered(&map[key]))?;
                }
                out.end()
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(Ordered)),
            other => other.serialize(serializer),
        }
    }
}

/// Keywords that read best first, then everything by name, then the
/// conditionals and `$defs`. Also applies to property names, which puts a
/// message's `type` first.
fn rank(key: &str) -> u8 {
    match key {
        "$schema" => 0,
        "$id" => 1,
        "title" => 2,
        "description" => 3,
        "type" => 4,
        "if" => 6,
        "then" => 7,
        "else" => 8,
        "$defs" => 9,
        _ => 5,
    }
}
