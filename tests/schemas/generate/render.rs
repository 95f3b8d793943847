//! How a schema is written to disk: pretty JSON with keywords in a fixed,
//! readable order, whatever serde_json's map type.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// A schema as it is written to disk: pretty JSON, keywords in a fixed,
/// readable order (`$schema`, `$id`, `title`, `description`, `type` first,
/// `$defs` last), a final newline. Independent of serde_json's `preserve_order`.
pub fn render(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&Ordered(schema)).expect("a JSON value serializes");
    text.push('\n');
    text
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
