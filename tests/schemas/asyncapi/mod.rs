//! `schemas/asyncapi.json`: the AsyncAPI 3.0.0 document says the same thing as
//! the JSON Schemas next to it, as the examples and as the worker's own names.
//!
//! - [`structure`]: it is AsyncAPI 3.0.0 JSON; every `$ref` resolves (`#/...`
//!   inside the document, anything else to a file under `schemas/`); every
//!   schema file under `schemas/inbound` and `schemas/out` is the payload of
//!   exactly one message (the two unions, `inbound/event.json` and
//!   `out/crm-event.json`, are left out on purpose: a channel's `messages` map
//!   is already the union); operations only use messages of their own channel;
//!   addresses and parameters agree;
//! - [`inbound`]: every event type in `EVENT_TYPES` is a message of the one
//!   inbound channel, address `{accountId}`, with a `send` operation; the
//!   fanout, alternate-exchange and hash topology is the worker's; the suitcase
//!   `reply_to` rule and its correlation;
//! - [`names`]: the exchange and queue names are the worker's (default prefix),
//!   the id escaping and the cut of long names are the worker's, and the
//!   dead-letter header accepts every reason the worker gives;
//! - [`examples`]: each message's `examples` are the files under
//!   `schemas/examples/`, which `tests/schemas/examples` checks.
//!
//! Validation against the official AsyncAPI 3.0.0 JSON Schema needs a download
//! and is done by `.ci/asyncapi-check`, not here.

mod examples;
mod inbound;
mod names;
mod structure;

use std::collections::{BTreeMap, BTreeSet};

use clap::{Args, Command};
use serde_json::Value;
use switchboard::Config;
use switchboard::events::Rejection;

use crate::generate::{CRM_UNION, INBOUND_UNION};
use crate::schemas_dir;

const DOCUMENT: &str = "asyncapi.json";

/// The `schemaFormat` of every JSON Schema payload.
const SCHEMA_FORMAT: &str = "application/schema+json;version=draft-2020-12";

/// Schema files that no message needs to reference (see the module doc).
const UNIONS: [&str; 2] = [INBOUND_UNION, CRM_UNION];

pub fn document() -> Value {
    crate::read_json(DOCUMENT)
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
pub fn messages(doc: &Value) -> BTreeMap<String, Value> {
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
