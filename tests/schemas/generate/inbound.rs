//! `schemas/inbound/`: one schema per event type a gateway or CRM publishes to
//! `P.inbound`, and their union. Every event, account event or chat event,
//! goes with the routing key `{accountId}` (contract v1.1).

use serde_json::{Map, Value};
use switchboard::events::Event;

use super::{ESCAPE_NOTE, INBOUND_KEY, INBOUND_UNION, PREFIX_NOTE, finish, root, take_defs, tidy};

/// One inbound event type: its file, who publishes it and what it does.
struct Inbound {
    kind: &'static str,
    file: &'static str,
    publisher: &'static str,
    about: &'static str,
}

const INBOUND: [Inbound; 10] = [
    Inbound {
        kind: "channels.upserted",
        file: "inbound/channels.upserted.json",
        publisher: "the CRM",
        about: "Registers or updates the account's channels (messenger accounts of the company).",
    },
    Inbound {
        kind: "users.upserted",
        file: "inbound/users.upserted.json",
        publisher: "the CRM",
        about: "Creates or replaces each listed user; his access list is replaced whole and his \
            notification queue `P.user.{accountId}.{userId}` is declared. Every `channelId` must be \
            a known channel. Chats still waiting to be claimed on a channel he gains are offered \
            to him: `chat.new` if he is an eligible manager or a supervisor there, and under \
            `round_robin` waiting chats are handed out in turn as soon as a manager becomes \
            eligible.",
    },
    Inbound {
        kind: "users.removed",
        file: "inbound/users.removed.json",
        publisher: "the CRM",
        about: "The listed users lose all access; their clients wait for a new responsible user. Every \
            listed user must be known.",
    },
    Inbound {
        kind: "pipelines.loaded",
        file: "inbound/pipelines.loaded.json",
        publisher: "the CRM",
        about: "Replaces the account's pipelines and their stages.",
    },
    Inbound {
        kind: "settings.updated",
        file: "inbound/settings.updated.json",
        publisher: "the CRM",
        about: "The account's new-client rules and CRM link templates. The pipeline and stage must \
            exist (see `pipelines.loaded`). In `links.deal` `{dealId}`, and in `links.newDeal` \
            `{contactId}`, is replaced by the percent-escaped id.",
    },
    Inbound {
        kind: "contact.upserted",
        file: "inbound/contact.upserted.json",
        publisher: "the CRM",
        about: "A contact the CRM already has: its messenger identities and its responsible user, who \
            must be a known user.",
    },
    Inbound {
        kind: "deal.upserted",
        file: "inbound/deal.upserted.json",
        publisher: "the CRM",
        about: "A deal created or changed in the CRM. Without `uri` the suitcase links it through \
            `links.deal` of `settings.updated`. The responsible user must be known.",
    },
    Inbound {
        kind: "message.inbound",
        file: "inbound/message.inbound.json",
        publisher: "a messenger gateway",
        about: "A client wrote to a channel, which must be a known channel.",
    },
    Inbound {
        kind: "message.outbound",
        file: "inbound/message.outbound.json",
        publisher: "the CRM (a user's chat window)",
        about: "A user wants to send a reply (the channel and the user must be known). If his role \
            on the channel allows it the worker publishes `message.send` (see \
            `out/message.send.json`), otherwise he gets a `message.rejected` notification.",
    },
    Inbound {
        kind: "suitcase.requested",
        file: "inbound/suitcase.requested.json",
        publisher: "the CRM (a user's chat window)",
        about: "Asks for the user's suitcase of the chat. The AMQP properties `reply_to` and \
            `correlation_id` must be set, and `reply_to` must be a server-named queue \
            (`amq.gen-…`) or RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to…`), so that a \
            reply can never be pushed into a user's or anyone else's named queue; otherwise the \
            request goes to `P.dead`. The answer (see `out/suitcase.reply.json`) goes to \
            `reply_to` with the same `correlation_id`.",
    },
];

/// What every inbound schema says about its exchange and routing key.
fn routing(publisher: &str) -> String {
    format!(
        "Published by {publisher} to the exchange `P.inbound` with routing key `{INBOUND_KEY}`, \
         the event's own `accountId`, like every event of the account: all events of one account \
         are one ordered stream. An event whose routing key is not its own account's goes to \
         `P.dead` (reason `invalid`). {ESCAPE_NOTE} {PREFIX_NOTE}"
    )
}

/// The inbound files: one per variant of [`Event`], then their union.
pub fn files() -> Vec<(&'static str, Value)> {
    let mut event = root::<Event>();
    let mut defs = take_defs(&mut event);
    let Some(Value::Array(variants)) = event.remove("oneOf") else {
        panic!("the schema of Event has no oneOf: has schemars changed how it writes tagged enums?")
    };
    let mut files = Vec::new();
    let mut members = Vec::new();
    for variant in &variants {
        let kind = variant
            .pointer("/properties/type/const")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("an Event variant without a `type` const: {variant}"));
        let def_name = variant
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .unwrap_or_else(|| panic!("Event variant {kind} is not a $ref: {variant}"))
            .to_owned();
        let spec = INBOUND.iter().find(|i| i.kind == kind).unwrap_or_else(|| {
            panic!("event type {kind} has no entry in INBOUND (tests/schemas/generate/inbound.rs)")
        });
        let Some(Value::Object(mut body)) = defs.remove(&def_name) else {
            panic!("Event variant {kind} refers to a missing $defs/{def_name}")
        };
        // The variant struct flattens `Envelope`, whose description leaks onto
        // it; the tag lives on the enum. Put both right.
        body.remove("description");
        tidy::add_type_const(&mut body, kind);
        let description = format!("{} {}", spec.about, routing(spec.publisher));
        files.push((
            spec.file,
            finish(spec.file, kind, &description, body.clone(), &defs),
        ));
        let mut def = Map::new();
        def.insert("title".into(), kind.into());
        def.insert("description".into(), spec.about.into());
        def.extend(body);
        members.push(def_name.clone());
        defs.insert(def_name, Value::Object(def));
    }
    for spec in &INBOUND {
        assert!(
            files.iter().any(|(file, _)| *file == spec.file),
            "INBOUND lists {} but Event has no such variant",
            spec.kind
        );
    }
    let description = format!(
        "Any event the worker accepts on the exchange `P.inbound`, told apart by `type`; each \
         variant is also its own file in this folder. A reference to an unknown channel or user \
         is refused like a malformed event. Every event, account events and chat events alike, \
         is published with routing key `{INBOUND_KEY}`, the event's own `accountId`; an event \
         whose routing key is not its own account's is refused (reason `invalid`). Input that \
         does not match goes to the queue `P.dead` with a header `x-switchboard-error`. \
         {ESCAPE_NOTE} {PREFIX_NOTE}"
    );
    files.push((
        INBOUND_UNION,
        finish(
            INBOUND_UNION,
            "event",
            &description,
            super::union(&members),
            &defs,
        ),
    ));
    files
}
