//! The generator of `schemas/inbound` and `schemas/out`: JSON Schemas (draft
//! 2020-12) of every message in and out of the worker, made from the Rust types
//! with `schemars` and tidied where serde's attributes (flatten, internal tags,
//! untagged, skipped `None`s) make the raw output loose or confusing.
//!
//! It lives with the tests, not in the worker's library: the worker never needs
//! it at run time. [`all`] is the whole set as `(file, schema)`; [`write_all`]
//! writes it under a directory. `files.rs` fails when the committed files differ
//! and rewrites them with `SWITCHBOARD_BLESS=1 cargo test --test schemas`.

mod inbound;
mod out;
mod render;
mod tidy;

use std::path::Path;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

pub use render::render;

/// The draft every schema is written in.
pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The file of the union of every inbound event.
pub const INBOUND_UNION: &str = "inbound/event.json";

/// The file of the union of every CRM event.
pub const CRM_UNION: &str = "out/crm-event.json";

/// The routing key of every event on `P.inbound`, as the schemas name it.
pub const INBOUND_KEY: &str = "{accountId}";

const PREFIX_NOTE: &str = "`P` is the worker's name prefix (`--prefix`, env `SWITCHBOARD_PREFIX`, \
    `switchboard` by default). Body: UTF-8 JSON, content_type `application/json`, persistent.";

/// How ids are written in queue names and routing keys (contract v1.1, "Ids in
/// AMQP names"); `schemas/README.md` gives the exact recipe of the cut.
const ESCAPE_NOTE: &str = "Ids inside queue names and routing keys are escaped: `%`, `.`, `*` and \
    `#` become `%25`, `%2E`, `%2A` and `%23`, so an id `a.b` is `a%2Eb` there and cannot pass for \
    two words; a name longer than 255 bytes is cut to its head plus `~` and a digest of the whole \
    (see `schemas/README.md`).";

/// Every schema as `(path under schemas/, schema)`: one file per inbound event
/// type, the union of them, and every message the worker publishes.
pub fn all() -> Vec<(&'static str, Value)> {
    let mut all = inbound::files();
    all.push(("out/notification.json", out::notification()));
    all.extend(out::crm());
    all.push(("out/message.send.json", out::message_send()));
    all.push(("out/suitcase.reply.json", out::suitcase_reply()));
    all
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

/// The `$id` of a file: `inbound/message.inbound.json` is
/// `urn:switchboard:v1:inbound:message.inbound`.
pub fn id_of(file: &str) -> String {
    format!(
        "urn:switchboard:v1:{}",
        file.trim_end_matches(".json").replace('/', ":")
    )
}

/// The raw schemars output for `T`, with `Timestamp` inlined.
fn root<T: JsonSchema>() -> Map<String, Value> {
    let schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = Value::from(schema);
    tidy::inline_timestamps(&mut value);
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
    let used = tidy::used_defs(&Value::Object(schema.clone()), defs);
    if !used.is_empty() {
        let defs: Map<String, Value> = used
            .into_iter()
            .map(|name| (name.clone(), defs[&name].clone()))
            .collect();
        schema.insert("$defs".into(), Value::Object(defs));
    }
    Value::Object(schema)
}

/// A union schema: `oneOf` over `$defs` entries.
fn union(names: &[String]) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert(
        "oneOf".into(),
        names
            .iter()
            .map(|name| serde_json::json!({ "$ref": format!("#/$defs/{name}") }))
            .collect(),
    );
    body
}
