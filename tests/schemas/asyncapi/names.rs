//! The names in the document are the worker's: exchanges and queues with the
//! default prefix, the escaping of ids, the cut of long names, and the
//! dead-letter reasons.

use serde_json::{Value, json};
use switchboard::ids::Id;
use switchboard::names::{self, Names};
use uuid::Uuid;

use super::{default_prefix, document, every_rejection, messages, string};

#[test]
fn names_are_the_workers_with_the_default_prefix() {
    let doc = document();
    let prefix = default_prefix();
    let names = Names::new(&prefix);
    let channel = |name: &str| &doc["channels"][name];
    let exchange = |name: &str| channel(name)["bindings"]["amqp"]["exchange"]["name"].clone();
    assert_eq!(exchange("inbound"), names.inbound().as_str());
    assert_eq!(exchange("crmEvents"), names.crm().as_str());
    assert_eq!(exchange("outbound"), names.outbound().as_str());
    assert_eq!(
        channel("crmEvents")["bindings"]["amqp"]["exchange"]["type"],
        "topic"
    );
    assert_eq!(
        channel("outbound")["bindings"]["amqp"]["exchange"]["type"],
        "topic"
    );
    // Placeholders as ids: the braces are not escaped, so the names come out as templates.
    let id = |raw: &str| Id::parse(raw).expect("a valid id");
    let (account, user, channel_id) = (id("{accountId}"), id("{userId}"), id("{channelId}"));
    assert_eq!(
        channel("inbound")["address"],
        names::inbound_key(&account).as_str()
    );
    let user_queue = names.user_queue(&account, &user);
    assert_eq!(channel("userNotifications")["address"], user_queue.as_str());
    assert_eq!(
        channel("userNotifications")["bindings"]["amqp"]["queue"]["name"],
        user_queue.as_str()
    );
    let bound = &channel("userNotifications")["bindings"]["amqp"]["x-bound-to"];
    assert_eq!(bound["exchange"], names.notify().as_str());
    assert_eq!(bound["exchangeType"], "direct");
    assert_eq!(
        bound["routingKey"],
        names::user_key(&account, &user).as_str()
    );
    assert_eq!(
        channel("crmEvents")["address"],
        names::crm_key(&account, "{type}").as_str()
    );
    assert_eq!(
        channel("outbound")["address"],
        names::outbound_key(&account, &channel_id).as_str()
    );
    assert_eq!(channel("dead")["address"], names.dead().as_str());
    assert_eq!(
        channel("dead")["bindings"]["amqp"]["queue"]["name"],
        names.dead().as_str()
    );
    assert_eq!(
        channel("suitcaseReply")["address"],
        Value::Null,
        "the reply address is the request's reply_to"
    );
    // The prefix is said to be configurable wherever a prefixed name appears.
    let description = string(&doc["info"]["description"], "info.description");
    assert!(description.contains("SWITCHBOARD_PREFIX") && description.contains("--prefix"));
}

#[test]
fn the_id_escaping_is_the_workers() {
    let doc = document();
    let description = string(&doc["info"]["description"], "info.description");
    let parameter = string(
        &doc["components"]["parameters"]["accountId"]["description"],
        "accountId description",
    );
    let inbound = string(
        &doc["components"]["parameters"]["inboundAccountId"]["description"],
        "inboundAccountId description",
    );
    for c in ['%', '.', '*', '#'] {
        let escaped = id_name_part(&c.to_string());
        assert_ne!(
            escaped,
            c.to_string(),
            "the worker does not escape {c:?} any more"
        );
        for (what, text) in [
            ("info.description", description),
            ("components.parameters.accountId", parameter),
            ("components.parameters.inboundAccountId", inbound),
        ] {
            assert!(
                text.contains(&format!("`{c}`")) && text.contains(&format!("`{escaped}`")),
                "{what} does not say that {c:?} becomes {escaped:?}"
            );
        }
    }
    let example = Names::new(&default_prefix()).user_queue(
        &Id::parse("acme.ru").unwrap(),
        &Id::parse("u-anna").unwrap(),
    );
    assert!(
        description.contains(&format!("`{example}`")),
        "info.description's example should be {example:?}"
    );
    let key = names::inbound_key(&Id::parse("acme.ru").unwrap());
    assert!(
        description.contains(&format!("routing key `{key}`")),
        "info.description should show the inbound key of acme.ru, {key:?}"
    );
}

