//! `schemas/examples/`: one realistic example of every message, several where a
//! message has several forms (each notification type and reason, each suitcase
//! answer), and dead letters. Each validates against its schema and goes through
//! the worker's own Rust types and back unchanged.
//!
//! An example of the schema `F/N.json` is `examples/F/N.json`, or, for a
//! message with several forms, one file per form under `examples/F/N/`.

mod broken;
pub mod dead;

use std::collections::BTreeSet;

use serde_json::Value;
use switchboard::events;
use switchboard::output::{CrmEvent, MessageSend, Notification, SuitcaseReply};

use crate::files::{GENERATED_DIRS, generated};
use crate::generate::{CRM_UNION, INBOUND_UNION};
use crate::{dirs, errors, json_files, schemas_dir, validator};

/// One example file.
pub struct Example {
    /// Its path under `schemas/examples/`.
    pub file: String,
    /// The schema it illustrates, as a path under `schemas/`.
    pub schema: String,
    pub value: Value,
}

/// Every example of a JSON Schema (the dead letters are in [`dead`]).
pub fn examples() -> Vec<Example> {
    let root = schemas_dir().join("examples");
    let mut out = Vec::new();
    for sub in GENERATED_DIRS {
        for file in json_files(&root, sub) {
            out.push((file.clone(), file));
        }
        for dir in dirs(&root, sub) {
            let schema = format!("{dir}.json");
            let forms = json_files(&root, &dir);
            assert!(!forms.is_empty(), "examples/{dir}/ is empty");
            out.extend(forms.into_iter().map(|file| (file, schema.clone())));
        }
    }
    out.into_iter()
        .map(|(file, schema)| Example {
            value: crate::read_json(&format!("examples/{file}")),
            file,
            schema,
        })
        .collect()
}

/// The examples of one schema file.
pub fn examples_of(schema: &str) -> Vec<Example> {
    examples()
        .into_iter()
        .filter(|e| e.schema == schema)
        .collect()
}

/// An example's name: its file name without `.json` (`chat.new`, `found`).
pub fn form(file: &str) -> &str {
    let name = file.rsplit('/').next().expect("a file name");
    name.strip_suffix(".json").expect(".json")
}

/// Parses an example with the worker's own code and serializes it back.
/// `Err` is the worker's reason to refuse it.
pub fn through_rust(schema: &str, value: &Value) -> Result<Value, String> {
    fn back<T: serde::Serialize>(t: &T) -> Value {
        serde_json::to_value(t).expect("serializes")
    }
    fn from<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, String> {
        serde_json::from_value(value.clone()).map_err(|e| e.to_string())
    }
    if let Some(kind) = schema
        .strip_prefix("inbound/")
        .and_then(|f| f.strip_suffix(".json"))
    {
        let event = events::parse(value.to_string().as_bytes()).map_err(|e| e.header())?;
        assert_eq!(
            event.type_name(),
            kind,
            "an example of {schema} parses as another event type"
        );
        return Ok(back(&event));
    }
    match schema {
        "out/notification.json" => from::<Notification>(value).map(|n| back(&n)),
        "out/message.send.json" => from::<MessageSend>(value).map(|m| back(&m)),
        "out/suitcase.reply.json" => from::<SuitcaseReply>(value).map(|r| back(&r)),
        "out/contact.created.json"
        | "out/deal.created.json"
        | "out/contact.responsibleChanged.json" => {
            let event = from::<CrmEvent>(value)?;
            assert_eq!(
                format!("out/{}.json", event.type_name()),
                schema,
                "an example of {schema} parses as another type"
            );
            Ok(back(&event))
        }
        _ => {
            panic!("tests/schemas/examples knows no Rust type for {schema}: add it to through_rust")
        }
    }
}

