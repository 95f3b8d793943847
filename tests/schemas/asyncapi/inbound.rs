//! Contract v1.1 on the inbound side: one channel, address `{accountId}`, for
//! every event type; the topology behind `P.inbound` is the worker's; the
//! suitcase's `reply_to` must be a server-named queue or direct reply-to.

use serde_json::{Value, json};
use switchboard::events::EVENT_TYPES;
use switchboard::names::Names;

use super::{
    DOCUMENT, channels_of_messages, default_prefix, document, messages, object, payload_file,
    string,
};
use crate::generate::INBOUND_KEY;
use crate::read_json;

/// The one channel every event is published on.
const INBOUND_CHANNEL: &str = "inbound";

#[test]
fn every_event_type_is_a_message_of_the_one_inbound_channel() {
    let doc = document();
    let inbound = Names::new(&default_prefix()).inbound();
    let channel = &doc["channels"][INBOUND_CHANNEL];
    assert_eq!(
        channel["bindings"]["amqp"]["exchange"]["name"],
        inbound.as_str()
    );
    assert_eq!(channel["bindings"]["amqp"]["is"], "routingKey");
    assert_eq!(
        channel["address"], INBOUND_KEY,
        "the routing key of every event"
    );
    let messages = messages(&doc);
    let channels = channels_of_messages(&doc);
    for kind in EVENT_TYPES {
        let file = format!("inbound/{kind}.json");
        let (key, message) = messages
            .iter()
            .find(|(_, m)| payload_file(m) == Some(file.as_str()))
            .unwrap_or_else(|| panic!("no message of schemas/{DOCUMENT} has the payload {file}"));
        assert_eq!(message["name"], kind, "components.messages.{key}.name");
        assert_eq!(
            channels.get(key).map(Vec::as_slice),
            Some([INBOUND_CHANNEL.to_owned()].as_slice()),
            "message {key} ({kind}) must be on the channel {INBOUND_CHANNEL} only"
        );
        let schema = read_json(&file);
        let description = string(&schema["description"], &format!("{file} description"));
        assert!(
            description.contains(&format!("routing key `{INBOUND_KEY}`")),
            "{file} names another routing key than channels.{INBOUND_CHANNEL}.address"
        );
        let sent = object(&doc["operations"], "operations").values().any(|op| {
            op["action"] == "send"
                && op["messages"].as_array().is_some_and(|ms| {
                    ms.iter().any(|m| {
                        m["$ref"] == format!("#/channels/{INBOUND_CHANNEL}/messages/{key}")
                    })
                })
        });
        assert!(sent, "no send operation publishes {kind}");
    }
    for (key, message) in &messages {
        if let Some(file) = payload_file(message).and_then(|f| f.strip_prefix("inbound/")) {
            let kind = file.strip_suffix(".json").expect(".json");
            assert!(
                EVENT_TYPES.contains(&kind),
                "message {key}: {kind} is not in EVENT_TYPES"
            );
        }
    }
    // No other channel publishes to the inbound exchange.
    for (name, other) in object(&doc["channels"], "channels") {
        if name != INBOUND_CHANNEL {
            assert_ne!(
                other["bindings"]["amqp"]["exchange"]["name"],
                inbound.as_str(),
                "channel {name} is on {inbound} too"
            );
        }
    }
}

