//! Identifiers as they arrive on the wire, validated once at the edge.
//!
//! The contract lets ids be any printable characters (up to 128), so nothing past
//! parsing may splice one raw into a Redis key or an AMQP name: [`Id::key_part`]
//! gives the escaped form that cannot leave its place.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// Longest id the contract allows, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// An opaque, non-empty identifier of at most 128 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(String);

/// Why a string is not an [`Id`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {MAX_ID_CHARS} characters")]
    TooLong,
    #[error("contains a control character")]
    NotPrintable,
}

impl Id {
    pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        if raw.chars().count() > MAX_ID_CHARS {
            return Err(IdError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(IdError::NotPrintable);
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id escaped for a Redis key or an AMQP name: every byte outside
    /// `[A-Za-z0-9_-]` becomes `%XX`, so `:`, `.`, `{`, `}`, `*`, spaces and
    /// non-ASCII can neither split a key, open a Cluster hash tag nor act as a
    /// routing-key word separator. `store/lua/keys.lua` escapes the same way.
    pub fn key_part(&self) -> String {
        escape(&self.0)
    }

    /// The id escaped for an AMQP queue name or routing key: only `%` and the
    /// topic-matching characters `.`, `*` and `#` become `%XX`, so typical ids
    /// read as they are while a dotted id still cannot pass for two words.
    pub fn name_part(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for c in self.0.chars() {
            match c {
                '%' | '.' | '*' | '#' => out.push_str(&format!("%{:02X}", c as u8)),
                c => out.push(c),
            }
        }
        out
    }
}

/// Escapes any string the way [`Id::key_part`] does.
pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Id::parse(raw.clone()).map_err(|e| serde::de::Error::custom(format!("id {raw:?} {e}")))
    }
}

impl JsonSchema for Id {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Opaque identifier: 1 to 128 printable characters.",
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_CHARS,
            "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_long_and_control() {
        assert_eq!(Id::parse(""), Err(IdError::Empty));
        assert_eq!(Id::parse("x".repeat(129)), Err(IdError::TooLong));
        assert!(Id::parse("é".repeat(128)).is_ok());
        assert_eq!(Id::parse("a\nb"), Err(IdError::NotPrintable));
    }

    #[test]
    fn escaped_parts_keep_their_place() {
        let id = Id::parse("a:b.{c}* d/é%").unwrap();
        let part = id.key_part();
        assert_eq!(part, "a%3Ab%2E%7Bc%7D%2A%20d%2F%C3%A9%25");
        assert!(!part.contains([':', '.', '{', '}', '*', ' ']));
        // Distinct ids never collide once escaped.
        assert_ne!(escape("a%3A"), escape("a:"));
        assert_eq!(id.name_part(), "a:b%2E{c}%2A d/é%25");
    }
}
