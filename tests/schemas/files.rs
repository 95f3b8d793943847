//! The committed schemas under `schemas/inbound` and `schemas/out` are exactly
//! what [`generate`] makes, valid draft 2020-12, one per event type, and they
//! state the routing key and how ids are written in it.

use std::collections::BTreeMap;

use serde_json::Value;
use switchboard::events::EVENT_TYPES;

use crate::generate::{self, CRM_UNION, INBOUND_KEY, INBOUND_UNION};
use crate::{json_files, schemas_dir};

const BLESS: &str = "SWITCHBOARD_BLESS=1 cargo test --test schemas";

/// Folders of `schemas/` that hold generated files only.
pub const GENERATED_DIRS: [&str; 2] = ["inbound", "out"];

/// Every generated schema, by its file under `schemas/`.
pub fn generated() -> BTreeMap<&'static str, Value> {
    let all = generate::all();
    let count = all.len();
    let map: BTreeMap<_, _> = all.into_iter().collect();
    assert_eq!(map.len(), count, "two schemas share a file name");
    map
}

/// The member files of a union schema (`inbound/event.json`, `out/crm-event.json`).
pub fn members(union_file: &str, union: &Value) -> Vec<String> {
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

/// The committed schemas are the generated ones; with `SWITCHBOARD_BLESS=1`
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
        generate::write_all(&dir).expect("schemas written");
        for file in stale {
            std::fs::remove_file(dir.join(file)).expect("stale schema removed");
        }
        return;
    }
    let mut problems = Vec::new();
    for (file, schema) in &generated {
        match std::fs::read_to_string(dir.join(file)) {
            Ok(text) if text == generate::render(schema) => {}
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

/// Every schema is a valid draft 2020-12 document with an `$id`, a title
/// and a description.
#[test]
fn schemas_are_valid_draft_2020_12() {
    for (file, schema) in generated() {
        assert_eq!(schema["$schema"], generate::DRAFT, "{file}");
        assert_eq!(schema["$id"], generate::id_of(file), "{file}");
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
        crate::validator(file, &schema);
    }
}

/// Every inbound event type has its schema, and the union lists exactly them,
/// so no event can be added without a schema.
#[test]
fn every_event_type_has_a_schema() {
    let generated = generated();
    for kind in EVENT_TYPES {
        let file = format!("inbound/{kind}.json");
        let schema = generated
            .get(file.as_str())
            .unwrap_or_else(|| panic!("no schema {file}: see tests/schemas/generate/inbound.rs"));
        assert_eq!(schema["title"], kind, "{file}");
        assert_eq!(schema["properties"]["type"]["const"], kind, "{file}");
        assert_eq!(schema["required"][0], "type", "{file}");
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
    assert!(generated.contains_key(CRM_UNION));
}

/// Contract v1.1: every inbound event, account event or chat event, goes with
/// the routing key `{accountId}`, escaped as in AMQP names, and a key that is
/// not the event's own account's is refused. Every inbound schema says so, and
/// none names the v1 chat key.
#[test]
fn inbound_schemas_state_the_one_routing_key_and_its_escaping() {
    for (file, schema) in generated() {
        if !file.starts_with("inbound/") {
            continue;
        }
        let description = schema["description"].as_str().expect("a description");
        for needed in [
            format!("routing key `{INBOUND_KEY}`"),
            "`P.inbound`".to_owned(),
            "reason `invalid`".to_owned(),
        ] {
            assert!(
                description.contains(&needed),
                "{file} does not say {needed}"
            );
        }
        for (c, escaped) in [("%", "%25"), (".", "%2E"), ("*", "%2A"), ("#", "%23")] {
            assert!(
                description.contains(&format!("`{c}`"))
                    && description.contains(&format!("`{escaped}`")),
                "{file} does not say that {c:?} is written {escaped:?}"
            );
        }
        assert!(
            !description.contains("{chatType}.{chatId}"),
            "{file} still names the v1 chat key"
        );
    }
    let suitcase = &generated()["inbound/suitcase.requested.json"]["description"];
    let suitcase = suitcase.as_str().expect("a description");
    for needed in ["`amq.gen-…`", "`amq.rabbitmq.reply-to…`"] {
        assert!(
            suitcase.contains(needed),
            "suitcase.requested does not name {needed} as an allowed reply_to"
        );
    }
}