/// Every schema has an example (unions excepted: they are checked with their
/// members' examples), every example illustrates a schema and validates, also
/// against its union.
#[test]
fn every_schema_has_examples_that_validate() {
    let generated = generated();
    let examples = examples();
    let mut illustrated = BTreeSet::new();
    for example in &examples {
        let file = &example.file;
        let schema = generated
            .get(example.schema.as_str())
            .unwrap_or_else(|| panic!("examples/{file} illustrates no schema"));
        assert!(
            ![INBOUND_UNION, CRM_UNION].contains(&example.schema.as_str()),
            "examples/{file}: a union is checked with its members' examples"
        );
        let problems = errors(&validator(&example.schema, schema), &example.value);
        assert!(
            problems.is_empty(),
            "examples/{file} does not match its schema:\n{}",
            problems.join("\n")
        );
        illustrated.insert(example.schema.as_str());
    }
    for file in generated.keys() {
        if ![INBOUND_UNION, CRM_UNION].contains(file) {
            assert!(
                illustrated.contains(file),
                "schemas/{file} has no example under examples/"
            );
        }
    }
    for union in [INBOUND_UNION, CRM_UNION] {
        let check = validator(union, &generated[union]);
        for member in crate::files::members(union, &generated[union]) {
            for example in examples.iter().filter(|e| e.schema == member) {
                let problems = errors(&check, &example.value);
                assert!(
                    problems.is_empty(),
                    "examples/{} does not match {union}:\n{}",
                    example.file,
                    problems.join("\n")
                );
            }
        }
    }
}

/// Every example parses into the worker's type, as the right variant, and
/// serializes back to itself (so no field of an example is misspelt or ignored).
#[test]
fn every_example_parses_into_the_rust_type() {
    for example in examples() {
        let back = through_rust(&example.schema, &example.value)
            .unwrap_or_else(|e| panic!("examples/{} is refused: {e}", example.file));
        assert_eq!(
            back, example.value,
            "examples/{} does not survive a round trip through the Rust type",
            example.file
        );
    }
}

/// Integrators get an example of every notification type, and of
/// `message.rejected` with every reason, named after what it shows:
/// `notification/chat.new.json`, `notification/message.rejected.read_only.json`.
#[test]
fn every_notification_type_and_reason_has_an_example() {
    let schema = &generated()["out/notification.json"];
    let enum_of = |def: &str| -> Vec<String> {
        schema["$defs"][def]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("out/notification.json has no $defs/{def}/enum"))
            .iter()
            .map(|v| v.as_str().expect("a string").to_owned())
            .collect()
    };
    let mut wanted = BTreeSet::new();
    for kind in enum_of("NotificationType") {
        if kind == "message.rejected" {
            wanted.extend(
                enum_of("RejectReason")
                    .iter()
                    .map(|r| format!("{kind}.{r}")),
            );
        } else {
            wanted.insert(kind);
        }
    }
    let mut have = BTreeSet::new();
    for example in examples_of("out/notification.json") {
        let value = &example.value;
        let shown = match value["reason"].as_str() {
            Some(reason) => format!("{}.{reason}", value["type"].as_str().expect("a type")),
            None => value["type"].as_str().expect("a type").to_owned(),
        };
        assert_eq!(
            form(&example.file),
            shown,
            "examples/{} shows {shown}",
            example.file
        );
        have.insert(shown);
    }
    assert_eq!(
        have, wanted,
        "notification examples (left) and types and reasons (right)"
    );
}

/// Both forms of the suitcase answer have examples: `found` and each error.
#[test]
fn every_suitcase_form_has_an_example() {
    let schema = &generated()["out/suitcase.reply.json"];
    let mut wanted: BTreeSet<String> = schema["$defs"]["SuitcaseError"]["enum"]
        .as_array()
        .expect("SuitcaseError has an enum")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect();
    wanted.insert("found".into());
    let mut have = BTreeSet::new();
    for example in examples_of("out/suitcase.reply.json") {
        let shown = match example.value["error"].as_str() {
            Some(error) => error.to_owned(),
            None => "found".to_owned(),
        };
        assert_eq!(
            form(&example.file),
            shown,
            "examples/{} shows {shown}",
            example.file
        );
        have.insert(shown);
    }
    assert_eq!(have, wanted, "suitcase examples (left) and forms (right)");
}