/// `P.inbound` is a fanout whose alternate exchange is `P.inbound.hash`, bound
/// to it; `P.inbound.hash` is an internal consistent-hash exchange over the
/// quorum partitions `P.inbound.{n}` with a single active consumer.
#[test]
fn the_inbound_topology_is_the_workers() {
    let doc = document();
    let names = Names::new(&default_prefix());
    let amqp = &doc["channels"][INBOUND_CHANNEL]["bindings"]["amqp"];
    assert_eq!(amqp["exchange"]["type"], "fanout");
    // Transient, with `P.inbound.hash`: a broker restart must not keep a ring
    // rebuilt in another order (see `amqp::topology`).
    assert_eq!(amqp["exchange"]["durable"], false);
    assert_eq!(amqp["x-alternate-exchange"], names.inbound_hash().as_str());
    let routes = &amqp["x-routes-to"];
    assert_eq!(routes["exchange"], names.inbound_hash().as_str());
    assert_eq!(routes["exchangeType"], "x-consistent-hash");
    assert_eq!(routes["internal"], true);
    let partitions = &routes["partitions"];
    let template = string(&partitions["queue"], "x-routes-to.partitions.queue");
    assert_eq!(
        template.replace("{n}", "3"),
        names.inbound_partition(3),
        "the partitions' names"
    );
    assert_eq!(partitions["x-queue-type"], "quorum");
    assert_eq!(partitions["x-single-active-consumer"], true);
    let description = string(
        &doc["channels"][INBOUND_CHANNEL]["description"],
        "the inbound channel's description",
    );
    for needed in [
        "fanout".to_owned(),
        "alternate exchange".to_owned(),
        "x-consistent-hash".to_owned(),
        format!("`{}`", names.inbound_hash()),
        "single active consumer".to_owned(),
        "reason `invalid`".to_owned(),
        "`acme%2Eru`".to_owned(),
    ] {
        assert!(
            description.contains(&needed),
            "the inbound channel does not say {needed}"
        );
    }
    assert!(
        !serde_json::to_string(&doc)
            .expect("serializes")
            .contains("{chatType}.{chatId}"),
        "schemas/{DOCUMENT} still names the v1 chat key"
    );
}

/// The request must carry `reply_to` (a server-named queue or direct reply-to)
/// and `correlation_id`; the answer carries the same `correlation_id`.
#[test]
fn the_suitcase_reply_is_correlated() {
    let doc = document();
    let reply = &doc["operations"]["requestSuitcase"]["reply"];
    assert_eq!(doc["operations"]["requestSuitcase"]["action"], "send");
    assert_eq!(reply["address"]["location"], "$message.header#/reply_to");
    assert_eq!(reply["channel"]["$ref"], "#/channels/suitcaseReply");
    let messages = messages(&doc);
    for (key, property) in [
        ("suitcaseRequested", "reply_to"),
        ("suitcaseRequested", "correlation_id"),
        ("suitcaseReply", "correlation_id"),
    ] {
        let message = &messages[key];
        assert_eq!(
            message["correlationId"]["location"], "$message.header#/correlation_id",
            "{key}"
        );
        let required = message["headers"]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{key} has no required headers"));
        assert!(
            required.contains(&json!(property)),
            "{key}: {property} is not a required header"
        );
    }
}

/// Contract v1.1: `reply_to` is a server-named queue (`amq.gen-…`) or direct
/// reply-to (`amq.rabbitmq.reply-to…`), never a named queue.
#[test]
fn the_suitcase_reply_to_is_a_server_named_queue_or_direct_reply_to() {
    let doc = document();
    let headers = &messages(&doc)["suitcaseRequested"]["headers"];
    let check = jsonschema::draft7::new(headers)
        .unwrap_or_else(|e| panic!("suitcaseRequested.headers does not compile: {e}"));
    let with = |reply_to: &str| json!({ "reply_to": reply_to, "correlation_id": "c-1" });
    for good in [
        "amq.gen-JzTY20BRgKO-HjmUJj0wLg",
        "amq.rabbitmq.reply-to",
        "amq.rabbitmq.reply-to.g1h2AA5yZXBseUAxNjA2NDY5NDUyAAAbUwAAAABnV2f1.Ph7OQ4pN7K1S",
    ] {
        assert!(check.is_valid(&with(good)), "reply_to {good:?} is refused");
    }
    let user_queue = Names::new(&default_prefix()).user_queue(
        &switchboard::ids::Id::parse("acme").expect("an id"),
        &switchboard::ids::Id::parse("u-anna").expect("an id"),
    );
    for bad in [
        user_queue.as_str(),
        "crm-replies",
        "amq.gen",
        "x.amq.gen-abc",
        "",
    ] {
        assert!(!check.is_valid(&with(bad)), "reply_to {bad:?} is accepted");
    }
    let texts: Vec<&Value> = vec![
        &headers["properties"]["reply_to"]["description"],
        &doc["operations"]["requestSuitcase"]["description"],
        &doc["channels"]["suitcaseReply"]["description"],
    ];
    for text in texts {
        let text = string(text, "a reply_to description");
        assert!(
            text.contains("amq.gen-") && text.contains("amq.rabbitmq.reply-to"),
            "{text:?} does not name both kinds of reply_to"
        );
    }
}
