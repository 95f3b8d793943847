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

/// Bodies near the two messages' examples: each field left out, null, of
/// another JSON kind, empty, escaped, huge or repeated; other types; extra
/// fields; a repeated or escaped `type`.
fn near_messages() -> Vec<String> {
    let examples = [
        include_str!("../../schemas/examples/inbound/message.inbound.json"),
        include_str!("../../schemas/examples/inbound/message.outbound.json"),
    ];
    let replacements = [
        "null",
        "5",
        "true",
        "[]",
        "{}",
        r#""""#,
        r#""x""#,
        r#""a\"b""#,
        r#""\u0041""#,
        r#""message.inbound""#,
        r#""message.outbound""#,
        r#""suitcase.requested""#,
        r#""whatsapp""#,
        r#""2026-13-01T00:00:00Z""#,
        r#""2026-01-01T00:00:00+03:00""#,
        r#"{"name":"M","phone":null,"extra":1}"#,
        r#"{"name":5}"#,
    ];
    let mut bodies = Vec::new();
    for example in examples {
        let value: serde_json::Value = serde_json::from_str(example).unwrap();
        let object = value.as_object().unwrap();
        bodies.push(example.to_owned());
        bodies.push(format!("  {example}"));
        let keys = object
            .keys()
            .cloned()
            .chain(["contentUri", "userId", "extra"].map(String::from));
        for key in keys.collect::<Vec<_>>() {
            let key = &key;
            let mut without = object.clone();
            without.remove(key);
            bodies.push(serde_json::Value::Object(without).to_string());
            for with in replacements {
                let mut changed = object.clone();
                changed.insert(key.clone(), serde_json::from_str(with).unwrap());
                let text = serde_json::Value::Object(changed).to_string();
                // The key also repeated, at the end, with the example's value or none.
                let first = object.get(key).map_or("null".to_owned(), |v| v.to_string());
                bodies.push(format!("{},\"{key}\":{first}}}", &text[..text.len() - 1]));
                bodies.push(text);
            }
            let huge = serde_json::Value::String("z".repeat(300 * 1024));
            let mut changed = object.clone();
            changed.insert(key.clone(), huge);
            bodies.push(serde_json::Value::Object(changed).to_string());
        }
        bodies.push(example.replacen(r#""type""#, r#""\u0074ype""#, 1));
        bodies.push(format!("[{example}]"));
    }
    bodies
}

#[test]
fn the_straight_parse_of_messages_agrees_with_the_general_one() {
    let mut straight = 0;
    for body in near_messages() {
        let general = parse_general(body.as_bytes(), body.trim_start().starts_with('{'));
        if let Some(fast) = wire::message(body.as_bytes()) {
            straight += 1;
            assert_eq!(general.as_ref(), Ok(&fast), "{body:.300}");
        }
        // And `parse` as a whole says what the general parse says.
        if body.len() <= MAX_BODY_BYTES {
            let parsed = parse(body.as_bytes()).map_err(|e| e.header());
            let general = general.map_err(|e| e.header()).and_then(|event| {
                crate::web_url::check(&event).map_err(|e| e.header())?;
                Ok(event)
            });
            assert_eq!(parsed, general, "{body:.300}");
        }
    }
    // The examples and most of their variants do take the straight way.
    assert!(straight > 100, "{straight} bodies parsed straight");
}
