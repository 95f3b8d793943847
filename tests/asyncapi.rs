//! `schemas/asyncapi.json`: the AsyncAPI 3.0.0 document says the same thing as
//! the JSON Schemas next to it and as the worker's own names.
//!
//! - it is JSON with `asyncapi: "3.0.0"`;
//! - every `$ref` resolves: `#/...` inside the document, anything else to a file
//!   under `schemas/`;
//! - every schema file under `schemas/inbound` and `schemas/out` is the payload of
//!   exactly one message. The two unions (`inbound/event.json`,
//!   `out/crm-event.json`) are left out on purpose: a channel's `messages` map is
//!   already the union, and each member has its own message;
//! - every event type in `EVENT_TYPES` has a message, on `P.inbound`, with the
//!   routing key its schema names, and a `send` operation;
//! - operations only use messages of their own channel; addresses and
//!   parameters agree; the exchange and queue names are the worker's (default
//!   prefix), the id escaping is the worker's, and the dead-letter header
//!   accepts every reason the worker gives.
//!
//! Validation against the official AsyncAPI 3.0.0 JSON Schema needs a download
//! and is done by `.ci/asyncapi-check`, not here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use clap::{Args, Command};
use serde_json::{Value, json};
use switchboard::Config;
use switchboard::events::{EVENT_TYPES, Rejection};
use switchboard::ids::Id;
use switchboard::names::{self, Names};
use switchboard::schemas::{CRM_UNION, DRAFT, INBOUND_UNION};

const DOCUMENT: &str = "asyncapi.json";

/// The `schemaFormat` of every JSON Schema payload.
const SCHEMA_FORMAT: &str = "application/schema+json;version=draft-2020-12";

/// Schema files that no message needs to reference (see the module doc).
const UNIONS: [&str; 2] = [INBOUND_UNION, CRM_UNION];

/// The chat events; every other event type is an account event.
const CHAT_EVENTS: [&str; 3] = ["message.inbound", "message.outbound", "suitcase.requested"];

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn document() -> Value {
    let path = schemas_dir().join(DOCUMENT);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("schemas/{DOCUMENT} is not JSON: {e}"))
}

