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
fn tells_each_bad_input_apart() {
    assert_eq!(parse(b"{nope").unwrap_err().code(), "not_json");
    assert_eq!(
        parse(br#"{"type":"x.y"}"#).unwrap_err().code(),
        "unknown_type"
    );
    assert_eq!(
        parse(br#"{"eventId":"e"}"#).unwrap_err().code(),
        "invalid_field"
    );
    let missing = inbound("").replace(r#","chatId":"7""#, "");
    let err = parse(missing.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "invalid_field");
    assert!(err.to_string().contains("chatId"), "{err}");
    let bad_time = inbound("").replace("2026-01-01T00:00:00Z", "yesterday");
    assert_eq!(
        parse(bad_time.as_bytes()).unwrap_err().code(),
        "invalid_field"
    );
    let bad_type = inbound("").replace("whatsapp", "icq");
    assert_eq!(
        parse(bad_type.as_bytes()).unwrap_err().code(),
        "invalid_field"
    );
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    assert_eq!(parse(&big).unwrap_err().code(), "too_large");
    let empty_id = inbound("").replace(r#""chatId":"7""#, r#""chatId":"""#);
    assert_eq!(
        parse(empty_id.as_bytes()).unwrap_err().code(),
        "invalid_field"
    );
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

/// Every kind of bad input, one row each: the body and the code it gets.
#[test]
fn bad_inputs_table() {
    let good = inbound("");
    let with = |from: &str, to: &str| good.replacen(from, to, 1);
    let rows: Vec<(&str, String, &str)> = vec![
        ("not JSON", "{nope".into(), "not_json"),
        (
            "JSON that is not an object",
            "[1,2]".into(),
            "invalid_field",
        ),
        (
            "a missing type",
            with(r#""type":"message.inbound","#, ""),
            "invalid_field",
        ),
        (
            "a type that is not a string",
            with(r#""message.inbound""#, "7"),
            "invalid_field",
        ),
        (
            "an unknown type",
            with("message.inbound", "chat.deleted"),
            "unknown_type",
        ),
        (
            "a missing chatId",
            with(r#","chatId":"7""#, ""),
            "invalid_field",
        ),
        (
            "an unknown chat type",
            with("whatsapp", "icq"),
            "invalid_field",
        ),
        (
            "an empty id",
            with(r#""chatId":"7""#, r#""chatId":"""#),
            "invalid_field",
        ),
        (
            "an id of 129 characters",
            with(
                r#""chatId":"7""#,
                &format!(r#""chatId":"{}""#, "é".repeat(129)),
            ),
            "invalid_field",
        ),
        (
            "an id with a control character",
            with(r#""chatId":"7""#, r#""chatId":"7\u0007""#),
            "invalid_field",
        ),
        (
            "an id with a zero-width space",
            with(r#""chatId":"7""#, "\"chatId\":\"7\u{200B}\""),
            "invalid_field",
        ),
        (
            "occurredAt not RFC 3339",
            with("2026-01-01T00:00:00Z", "yesterday"),
            "invalid_field",
        ),
    ];
    for (why, body, code) in rows {
        let rejection = parse(body.as_bytes()).expect_err(why);
        assert_eq!(rejection.code(), code, "{why}: {rejection}");
    }
    // The edges that pass: 128 characters (256 bytes of UTF-8), printable separators.
    for id in ["é".repeat(128), "a.b:{c} *#%/é".to_owned()] {
        let body = with(
            r#""chatId":"7""#,
            &format!(r#""chatId":{}"#, serde_json::json!(id)),
        );
        assert!(parse(body.as_bytes()).is_ok(), "{id}");
    }
}
