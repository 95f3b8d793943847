//! `schemas/out/`: what the worker publishes: notifications, CRM events (one
//! file per type, and their union), approved replies and suitcase answers.

use serde_json::{Map, Value, json};
use switchboard::output::{CrmEvent, MessageSend, Notification, SuitcaseReply};

use super::{CRM_UNION, ESCAPE_NOTE, PREFIX_NOTE, finish, root, take_defs, tidy};

/// One CRM event type.
struct Crm {
    kind: &'static str,
    file: &'static str,
    about: &'static str,
}

const CRM: [Crm; 3] = [
    Crm {
        kind: "contact.created",
        file: "out/contact.created.json",
        about: "The worker created a contact for a new client (its `contactId` is made up by the \
            worker).",
    },
    Crm {
        kind: "deal.created",
        file: "out/deal.created.json",
        about: "The worker created the new client's deal in the configured pipeline and stage (its \
            `dealId` is made up by the worker).",
    },
    Crm {
        kind: "contact.responsibleChanged",
        file: "out/contact.responsibleChanged.json",
        about: "A contact whose responsible user lost access to the channel got a new responsible \
            user.",
    },
];

pub fn notification() -> Value {
    const FILE: &str = "out/notification.json";
    let mut body = root::<Notification>();
    let defs = take_defs(&mut body);
    tidy::omitted_not_null(&mut body);
    // The contract ties `reason` to `message.rejected`; the type cannot say so.
    body.insert(
        "if".into(),
        json!({ "properties": { "type": { "const": "message.rejected" } }, "required": ["type"] }),
    );
    body.insert("then".into(), json!({ "required": ["reason"] }));
    body.insert("else".into(), json!({ "not": { "required": ["reason"] } }));
    let description = format!(
        "A notification for one CRM user: `chat.new`, `chat.message`, `chat.assigned`, \
         `chat.withdrawn`, or `message.rejected` (only it has `reason`). `notificationId` is the same \
         for the same cause, so a client can drop repeats. Fields that do not apply are omitted, \
         never null. Messages of one chat reach the user in the order they were published. \
         Published by the worker to the direct exchange `P.notify` with routing key \
         `{{accountId}}.{{userId}}`, bound to the user's durable queue `P.user.{{accountId}}.{{userId}}` \
         (declared as soon as the user is known). {ESCAPE_NOTE} {PREFIX_NOTE}"
    );
    finish(FILE, "notification", &description, body, &defs)
}

/// One file per CRM event type, then their union.
pub fn crm() -> Vec<(&'static str, Value)> {
    let mut event = root::<CrmEvent>();
    let mut defs = take_defs(&mut event);
    let Some(Value::Array(variants)) = event.remove("oneOf") else {
        panic!(
            "the schema of CrmEvent has no oneOf: has schemars changed how it writes tagged enums?"
        )
    };
    let mut files = Vec::new();
    let mut members = Vec::new();
    for variant in variants {
        let Value::Object(mut body) = variant else {
            panic!("a CrmEvent variant is not an object")
        };
        let kind = body
            .get("properties")
            .and_then(|p| p.pointer("/type/const"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("a CrmEvent variant without a `type` const"))
            .to_owned();
        let spec = CRM.iter().find(|c| c.kind == kind).unwrap_or_else(|| {
            panic!("CRM event type {kind} has no entry in CRM (tests/schemas/generate/out.rs)")
        });
        // The flattened `CrmEnvelope`'s description leaks onto every variant.
        body.remove("description");
        tidy::add_type_const(&mut body, &kind);
        let description = format!(
            "{} Published by the worker to the topic exchange `P.crm` with routing key \
             `{{accountId}}.{kind}`. {ESCAPE_NOTE} {PREFIX_NOTE}",
            spec.about
        );
        files.push((
            spec.file,
            finish(spec.file, &kind, &description, body.clone(), &defs),
        ));
        let def_name = tidy::pascal(&kind);
        let mut def = Map::new();
        def.insert("title".into(), kind.clone().into());
        def.insert("description".into(), spec.about.into());
        def.extend(body);
        defs.insert(def_name.clone(), Value::Object(def));
        members.push(def_name);
    }
    assert_eq!(
        files.len(),
        CRM.len(),
        "CRM lists a type CrmEvent does not have"
    );
    let description = format!(
        "Any event the worker publishes to the topic exchange `P.crm`, told apart by `type`, with \
         routing key `{{accountId}}.{{type}}`; each variant is also its own file in this folder. \
         CRMs bind their own queues. {ESCAPE_NOTE} {PREFIX_NOTE}"
    );
    files.push((
        CRM_UNION,
        finish(
            CRM_UNION,
            "crm-event",
            &description,
            super::union(&members),
            &defs,
        ),
    ));
    files
}

pub fn message_send() -> Value {
    const FILE: &str = "out/message.send.json";
    let mut body = root::<MessageSend>();
    let mut defs = take_defs(&mut body);
    // `type` is a one-variant enum in Rust; on the wire it is a constant.
    defs.remove("MessageSendType");
    tidy::add_type_const(&mut body, "message.send");
    let description = format!(
        "An approved reply for the gateway to deliver: the fields of the `message.outbound` request \
         (`eventId` and `occurredAt` are the request's) with `type` `message.send`, plus the \
         chat's `contactId`. Published by the worker to the topic exchange `P.outbound` with \
         routing key `{{accountId}}.{{channelId}}`; gateways bind their own queues. {ESCAPE_NOTE} \
         {PREFIX_NOTE}"
    );
    finish(FILE, "message.send", &description, body, &defs)
}

pub fn suitcase_reply() -> Value {
    const FILE: &str = "out/suitcase.reply.json";
    let mut body = root::<SuitcaseReply>();
    let mut defs = take_defs(&mut body);
    // Untagged in Rust: exactly one of the two forms, never a mix.
    let Some(Value::Array(mut forms)) = body.remove("anyOf") else {
        panic!(
            "the schema of SuitcaseReply has no anyOf: has schemars changed how it writes untagged enums?"
        )
    };
    assert_eq!(forms.len(), 2, "SuitcaseReply has two forms");
    // The worker always writes the link fields, as null when there is no link.
    tidy::require(&mut forms[0], "newDealUri");
    forms[0]["title"] = "found".into();
    forms[1]["title"] = "error".into();
    body.insert("oneOf".into(), Value::Array(forms));
    if let Some(deal) = defs.get_mut("SuitcaseDeal") {
        tidy::require(deal, "uri");
    }
    if let Some(Value::Object(error)) = defs.get_mut("SuitcaseError") {
        error.insert(
            "description".into(),
            "`no_access`: the user is unknown or has no access to any channel; `unknown_chat`: the \
             chat has no contact yet."
                .into(),
        );
    }
    let description = "The answer to `suitcase.requested`: either the suitcase `{contactId, deals, \
        newDealUri}` (the deals of the chat's contact where the asking user is responsible, open \
        ones first, each with its CRM link) or `{error}`. `uri` comes from `deal.upserted`, else \
        from `links.deal`; `newDealUri` from `links.newDeal`; either is null when there is no link \
        to give (no `settings.updated` yet). Published by the worker to the default exchange with \
        routing key = the request's AMQP `reply_to` (a server-named queue `amq.gen-…` or direct \
        reply-to `amq.rabbitmq.reply-to…`), with the request's `correlation_id`. Body: UTF-8 \
        JSON, content_type `application/json`.";
    finish(FILE, "suitcase.reply", description, body, &defs)
}