fn read_schema(file: &str) -> Value {
    let text = std::fs::read_to_string(schemas_dir().join(file))
        .unwrap_or_else(|e| panic!("schemas/{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("schemas/{file} is not JSON: {e}"))
}

/// `*.json` files under `schemas/inbound` and `schemas/out`, relative to `schemas/`.
fn schema_files() -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for sub in ["inbound", "out"] {
        let entries = std::fs::read_dir(schemas_dir().join(sub))
            .unwrap_or_else(|e| panic!("schemas/{sub}: {e}"));
        for entry in entries {
            let name = entry
                .expect("readable dir entry")
                .file_name()
                .into_string()
                .expect("UTF-8 file name");
            if name.ends_with(".json") {
                files.insert(format!("{sub}/{name}"));
            }
        }
    }
    assert!(
        !files.is_empty(),
        "no schema files under schemas/inbound and schemas/out"
    );
    files
}

/// Every `$ref` in `node`, with the JSON pointer of the object that holds it.
fn refs(node: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match node {
        Value::Object(map) => {
            if let Some(target) = map.get("$ref") {
                let target = target
                    .as_str()
                    .unwrap_or_else(|| panic!("{at}/$ref is not a string"));
                out.push((at.to_owned(), target.to_owned()));
            }
            for (key, value) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                refs(value, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                refs(value, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn all_refs(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    refs(doc, "", &mut out);
    out
}

/// The target of an in-document `$ref` (`#/a/b`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("{reference:?} is not a local ref"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} points at nothing in schemas/{DOCUMENT}"))
}

fn object<'a>(value: &'a Value, what: &str) -> &'a serde_json::Map<String, Value> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object"))
}

fn string<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string"))
}

/// `components.messages`, each resolved to its object.
fn messages(doc: &Value) -> BTreeMap<String, Value> {
    object(&doc["components"]["messages"], "components.messages")
        .iter()
        .map(|(key, message)| {
            let message = match message.get("$ref") {
                Some(r) => resolve(doc, string(r, "a message $ref")).clone(),
                None => message.clone(),
            };
            (key.clone(), message)
        })
        .collect()
}

/// The schema file of a message's payload, if it is a file.
fn payload_file(message: &Value) -> Option<&str> {
    message["payload"]["schema"]["$ref"]
        .as_str()
        .filter(|r| !r.starts_with('#'))
}

/// For each component message, the channels that list it.
fn channels_of_messages(doc: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (channel_key, channel) in object(&doc["channels"], "channels") {
        for (key, message) in object(
            &channel["messages"],
            &format!("channels.{channel_key}.messages"),
        ) {
            let target = string(
                &message["$ref"],
                &format!("channels.{channel_key}.messages.{key}.$ref"),
            );
            let name = target
                .strip_prefix("#/components/messages/")
                .unwrap_or_else(|| panic!("channels.{channel_key}.messages.{key} should point into components.messages"));
            out.entry(name.to_owned())
                .or_default()
                .push(channel_key.clone());
        }
    }
    out
}

/// The `{name}`s of a channel address.
fn placeholders(address: &str) -> BTreeSet<String> {
    address
        .split('{')
        .skip(1)
        .map(|rest| {
            rest.split_once('}')
                .unwrap_or_else(|| panic!("unclosed {{ in {address:?}"))
                .0
                .to_owned()
        })
        .collect()
}

/// The default `--prefix`, read from the worker's own flag definition.
fn default_prefix() -> String {
    let command = Config::augment_args(Command::new("switchboard"));
    let arg = command
        .get_arguments()
        .find(|a| a.get_id() == "prefix")
        .expect("Config has a prefix flag");
    let value = arg
        .get_default_values()
        .first()
        .expect("--prefix has a default");
    value.to_str().expect("UTF-8 default").to_owned()
}

/// Every reason the worker can give; the match breaks the build when a new one is added.
fn every_rejection() -> Vec<Rejection> {
    let all = vec![
        Rejection::TooLarge(300_000),
        Rejection::NotJson("expected value at line 1 column 1".into()),
        Rejection::UnknownType("chat.deleted".into()),
        Rejection::InvalidField("missing field `eventId`".into()),
        Rejection::UnknownChannel("wa:support".into()),
        Rejection::UnknownUser("u-anna".into()),
        Rejection::Invalid("unknown pipeline".into()),
        Rejection::Failed("still failing after 10 tries".into()),
    ];
    for rejection in &all {
        match rejection {
            Rejection::TooLarge(_)
            | Rejection::NotJson(_)
            | Rejection::UnknownType(_)
            | Rejection::InvalidField(_)
            | Rejection::UnknownChannel(_)
            | Rejection::UnknownUser(_)
            | Rejection::Invalid(_)
            | Rejection::Failed(_) => {}
        }
    }
    all
}

#[test]
fn the_document_is_asyncapi_3_0_0() {
    let doc = document();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert!(
        doc["info"]["title"].is_string() && doc["info"]["version"].is_string(),
        "info needs title and version"
    );
    assert_eq!(doc["defaultContentType"], "application/json");
    let description = string(&doc["info"]["description"], "info.description");
    assert!(
        description.contains("point of view"),
        "info.description must say whose point of view the operations take"
    );
    let servers = object(&doc["servers"], "servers");
    assert!(!servers.is_empty(), "no server");
    for (name, server) in servers {
        assert_eq!(server["protocol"], "amqp", "servers.{name}");
        assert_eq!(server["protocolVersion"], "0-9-1", "servers.{name}");
        assert!(server["host"].is_string(), "servers.{name}.host");
    }
    for key in ["channels", "operations", "components"] {
        assert!(doc[key].is_object(), "no {key}");
    }
}

#[test]
fn every_ref_resolves() {
    let doc = document();
    let root = schemas_dir();
    let refs = all_refs(&doc);
    assert!(!refs.is_empty());
    let mut problems = Vec::new();
    for (at, target) in &refs {
        if let Some(pointer) = target.strip_prefix('#') {
            if doc.pointer(pointer).is_none() {
                problems.push(format!("{at}: {target} points at nothing"));
            }
            continue;
        }
        let (file, fragment) = target.split_once('#').unwrap_or((target.as_str(), ""));
        let path = Path::new(file);
        if target.contains("://") || !path.components().all(|c| matches!(c, Component::Normal(_))) {
            problems.push(format!(
                "{at}: {target} is not a plain path relative to schemas/"
            ));
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(path)) else {
            problems.push(format!("{at}: {target}: no file schemas/{file}"));
            continue;
        };
        match serde_json::from_str::<Value>(&text) {
            Err(e) => problems.push(format!("{at}: schemas/{file} is not JSON: {e}")),
            Ok(value) => {
                if !fragment.is_empty() && value.pointer(fragment).is_none() {
                    problems.push(format!("{at}: {target}: #{fragment} points at nothing"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "unresolved $refs in schemas/{DOCUMENT}:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_schema_file_is_the_payload_of_one_message() {
    let doc = document();
    let mut by_file: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, message) in messages(&doc) {
        if let Some(file) = payload_file(&message) {
            by_file.entry(file.to_owned()).or_default().push(key);
        }
    }
    let files = schema_files();
    for union in UNIONS {
        assert!(
            files.contains(union),
            "schemas/{union} is gone: update UNIONS in tests/asyncapi.rs"
        );
    }
    let expected: BTreeSet<String> = files
        .iter()
        .filter(|f| !UNIONS.contains(&f.as_str()))
        .cloned()
        .collect();
    let referenced: BTreeSet<String> = by_file.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&referenced).collect();
    let extra: Vec<_> = referenced.difference(&expected).collect();
    assert!(
        missing.is_empty(),
        "schema files no message of schemas/{DOCUMENT} uses: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "payloads that are not a schema file under inbound/ or out/: {extra:?}"
    );
    for (file, keys) in &by_file {
        assert_eq!(
            keys.len(),
            1,
            "{file} is the payload of several messages: {keys:?}"
        );
    }
}

#[test]
fn every_event_type_has_a_message_on_the_inbound_exchange() {
    let doc = document();
    let inbound = Names::new(&default_prefix()).inbound();
    let messages = messages(&doc);
    let channels = channels_of_messages(&doc);
    for kind in EVENT_TYPES {
        let file = format!("inbound/{kind}.json");
        let (key, message) = messages
            .iter()
            .find(|(_, m)| payload_file(m) == Some(file.as_str()))
            .unwrap_or_else(|| panic!("no message of schemas/{DOCUMENT} has the payload {file}"));
        assert_eq!(message["name"], kind, "components.messages.{key}.name");
        let on = channels
            .get(key)
            .unwrap_or_else(|| panic!("message {key} is on no channel"));
        assert_eq!(on.len(), 1, "message {key} is on several channels: {on:?}");
        let channel = &doc["channels"][&on[0]];
        assert_eq!(
            channel["bindings"]["amqp"]["exchange"]["name"],
            inbound.as_str(),
            "channel {} of {kind}",
            on[0]
        );
        let address = string(&channel["address"], &format!("channels.{}.address", on[0]));
        let wanted = if CHAT_EVENTS.contains(&kind) {
            "{accountId}.{chatType}.{chatId}"
        } else {
            "{accountId}"
        };
        assert_eq!(address, wanted, "routing key of {kind}");
        let schema = read_schema(&file);
        let description = string(&schema["description"], &format!("{file} description"));
        assert!(
            description.contains(&format!("routing key `{address}`")),
            "{file} names another routing key than channels.{}.address {address:?}",
            on[0]
        );
        let sent = object(&doc["operations"], "operations").values().any(|op| {
            op["action"] == "send"
                && op["messages"].as_array().is_some_and(|ms| {
                    ms.iter()
                        .any(|m| m["$ref"] == format!("#/channels/{}/messages/{key}", on[0]))
                })
        });
        assert!(sent, "no send operation publishes {kind}");
    }
    for (key, message) in &messages {
        if let Some(file) = payload_file(message).and_then(|f| f.strip_prefix("inbound/")) {
            let kind = file.strip_suffix(".json").expect(".json");
            assert!(
                EVENT_TYPES.contains(&kind),
                "message {key}: {kind} is not in EVENT_TYPES"
            );
        }
    }
}

#[test]
fn messages_say_what_their_schemas_say() {
    let doc = document();
    let prefix = default_prefix();
    let channels = channels_of_messages(&doc);
    for (key, message) in messages(&doc) {
        let on = channels
            .get(&key)
            .unwrap_or_else(|| panic!("message {key} is on no channel"));
        assert_eq!(on.len(), 1, "message {key} is on several channels: {on:?}");
        let channel = &doc["channels"][&on[0]];
        let Some(file) = payload_file(&message) else {
            continue;
        };
        let schema = read_schema(file);
        assert_eq!(
            message["payload"]["schemaFormat"], SCHEMA_FORMAT,
            "message {key}"
        );
        assert_eq!(
            schema["$schema"], DRAFT,
            "{file} is not the draft the schemaFormat names"
        );
        assert_eq!(message["contentType"], "application/json", "message {key}");
        assert_eq!(
            message["name"], schema["title"],
            "message {key} is named after its schema's title"
        );
        let description = string(&schema["description"], &format!("{file} description"));
        let amqp = &channel["bindings"]["amqp"];
        match amqp["is"].as_str() {
            Some("routingKey") => {
                let exchange = string(&amqp["exchange"]["name"], "exchange name");
                let p_name = exchange.replacen(&format!("{prefix}."), "P.", 1);
                assert!(
                    description.contains(&format!("`{p_name}`")),
                    "{file} does not name the exchange `{p_name}`"
                );
                let address = string(&channel["address"], "address")
                    .replace("{type}", string(&message["name"], "name"));
                assert!(
                    description.contains(&format!("routing key `{address}`")),
                    "{file} does not name the key `{address}`"
                );
            }
            Some("queue") => {
                match amqp["queue"]["name"].as_str() {
                    Some(queue) => {
                        let p_name = queue.replacen(&format!("{prefix}."), "P.", 1);
                        assert!(
                            description.contains(&format!("`{p_name}`")),
                            "{file} does not name the queue `{p_name}`"
                        );
                        if let Some(bound) = amqp.get("x-bound-to") {
                            let exchange = string(&bound["exchange"], "x-bound-to.exchange")
                                .replacen(&format!("{prefix}."), "P.", 1);
                            let key = string(&bound["routingKey"], "x-bound-to.routingKey");
                            assert!(
                                description.contains(&format!("`{exchange}`")),
                                "{file} does not name `{exchange}`"
                            );
                            assert!(
                                description.contains(&format!("routing key `{key}`")),
                                "{file} does not name `{key}`"
                            );
                        }
                    }
                    // The reply queue: its name is the request's `reply_to`.
                    None => assert!(
                        description.contains("reply_to"),
                        "{file} does not say it goes to `reply_to`"
                    ),
                }
            }
            other => panic!("channel {} has bindings.amqp.is {other:?}", on[0]),
        }
    }
}

#[test]
fn operations_use_the_messages_of_their_channel() {
    let doc = document();
    let channels = object(&doc["channels"], "channels");
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut check = |what: &str, op: &Value| {
        let channel_ref = string(&op["channel"]["$ref"], &format!("{what}.channel.$ref"));
        let channel = channel_ref
            .strip_prefix("#/channels/")
            .filter(|c| channels.contains_key(*c))
            .unwrap_or_else(|| panic!("{what}.channel {channel_ref} is not a channel"));
        let list = op["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("{what} lists no messages"));
        assert!(!list.is_empty(), "{what} lists no messages");
        for m in list {
            let target = string(&m["$ref"], &format!("{what}.messages[].$ref"));
            let key = target
                .strip_prefix(&format!("#/channels/{channel}/messages/"))
                .unwrap_or_else(|| {
                    panic!("{what}: {target} is not a message of its channel {channel}")
                });
            assert!(
                channels[channel]["messages"].get(key).is_some(),
                "{what}: {target} points at nothing"
            );
            used.insert(format!("{channel}/{key}"));
        }
    };
    for (name, op) in object(&doc["operations"], "operations") {
        let action = op["action"].as_str();
        assert!(
            matches!(action, Some("send" | "receive")),
            "operations.{name}.action {action:?}"
        );
        check(&format!("operations.{name}"), op);
        if op.get("reply").is_some() {
            check(&format!("operations.{name}.reply"), &op["reply"]);
        }
    }
    for (channel, body) in channels {
        for key in object(&body["messages"], &format!("channels.{channel}.messages")).keys() {
            assert!(
                used.contains(&format!("{channel}/{key}")),
                "no operation uses channels.{channel}.messages.{key}"
            );
        }
    }
    let on_channels = channels_of_messages(&doc);
    for key in object(&doc["components"]["messages"], "components.messages").keys() {
        assert!(
            on_channels.contains_key(key),
            "components.messages.{key} is on no channel"
        );
    }
}

#[test]
fn addresses_and_parameters_agree() {
    let doc = document();
    let mut used_params = BTreeSet::new();
    for (name, channel) in object(&doc["channels"], "channels") {
        let in_address = channel["address"]
            .as_str()
            .map(placeholders)
            .unwrap_or_default();
        let declared: BTreeSet<String> = channel
            .get("parameters")
            .map(|p| {
                object(p, &format!("channels.{name}.parameters"))
                    .keys()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            in_address, declared,
            "channels.{name}: the address's {{parameters}} and `parameters` differ"
        );
        for parameter in channel
            .get("parameters")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|p| p.values())
        {
            if let Some(target) = parameter["$ref"].as_str() {
                resolve(&doc, target);
                used_params.insert(
                    target
                        .trim_start_matches("#/components/parameters/")
                        .to_owned(),
                );
            }
        }
    }
    for key in object(&doc["components"]["parameters"], "components.parameters").keys() {
        assert!(
            used_params.contains(key),
            "components.parameters.{key} is not used"
        );
    }
    // The enums say what the schemas say.
    let chat_types = &read_schema("inbound/message.inbound.json")["$defs"]["ChatType"]["enum"];
    assert_eq!(
        &doc["components"]["parameters"]["chatType"]["enum"], chat_types,
        "chatType"
    );
    let crm = read_schema(CRM_UNION);
    let crm_types: BTreeSet<&str> = object(&crm["$defs"], CRM_UNION)
        .values()
        .filter_map(|d| d["title"].as_str())
        .collect();
    let in_doc: BTreeSet<&str> = doc["components"]["parameters"]["crmEventType"]["enum"]
        .as_array()
        .expect("crmEventType has an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        in_doc, crm_types,
        "crmEventType and the members of {CRM_UNION}"
    );
}

#[test]
fn names_are_the_workers_with_the_default_prefix() {
    let doc = document();
    let prefix = default_prefix();
    let names = Names::new(&prefix);
    let channel = |name: &str| &doc["channels"][name];
    let exchange = |name: &str| channel(name)["bindings"]["amqp"]["exchange"]["name"].clone();
    assert_eq!(exchange("inboundChat"), names.inbound().as_str());
    assert_eq!(exchange("inboundAccount"), names.inbound().as_str());
    assert_eq!(exchange("crmEvents"), names.crm().as_str());
    assert_eq!(exchange("outbound"), names.outbound().as_str());
    for name in ["inboundChat", "inboundAccount"] {
        assert_eq!(
            channel(name)["bindings"]["amqp"]["x-exchange-type"],
            "x-consistent-hash",
            "{name}"
        );
    }
    assert_eq!(
        channel("crmEvents")["bindings"]["amqp"]["exchange"]["type"],
        "topic"
    );
    assert_eq!(
        channel("outbound")["bindings"]["amqp"]["exchange"]["type"],
        "topic"
    );
    // Placeholders as ids: the braces are not escaped, so the names come out as templates.
    let id = |raw: &str| Id::parse(raw).expect("a valid id");
    let (account, user, channel_id) = (id("{accountId}"), id("{userId}"), id("{channelId}"));
    let user_queue = names.user_queue(&account, &user);
    assert_eq!(channel("userNotifications")["address"], user_queue.as_str());
    assert_eq!(
        channel("userNotifications")["bindings"]["amqp"]["queue"]["name"],
        user_queue.as_str()
    );
    let bound = &channel("userNotifications")["bindings"]["amqp"]["x-bound-to"];
    assert_eq!(bound["exchange"], names.notify().as_str());
    assert_eq!(bound["exchangeType"], "direct");
    assert_eq!(
        bound["routingKey"],
        names::user_key(&account, &user).as_str()
    );
    assert_eq!(
        channel("crmEvents")["address"],
        names::crm_key(&account, "{type}").as_str()
    );
    assert_eq!(
        channel("outbound")["address"],
        names::outbound_key(&account, &channel_id).as_str()
    );
    assert_eq!(channel("dead")["address"], names.dead().as_str());
    assert_eq!(
        channel("dead")["bindings"]["amqp"]["queue"]["name"],
        names.dead().as_str()
    );
    assert_eq!(
        channel("suitcaseReply")["address"],
        Value::Null,
        "the reply address is the request's reply_to"
    );
    // The prefix is said to be configurable wherever a prefixed name appears.
    let description = string(&doc["info"]["description"], "info.description");
    assert!(description.contains("SWITCHBOARD_PREFIX") && description.contains("--prefix"));
}

#[test]
fn the_id_escaping_is_the_workers() {
    let doc = document();
    let description = string(&doc["info"]["description"], "info.description");
    let parameter = string(
        &doc["components"]["parameters"]["accountId"]["description"],
        "accountId description",
    );
    for c in ['%', '.', '*', '#'] {
        let escaped = id_name_part(&c.to_string());
        assert_ne!(
            escaped,
            c.to_string(),
            "the worker does not escape {c:?} any more"
        );
        for (what, text) in [
            ("info.description", description),
            ("components.parameters.accountId", parameter),
        ] {
            assert!(
                text.contains(&format!("`{c}`")) && text.contains(&format!("`{escaped}`")),
                "{what} does not say that {c:?} becomes {escaped:?}"
            );
        }
    }
    let example = Names::new(&default_prefix()).user_queue(
        &Id::parse("acme.ru").unwrap(),
        &Id::parse("u-anna").unwrap(),
    );
    assert!(
        description.contains(&format!("`{example}`")),
        "info.description's example should be {example:?}"
    );
}

fn id_name_part(raw: &str) -> String {
    Id::parse(raw).expect("a valid id").name_part()
}

#[test]
fn the_suitcase_reply_is_correlated() {
    let doc = document();
    let reply = &doc["operations"]["requestSuitcase"]["reply"];
    assert_eq!(doc["operations"]["requestSuitcase"]["action"], "send");
    assert_eq!(reply["address"]["location"], "$message.header#/reply_to");
    assert_eq!(reply["channel"]["$ref"], "#/channels/suitcaseReply");
    let messages = messages(&doc);
    for (key, property) in [
        ("suitcaseRequested", "reply_to"),
        ("suitcaseRequested", "correlation_id"),
        ("suitcaseReply", "correlation_id"),
    ] {
        let message = &messages[key];
        assert_eq!(
            message["correlationId"]["location"], "$message.header#/correlation_id",
            "{key}"
        );
        let required = message["headers"]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{key} has no required headers"));
        assert!(
            required.contains(&json!(property)),
            "{key}: {property} is not a required header"
        );
    }
}

#[test]
fn the_dead_letter_header_takes_every_reason() {
    let doc = document();
    let messages = messages(&doc);
    let headers = &messages["deadLetter"]["headers"];
    let validator = jsonschema::draft7::new(headers)
        .unwrap_or_else(|e| panic!("deadLetter.headers does not compile: {e}"));
    let description = string(
        &headers["properties"]["x-switchboard-error"]["description"],
        "x-switchboard-error description",
    );
    for rejection in every_rejection() {
        let instance = json!({ "x-switchboard-error": rejection.header(), "x-switchboard-routing-key": "acme" });
        assert!(
            validator.is_valid(&instance),
            "deadLetter.headers refuses {:?}",
            rejection.header()
        );
        assert!(
            description.contains(&format!("`{}`", rejection.code())),
            "the header's description lacks {}",
            rejection.code()
        );
    }
    let bogus = json!({ "x-switchboard-error": "bogus: no such code", "x-switchboard-routing-key": "acme" });
    assert!(
        !validator.is_valid(&bogus),
        "deadLetter.headers accepts any code"
    );
    // Every inline header schema compiles.
    for (key, message) in &messages {
        if let Some(headers) = message.get("headers") {
            jsonschema::draft7::new(headers)
                .unwrap_or_else(|e| panic!("{key}.headers does not compile: {e}"));
        }
    }
}
