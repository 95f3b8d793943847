//! `schemas/`: the documentation of the wire format, checked against the
//! worker's own code. No services needed.
//!
//! - [`generate`]: the generator of the JSON Schemas (dev-only: it is not part of
//!   the worker's library);
//! - [`files`]: the committed schemas are exactly the generated ones, valid
//!   draft 2020-12, one per event type, and name the routing key;
//! - [`examples`]: every example validates against its schema and goes through
//!   the worker's Rust types, which agree with the schema on broken input;
//!   there is an example of every notification type and reason, both suitcase
//!   errors and dead letters;
//! - [`asyncapi`]: `schemas/asyncapi.json` says what the schemas, the examples
//!   and the worker's names say.
//!
//! Regenerate the schemas with `SWITCHBOARD_BLESS=1 cargo test --test schemas`.

mod asyncapi;
mod examples;
mod files;
mod generate;

use std::path::{Path, PathBuf};

use jsonschema::Validator;
use serde_json::Value;

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// A JSON file under `schemas/`.
fn read_json(file: &str) -> Value {
    let text = std::fs::read_to_string(schemas_dir().join(file))
        .unwrap_or_else(|e| panic!("schemas/{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("schemas/{file} is not JSON: {e}"))
}

/// `*.json` files directly under `root/sub`, as paths relative to `root`, sorted.
fn json_files(root: &Path, sub: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
        return Vec::new();
    };
    let mut files: Vec<String> = entries
        .map(|e| {
            e.expect("readable dir entry")
                .file_name()
                .into_string()
                .expect("UTF-8 file name")
        })
        .filter(|name| name.ends_with(".json"))
        .map(|name| format!("{sub}/{name}"))
        .collect();
    files.sort();
    files
}

/// Folders directly under `root/sub`, as paths relative to `root`, sorted.
fn dirs(root: &Path, sub: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
        return Vec::new();
    };
    let mut dirs: Vec<String> = entries
        .map(|e| e.expect("readable dir entry"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| {
            format!(
                "{sub}/{}",
                e.file_name().into_string().expect("UTF-8 file name")
            )
        })
        .collect();
    dirs.sort();
    dirs
}

fn validator(file: &str, schema: &Value) -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("{file} does not compile: {e}"))
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}
