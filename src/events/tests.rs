//! The parse at the edge: each kind of bad input told apart.

use super::*;

fn inbound(extra: &str) -> String {
    format!(
        r#"{{"type":"message.inbound","eventId":"e1","accountId":"a","occurredAt":"2026-01-01T00:00:00Z",
           "messageId":"m","channelId":"c","chatType":"whatsapp","chatId":"7"{extra}}}"#
    )
}

#[test]
fn parses_a_message() {
    let Event::MessageInbound(m) = parse(inbound(r#","text":"hi""#).as_bytes()).unwrap() else {
        panic!("wrong variant")
    };
    assert_eq!(m.text.as_deref(), Some("hi"));
    assert_eq!(m.envelope.event_id.as_str(), "e1");
}

#[test]
fn only_an_object_is_an_event() {
    // A tagged enum would take its fields in a list, tag first; the contract does not.
    let list = br#"["message.inbound",{"eventId":"e1","accountId":"a","occurredAt":"2026-01-01T00:00:00Z"}]"#;
    let err = parse(list).unwrap_err();
    assert_eq!(err.code(), "invalid_field");
    assert!(err.to_string().contains("not a JSON object"), "{err}");
    // A repeated key is read as a JSON value reads it: the last one counts.
    let twice = inbound(r#","text":"first","text":"last""#);
    let Event::MessageInbound(m) = parse(twice.as_bytes()).unwrap() else {
        panic!("wrong variant")
    };
    assert_eq!(m.text.as_deref(), Some("last"));
}

#[test]
fn a_huge_value_gives_a_short_reason() {
    let huge = "z".repeat(200 * 1024);
    let cases = [
        ("type", r#""message.inbound""#.to_owned(), "unknown_type"),
        ("chatType", r#""whatsapp""#.to_owned(), "invalid_field"),
        ("chatId", r#""7""#.to_owned(), "invalid_field"),
        ("eventId", r#""e1""#.to_owned(), "invalid_field"),
    ];
    for (field, original, code) in cases {
        let body = inbound("").replacen(
            &format!(r#""{field}":{original}"#),
            &format!(r#""{field}":"{huge}""#),
            1,
        );
        assert!(body.len() > 200 * 1024, "{field} was replaced");
        let header = parse(body.as_bytes()).unwrap_err().header();
        assert!(header.starts_with(code), "{field}: {header:.100}");
        assert!(
            header.len() <= crate::clip::MAX_REASON_BYTES,
            "{field}: {}",
            header.len()
        );
        assert!(
            header.contains("zzz") && header.contains('…'),
            "{field}: {header}"
        );
    }
}

/// Every kind of bad input, one row each: the body, the code it gets and a
/// word its explanation must name.
#[test]
fn bad_inputs_table() {
    let good = inbound("");
    let with = |from: &str, to: &str| good.replacen(from, to, 1);
    // The body with `chatId` set to this JSON value.
    let chat_id = |json: &str| with(r#""chatId":"7""#, &format!(r#""chatId":{json}"#));
    let rows: Vec<(&str, String, &str, &str)> = vec![
        ("not JSON", "{nope".into(), "not_json", ""),
        (
            "over the size limit",
            " ".repeat(MAX_BODY_BYTES + 1),
            "too_large",
            "",
        ),
        (
            "JSON that is not an object",
            "[1,2]".into(),
            "invalid_field",
            "",
        ),
        (
            "only an eventId",
            r#"{"eventId":"e"}"#.into(),
            "invalid_field",
            "type",
        ),
        (
            "a missing type",
            with(r#""type":"message.inbound","#, ""),
            "invalid_field",
            "type",
        ),
        (
            "a type that is not a string",
            with(r#""message.inbound""#, "7"),
            "invalid_field",
            "type",
        ),
        (
            "an unknown type",
            with("message.inbound", "chat.deleted"),
            "unknown_type",
            "chat.deleted",
        ),
        (
            "an unknown type alone",
            r#"{"type":"x.y"}"#.into(),
            "unknown_type",
            "x.y",
        ),
        (
            "a missing chatId",
            with(r#","chatId":"7""#, ""),
            "invalid_field",
            "chatId",
        ),
        (
            "an unknown chat type",
            with("whatsapp", "icq"),
            "invalid_field",
            "icq",
        ),
        ("an empty id", chat_id(r#""""#), "invalid_field", "empty"),
        (
            "an id of 129 characters",
            chat_id(&format!(r#""{}""#, "é".repeat(129))),
            "invalid_field",
            "",
        ),
        (
            "an id with a control character",
            chat_id(r#""7\u0007""#),
            "invalid_field",
            "",
        ),
        (
            "an id with a zero-width space",
            chat_id("\"7\u{200B}\""),
            "invalid_field",
            "",
        ),
        (
            "occurredAt not RFC 3339",
            with("2026-01-01T00:00:00Z", "yesterday"),
            "invalid_field",
            "yesterday",
        ),
    ];
    for (why, body, code, named) in rows {
        let rejection = parse(body.as_bytes()).expect_err(why);
        assert_eq!(rejection.code(), code, "{why}: {rejection}");
        assert!(rejection.to_string().contains(named), "{why}: {rejection}");
    }
    // The edges that pass: 128 characters (256 bytes of UTF-8), printable separators.
    for id in ["é".repeat(128), "a.b:{c} *#%/é".to_owned()] {
        let body = chat_id(&serde_json::json!(id).to_string());
        assert!(parse(body.as_bytes()).is_ok(), "{id}");
    }
}