/// The cut of a name over 255 bytes, done exactly as `info.description` says
/// (the recipe a publisher follows for the inbound key of a long `accountId`),
/// gives the worker's names.
#[test]
fn the_cut_of_long_names_is_as_documented() {
    let doc = document();
    let description = string(&doc["info"]["description"], "info.description");
    let namespace = description
        .split_once("in the namespace `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(uuid, _)| Uuid::parse_str(uuid).expect("the namespace is a UUID"))
        .expect("info.description names the digest's namespace");
    for needed in [
        "`~`",
        "version 5 UUID",
        "4 bytes big-endian",
        "218 bytes",
        "`amqp-name`",
    ] {
        assert!(
            description.contains(needed),
            "info.description does not say {needed}"
        );
    }
    let documented = |name: &str| -> String {
        if name.len() <= 255 {
            return name.to_owned();
        }
        let mut bytes = Vec::new();
        for part in ["amqp-name", name] {
            bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
            bytes.extend_from_slice(part.as_bytes());
        }
        let digest = Uuid::new_v5(&namespace, &bytes).to_string();
        let mut end = 218;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}~{digest}", &name[..end])
    };
    let names = Names::new(&default_prefix());
    let id = |raw: String| Id::parse(raw).expect("a valid id");
    let accounts = [
        "acme.ru".to_owned(),
        "a".repeat(128),
        ".".repeat(128),
        "é".repeat(128),
        "€".repeat(86),
    ];
    let mut cut = 0;
    for raw in accounts {
        let account = id(raw.clone());
        let key = names::inbound_key(&account);
        assert_eq!(
            key,
            documented(&account.name_part()),
            "inbound key of {raw:?}"
        );
        assert!(key.len() <= 255);
        let queue = names.user_queue(&account, &id("u-anna".into()));
        let whole = format!("{}.user.{}.u-anna", names.prefix(), account.name_part());
        assert_eq!(queue, documented(&whole), "user queue of {raw:?}");
        cut += usize::from(key.contains('~'));
    }
    assert!(cut >= 2, "the cases do not exercise the cut");
}

fn id_name_part(raw: &str) -> String {
    Id::parse(raw).expect("a valid id").name_part()
}

#[test]
fn the_dead_letter_header_takes_every_reason() {
    let doc = document();
    let messages = messages(&doc);
    let headers = &messages["deadLetter"]["headers"];
    let validator = jsonschema::draft7::new(headers)
        .unwrap_or_else(|e| panic!("deadLetter.headers does not compile: {e}"));
    let description = string(
        &headers["properties"]["x-switchboard-error"]["description"],
        "x-switchboard-error description",
    );
    for rejection in every_rejection() {
        let instance = json!({ "x-switchboard-error": rejection.header(), "x-switchboard-routing-key": "acme" });
        assert!(
            validator.is_valid(&instance),
            "deadLetter.headers refuses {:?}",
            rejection.header()
        );
        assert!(
            description.contains(&format!("`{}`", rejection.code())),
            "the header's description lacks {}",
            rejection.code()
        );
    }
    let bogus = json!({ "x-switchboard-error": "bogus: no such code", "x-switchboard-routing-key": "acme" });
    assert!(
        !validator.is_valid(&bogus),
        "deadLetter.headers accepts any code"
    );
    // Every inline header schema compiles.
    for (key, message) in &messages {
        if let Some(headers) = message.get("headers") {
            jsonschema::draft7::new(headers)
                .unwrap_or_else(|e| panic!("{key}.headers does not compile: {e}"));
        }
    }
}
