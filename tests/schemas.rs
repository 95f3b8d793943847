//! `schemas/`: the committed JSON Schemas are exactly what `switchboard::schemas`
//! generates, they are valid draft 2020-12, and every example both validates
//! and parses into the worker's Rust type, which agrees with the schema on what
//! is missing or malformed.
//!
//! Regenerate the schemas with `SWITCHBOARD_BLESS=1 cargo test --test schemas`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jsonschema::Validator;
use serde_json::{Value, json};
use switchboard::events::{self, EVENT_TYPES};
use switchboard::ids::Id;
use switchboard::model::ChatType;
use switchboard::output::{
    CrmEvent, MessageSend, Notification, NotificationType, RejectReason, SuitcaseDeal,
    SuitcaseError, SuitcaseReply,
};
use switchboard::schemas::{self, CRM_UNION, INBOUND_UNION};

const BLESS: &str = "SWITCHBOARD_BLESS=1 cargo test --test schemas";

/// Folders of `schemas/` that hold generated files only.
const GENERATED_DIRS: [&str; 2] = ["inbound", "out"];

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// `*.json` files under `schemas/{sub}`, as paths relative to `root`.
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

fn generated() -> BTreeMap<&'static str, Value> {
    let all = schemas::all();
    let count = all.len();
    let map: BTreeMap<_, _> = all.into_iter().collect();
    assert_eq!(map.len(), count, "two schemas share a file name");
    map
}

