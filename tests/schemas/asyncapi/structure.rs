//! The document's shape: AsyncAPI 3.0.0, every `$ref` resolves, one message per
//! schema file, operations on their own channel's messages, addresses that
//! match their parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use serde_json::Value;

use super::{
    DOCUMENT, SCHEMA_FORMAT, UNIONS, all_refs, channels_of_messages, default_prefix, document,
    messages, object, payload_file, placeholders, resolve, schema_files, string,
};
use crate::generate::{CRM_UNION, DRAFT};
use crate::{read_json, schemas_dir};

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
            "schemas/{union} is gone: update UNIONS in tests/schemas/asyncapi/mod.rs"
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
        let schema = read_json(file);
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
    // The enum says what the schemas say.
    let crm = read_json(CRM_UNION);
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
