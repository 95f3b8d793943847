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

/// An opaque, non-empty identifier of at most 128 printable characters: no
/// control characters and no Unicode format characters (Cf).
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
    /// Zero-width, bidi controls, BOM and the like: invisible, so two ids that
    /// look the same would differ, and a bidi control could reorder a log line.
    #[error("contains an invisible format character (U+{0:04X})")]
    FormatCharacter(u32),
}

/// Unicode's format characters (general category Cf, Unicode 15.1), as ranges.
const FORMAT_CHARACTERS: [(u32, u32); 21] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `c` is a Unicode format character (category Cf).
pub fn is_format(c: char) -> bool {
    let c = u32::from(c);
    FORMAT_CHARACTERS
        .iter()
        .any(|&(from, to)| (from..=to).contains(&c))
}

impl Id {
    pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
        let raw = raw.into();
        check(&raw)?;
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The empty id, which no event, value or name can carry (an id is never
    /// empty): a place in a plan filled in later, e.g. the manager of a
    /// round-robin turn ([`crate::state::TurnAdds::Template`]).
    pub fn slot() -> Self {
        Self(String::new())
    }

    /// Whether this is [`Id::slot`].
    pub fn is_slot(&self) -> bool {
        self.0.is_empty()
    }

    /// The id escaped for a Redis key or an AMQP name: every byte outside
    /// `[A-Za-z0-9_-]` becomes `%XX`, so `:`, `.`, `{`, `}`, `*`, spaces and
    /// non-ASCII can neither split a key, open a Cluster hash tag nor act as a
    /// routing-key word separator. `store/lua/snapshot.lua` and `channel.lua` escape
    /// the same way (tested with such ids in `tests/api/races.rs`).
    pub fn key_part(&self) -> String {
        escape(&self.0)
    }

    /// The id escaped for an AMQP queue name or routing key: only `%` and the
    /// topic-matching characters `.`, `*` and `#` become `%XX`, so typical ids
    /// read as they are while a dotted id still cannot pass for two words.
    pub fn name_part(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        self.push_name_part(&mut out);
        out
    }

    /// Appends [`Id::name_part`] to `out`: the id as it is when nothing in it
    /// needs escaping, the usual case.
    pub fn push_name_part(&self, out: &mut String) {
        let needs = |b: u8| matches!(b, b'%' | b'.' | b'*' | b'#');
        if !self.0.bytes().any(needs) {
            out.push_str(&self.0);
            return;
        }
        // The escaped characters are ASCII, so no byte of a multi-byte
        // character is one of them: the id is cut only around them.
        let mut from = 0;
        for (at, b) in self.0.bytes().enumerate() {
            if needs(b) {
                out.push_str(&self.0[from..at]);
                push_hex(out, b);
                from = at + 1;
            }
        }
        out.push_str(&self.0[from..]);
    }

    /// Appends [`Id::key_part`] to `out`.
    pub fn push_key_part(&self, out: &mut String) {
        push_escaped(out, &self.0);
    }
}

/// Whether [`escape`] keeps `byte` as it is.
fn plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// Appends `%XX` of `byte`.
fn push_hex(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0xF)]));
}

/// Appends [`escape`] of `raw` to `out`.
pub fn push_escaped(out: &mut String, raw: &str) {
    if raw.bytes().all(plain) {
        out.push_str(raw);
        return;
    }
    for byte in raw.bytes() {
        if plain(byte) {
            out.push(char::from(byte));
        } else {
            push_hex(out, byte);
        }
    }
}

/// Escapes any string the way [`Id::key_part`] does.
pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    push_escaped(&mut out, raw);
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
        match check(&raw) {
            Ok(()) => Ok(Self(raw)),
            Err(e) => Err(serde::de::Error::custom(format!("id {raw:?} {e}"))),
        }
    }
}