/// The examples, by the schema file they illustrate.
fn examples() -> BTreeMap<String, Value> {
    let root = schemas_dir().join("examples");
    GENERATED_DIRS
        .iter()
        .flat_map(|sub| json_files(&root, sub))
        .map(|file| {
            let text =
                std::fs::read_to_string(root.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("examples/{file} is not JSON: {e}"));
            (file, value)
        })
        .collect()
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

/// The member files of a union schema (`inbound/event.json`, `out/crm-event.json`).
fn members(union_file: &str, union: &Value) -> Vec<String> {
    let folder = union_file.rsplit_once('/').expect("a folder").0;
    union["oneOf"]
        .as_array()
        .expect("a union has oneOf")
        .iter()
        .map(|variant| {
            let name = variant["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .expect("a $defs ref");
            let title = union["$defs"][name]["title"]
                .as_str()
                .expect("a titled variant");
            format!("{folder}/{title}.json")
        })
        .collect()
}

/// Parses an example with the worker's own code and serializes it back.
/// `Err` is the worker's reason to refuse it.
fn through_rust(file: &str, value: &Value) -> Result<Value, String> {
    fn back<T: serde::Serialize>(t: &T) -> Value {
        serde_json::to_value(t).expect("serializes")
    }
    fn from<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, String> {
        serde_json::from_value(value.clone()).map_err(|e| e.to_string())
    }
    if let Some(kind) = file
        .strip_prefix("inbound/")
        .and_then(|f| f.strip_suffix(".json"))
    {
        let event = events::parse(value.to_string().as_bytes()).map_err(|e| e.header())?;
        assert_eq!(
            event.type_name(),
            kind,
            "examples/{file} parses as another event type"
        );
        return Ok(back(&event));
    }
    match file {
        "out/notification.json" => from::<Notification>(value).map(|n| back(&n)),
        "out/message.send.json" => from::<MessageSend>(value).map(|m| back(&m)),
        "out/suitcase.reply.json" => from::<SuitcaseReply>(value).map(|r| back(&r)),
        "out/contact.created.json"
        | "out/deal.created.json"
        | "out/contact.responsibleChanged.json" => {
            let event = from::<CrmEvent>(value)?;
            assert_eq!(
                format!("out/{}.json", event.type_name()),
                file,
                "examples/{file} parses as another type"
            );
            Ok(back(&event))
        }
        _ => panic!("tests/schemas.rs knows no Rust type for {file}: add it to through_rust"),
    }
}

/// (a) The committed schemas are the generated ones; with `SWITCHBOARD_BLESS=1`
/// they are rewritten instead.
#[test]
fn committed_schemas_are_the_generated_ones() {
    let dir = schemas_dir();
    let generated = generated();
    let committed: Vec<String> = GENERATED_DIRS
        .iter()
        .flat_map(|sub| json_files(&dir, sub))
        .collect();
    let stale: Vec<&String> = committed
        .iter()
        .filter(|f| !generated.contains_key(f.as_str()))
        .collect();
    if std::env::var("SWITCHBOARD_BLESS").as_deref() == Ok("1") {
        schemas::write_all(&dir).expect("schemas written");
        for file in stale {
            std::fs::remove_file(dir.join(file)).expect("stale schema removed");
        }
        return;
    }
    let mut problems = Vec::new();
    for (file, schema) in &generated {
        match std::fs::read_to_string(dir.join(file)) {
            Ok(text) if text == schemas::render(schema) => {}
            Ok(_) => problems.push(format!("schemas/{file} differs from the generated schema")),
            Err(e) => problems.push(format!("schemas/{file}: {e}")),
        }
    }
    problems.extend(
        stale
            .iter()
            .map(|f| format!("schemas/{f} is not generated any more")),
    );
    assert!(
        problems.is_empty(),
        "{}\nRegenerate with: {BLESS}",
        problems.join("\n")
    );
}

/// (b) Every schema is a valid draft 2020-12 document with an `$id`, a title
/// and a description.
#[test]
fn schemas_are_valid_draft_2020_12() {
    for (file, schema) in generated() {
        assert_eq!(schema["$schema"], schemas::DRAFT, "{file}");
        assert_eq!(schema["$id"], schemas::id_of(file), "{file}");
        assert!(
            schema["title"].is_string() && schema["description"].is_string(),
            "{file}"
        );
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!(
                "{file} is not a valid draft 2020-12 schema: {e} at {}",
                e.instance_path()
            );
        }
        validator(file, &schema);
    }
}

/// (b) One example per schema (unions excepted: they are checked with their
/// members' examples), and every example validates.
#[test]
fn every_example_validates() {
    let generated = generated();
    let examples = examples();
    for file in examples.keys() {
        assert!(
            generated.contains_key(file.as_str()),
            "examples/{file} illustrates no schema"
        );
    }
    for union in [INBOUND_UNION, CRM_UNION] {
        assert!(
            !examples.contains_key(union),
            "examples/{union}: a union is checked with its members' examples"
        );
    }
    for (file, schema) in &generated {
        if [INBOUND_UNION, CRM_UNION].contains(file) {
            continue;
        }
        let example = examples
            .get(*file)
            .unwrap_or_else(|| panic!("schemas/examples/{file} is missing"));
        let problems = errors(&validator(file, schema), example);
        assert!(
            problems.is_empty(),
            "examples/{file} does not match its schema:\n{}",
            problems.join("\n")
        );
    }
    for union in [INBOUND_UNION, CRM_UNION] {
        let check = validator(union, &generated[union]);
        for member in members(union, &generated[union]) {
            let example = &examples[&member];
            let problems = errors(&check, example);
            assert!(
                problems.is_empty(),
                "examples/{member} does not match {union}:\n{}",
                problems.join("\n")
            );
        }
    }
}

/// (c) Every example parses into the worker's type, as the right variant, and
/// serializes back to itself (so no field of an example is misspelt or ignored).
#[test]
fn every_example_parses_into_the_rust_type() {
    for (file, example) in examples() {
        let back = through_rust(&file, &example)
            .unwrap_or_else(|e| panic!("examples/{file} is refused: {e}"));
        assert_eq!(
            back, example,
            "examples/{file} does not survive a round trip through the Rust type"
        );
    }
}

/// Every variant of an example with one field removed or one string replaced.
fn mutations(value: &Value) -> Vec<(String, Value)> {
    fn walk(path: &str, node: &Value, root: &Value, out: &mut Vec<(String, Value)>) {
        let mut edit = |label: String, change: &dyn Fn(&mut Value)| {
            let mut copy = root.clone();
            change(copy.pointer_mut(path).expect("the path exists"));
            out.push((label, copy));
        };
        match node {
            Value::Object(map) => {
                for key in map.keys() {
                    edit(format!("{path}/{key} removed"), &|v| {
                        v.as_object_mut().expect("an object").remove(key);
                    });
                }
                for (key, child) in map {
                    walk(&format!("{path}/{key}"), child, root, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(&format!("{path}/{i}"), child, root, out);
                }
            }
            Value::String(_) => {
                for (what, bad) in [
                    ("empty", String::new()),
                    ("129 chars", "x".repeat(129)),
                    ("a control char", "a\u{1}b".into()),
                ] {
                    edit(format!("{path} {what}"), &|v| {
                        *v = Value::String(bad.clone())
                    });
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", value, value, &mut out);
    out
}

/// (d) Schema and Rust agree on broken input: for an inbound event the schema
/// accepts exactly what `events::parse` accepts; for an output the schema is
/// never looser than the Rust type. Removing a required field always fails.
#[test]
fn schema_and_rust_agree_on_broken_examples() {
    let generated = generated();
    for (file, example) in examples() {
        let check = validator(&file, &generated[file.as_str()]);
        let required = generated[file.as_str()]["required"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for field in required.iter().filter_map(Value::as_str) {
            let mut broken = example.clone();
            broken.as_object_mut().expect("an object").remove(field);
            assert!(
                !check.is_valid(&broken),
                "examples/{file} without {field} passes its schema"
            );
        }
        for (what, broken) in mutations(&example) {
            let schema_ok = check.is_valid(&broken);
            let rust = through_rust(&file, &broken);
            if file.starts_with("inbound/") {
                assert_eq!(
                    schema_ok,
                    rust.is_ok(),
                    "examples/{file} with {what}: the schema says {schema_ok}, events::parse says {rust:?}"
                );
            } else {
                assert!(
                    rust.is_ok() || !schema_ok,
                    "examples/{file} with {what}: the Rust type refuses it ({rust:?}) but the schema accepts it"
                );
            }
        }
    }
}

/// (d) An inbound event of an unknown type fails the schema and `parse`.
#[test]
fn an_unknown_type_fails_schema_and_parse() {
    let generated = generated();
    let union = validator(INBOUND_UNION, &generated[INBOUND_UNION]);
    for (file, example) in examples()
        .into_iter()
        .filter(|(f, _)| f.starts_with("inbound/"))
    {
        let mut unknown = example.clone();
        unknown["type"] = json!("deal.deleted");
        assert!(
            !union.is_valid(&unknown),
            "{INBOUND_UNION} accepts examples/{file} with type deal.deleted"
        );
        assert!(
            !validator(&file, &generated[file.as_str()]).is_valid(&unknown),
            "{file} accepts type deal.deleted"
        );
        let err = events::parse(unknown.to_string().as_bytes())
            .expect_err("parse accepts an unknown type");
        assert_eq!(err.code(), "unknown_type", "{file}: {err}");
        // The right shape under another event's type is refused too.
        let other = EVENT_TYPES
            .iter()
            .find(|t| format!("inbound/{t}.json") != file)
            .expect("another type");
        let mut mislabelled = example.clone();
        mislabelled["type"] = json!(other);
        assert!(
            !validator(&file, &generated[file.as_str()]).is_valid(&mislabelled),
            "{file} accepts type {other}"
        );
    }
}

/// (e) Every inbound event type has its schema and its example, so no event can
/// be added without them.
#[test]
fn every_event_type_has_a_schema_and_an_example() {
    let generated = generated();
    let examples = examples();
    for kind in EVENT_TYPES {
        let file = format!("inbound/{kind}.json");
        let schema = generated
            .get(file.as_str())
            .unwrap_or_else(|| panic!("no schema {file}: see src/schemas.rs"));
        assert_eq!(schema["title"], kind, "{file}");
        assert_eq!(schema["properties"]["type"]["const"], kind, "{file}");
        assert_eq!(schema["required"][0], "type", "{file}");
        assert!(
            examples.contains_key(&file),
            "no example schemas/examples/{file}"
        );
    }
    let inbound = members(INBOUND_UNION, &generated[INBOUND_UNION]);
    let expected: Vec<String> = EVENT_TYPES
        .iter()
        .map(|t| format!("inbound/{t}.json"))
        .collect();
    assert_eq!(
        inbound, expected,
        "{INBOUND_UNION} and EVENT_TYPES disagree"
    );
}

fn id(raw: &str) -> Id {
    Id::parse(raw).expect("a valid id")
}

/// What the worker writes when optional parts are missing also validates:
/// notifications without the optional fields, a suitcase without links, the
/// error replies.
#[test]
fn worker_output_with_absent_parts_validates() {
    let generated = generated();
    let occurred_at = serde_json::from_value(json!("2026-03-04T19:02:55Z")).expect("a timestamp");
    let note = |kind, reason| Notification {
        notification_id: id("n-1"),
        kind,
        account_id: id("acme.ru"),
        user_id: id("u-anna"),
        channel_id: id("wa:support"),
        chat_type: ChatType::Whatsapp,
        chat_id: id("79031112233@c.us"),
        contact_id: None,
        deal_id: None,
        message_id: None,
        text: None,
        reason,
        occurred_at: Clone::clone(&occurred_at),
    };
    let notifications = validator("out/notification.json", &generated["out/notification.json"]);
    let valid =
        |n: &Notification| notifications.is_valid(&serde_json::to_value(n).expect("serializes"));
    assert!(valid(&note(NotificationType::ChatWithdrawn, None)));
    assert!(valid(&note(
        NotificationType::MessageRejected,
        Some(RejectReason::ClaimedByOther)
    )));
    // The contract ties `reason` to `message.rejected`.
    assert!(!valid(&note(NotificationType::MessageRejected, None)));
    assert!(!valid(&note(
        NotificationType::ChatNew,
        Some(RejectReason::ReadOnly)
    )));

    let replies = validator(
        "out/suitcase.reply.json",
        &generated["out/suitcase.reply.json"],
    );
    let no_links = SuitcaseReply::Found {
        contact_id: id("1042"),
        deals: vec![SuitcaseDeal {
            deal_id: id("2001"),
            name: "Двери".into(),
            uri: None,
            closed: false,
            pipeline_id: id("7019384"),
            stage_id: id("58210445"),
        }],
        new_deal_uri: None,
    };
    for reply in [
        no_links,
        SuitcaseReply::Error {
            error: SuitcaseError::NoAccess,
        },
        SuitcaseReply::Error {
            error: SuitcaseError::UnknownChat,
        },
    ] {
        let value = serde_json::to_value(&reply).expect("serializes");
        let problems = errors(&replies, &value);
        assert!(
            problems.is_empty(),
            "{value} fails out/suitcase.reply.json: {}",
            problems.join("\n")
        );
    }
    // Exactly one form: a mix of both is refused.
    assert!(!replies.is_valid(
        &json!({ "contactId": "1042", "deals": [], "newDealUri": null, "error": "no_access" })
    ));
}
