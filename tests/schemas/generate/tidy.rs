//! Fixes applied to schemars' raw output: only the `$defs` a file uses, `type`
//! constants of tagged enums, required link fields, no `null` for fields the
//! worker omits, `Timestamp` as a plain date-time string.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// The names of the `$defs` a schema reaches, following refs through `defs`.
pub fn used_defs(schema: &Value, defs: &Map<String, Value>) -> BTreeSet<String> {
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
pub fn add_type_const(body: &mut Map<String, Value>, kind: &str) {
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
pub fn require(schema: &mut Value, field: &str) {
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
pub fn omitted_not_null(body: &mut Map<String, Value>) {
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
pub fn inline_timestamps(value: &mut Value) {
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
pub fn pascal(kind: &str) -> String {
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