/// Whether `raw` may be an [`Id`], and if not, why.
fn check(raw: &str) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.is_ascii() {
        // The usual id, checked byte by byte: ASCII has no format characters.
        if raw.len() > MAX_ID_CHARS {
            return Err(IdError::TooLong);
        }
        if raw.bytes().any(|b| b.is_ascii_control()) {
            return Err(IdError::NotPrintable);
        }
        return Ok(());
    }
    if raw.chars().count() > MAX_ID_CHARS {
        return Err(IdError::TooLong);
    }
    if raw.chars().any(char::is_control) {
        return Err(IdError::NotPrintable);
    }
    if let Some(c) = raw.chars().find(|&c| is_format(c)) {
        return Err(IdError::FormatCharacter(u32::from(c)));
    }
    Ok(())
}

/// The schema's pattern: no control character, no format character of the BMP.
const ID_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb]+$";

impl JsonSchema for Id {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Id".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Opaque identifier: 1 to 128 printable characters. Control characters and Unicode format characters (general category Cf: zero-width, bidi controls, BOM, soft hyphen, tags, ...) are refused; the pattern lists those of the Basic Multilingual Plane.",
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_CHARS,
            "pattern": ID_PATTERN
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
    fn refuses_format_characters() {
        let refused: [(&str, u32); 14] = [
            ("a\u{200B}b", 0x200B),   // zero-width space
            ("a\u{200C}b", 0x200C),   // zero-width non-joiner
            ("a\u{200D}b", 0x200D),   // zero-width joiner
            ("\u{200E}ab", 0x200E),   // left-to-right mark
            ("ab\u{200F}", 0x200F),   // right-to-left mark
            ("a\u{202A}b", 0x202A),   // bidi embedding
            ("a\u{202E}b", 0x202E),   // right-to-left override
            ("a\u{2066}b", 0x2066),   // left-to-right isolate
            ("a\u{2069}b", 0x2069),   // pop directional isolate
            ("\u{FEFF}ab", 0xFEFF),   // byte order mark
            ("a\u{2060}b", 0x2060),   // word joiner
            ("a\u{00AD}b", 0x00AD),   // soft hyphen
            ("a\u{061C}b", 0x061C),   // Arabic letter mark
            ("a\u{E0041}b", 0xE0041), // tag latin capital A
        ];
        for (raw, code) in refused {
            assert_eq!(
                Id::parse(raw),
                Err(IdError::FormatCharacter(code)),
                "{raw:?}"
            );
        }
        let accepted = ["a b", "acme.ru", "Ünïcødé", "日本", "emoji 🙂", "a\u{2028}"];
        for raw in accepted {
            assert!(Id::parse(raw).is_ok(), "{raw:?}");
        }
    }

    #[test]
    fn the_schema_agrees_with_the_parser_on_every_bmp_character() {
        let schema = serde_json::to_value(schemars::schema_for!(Id)).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        for c in (0u32..=0xFFFF).filter_map(char::from_u32) {
            let raw = format!("a{c}b");
            assert_eq!(
                validator.is_valid(&serde_json::Value::String(raw.clone())),
                Id::parse(raw).is_ok(),
                "U+{:04X}",
                u32::from(c)
            );
        }
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

    /// The escapes as they were written first, one `format!` per character.
    fn reference_name_part(raw: &str) -> String {
        raw.chars()
            .map(|c| match c {
                '%' | '.' | '*' | '#' => format!("%{:02X}", c as u8),
                c => c.to_string(),
            })
            .collect()
    }

    fn reference_key_part(raw: &str) -> String {
        raw.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    #[test]
    fn fast_escapes_match_the_reference() {
        let ids = [
            "plain-id_42",
            "acme.ru",
            ".",
            "%%",
            "a#b*c.d%e",
            "é.ü#日本*🙂%",
            "ends.",
            ".starts",
            "}{: *é",
            "a b/c\\d\"e",
            "ÿ",
        ];
        for raw in ids {
            let id = Id::parse(raw).unwrap();
            assert_eq!(id.name_part(), reference_name_part(raw), "{raw:?}");
            assert_eq!(id.key_part(), reference_key_part(raw), "{raw:?}");
            let mut out = String::from("x.");
            id.push_name_part(&mut out);
            assert_eq!(out, format!("x.{}", reference_name_part(raw)));
            let mut out = String::from("k:");
            id.push_key_part(&mut out);
            assert_eq!(out, format!("k:{}", reference_key_part(raw)));
        }
    }
}
