//! Schema and Rust agree on broken input, and on what the worker writes when
//! optional parts are missing.

use serde_json::{Value, json};
use switchboard::events::{self, EVENT_TYPES};
use switchboard::ids::Id;
use switchboard::model::ChatType;
use switchboard::output::{
    Notification, NotificationType, RejectReason, SuitcaseDeal, SuitcaseError, SuitcaseReply,
};

use super::{examples, through_rust};
use crate::files::generated;
use crate::generate::INBOUND_UNION;
use crate::{errors, validator};

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

/// Schema and Rust agree on broken input: for an inbound event the schema
/// accepts exactly what `events::parse` accepts; for an output the schema is
/// never looser than the Rust type. Removing a required field always fails.
#[test]
fn schema_and_rust_agree_on_broken_examples() {
    let generated = generated();
    for super::Example {
        file,
        schema,
        value: example,
    } in examples()
    {
        let check = validator(&schema, &generated[schema.as_str()]);
        let required = generated[schema.as_str()]["required"]
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
            let rust = through_rust(&schema, &broken);
            if schema.starts_with("inbound/") {
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

/// An inbound event of an unknown type fails the schema and `parse`.
#[test]
fn an_unknown_type_fails_schema_and_parse() {
    let generated = generated();
    let union = validator(INBOUND_UNION, &generated[INBOUND_UNION]);
    for super::Example {
        file,
        schema: _,
        value: example,
    } in examples()
        .into_iter()
        .filter(|e| e.schema.starts_with("inbound/"))
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

/// be added without them.
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
