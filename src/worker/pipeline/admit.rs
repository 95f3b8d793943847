//! The edge: a delivery becomes a typed event (or the reason it cannot be
//! accepted) and learns what it may not overtake in its account.

use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::AMQPValue;

use crate::events::{self, Event, Rejection};
use crate::handlers;
use crate::ids::Id;
use crate::names;
use crate::worker::sequencer::Scope;

/// How often the broker may deliver one event before the worker gives up on
/// it and dead-letters it. Redeliveries come from crashed workers, lost
/// connections and partitions handed over, so the bound is generous; it stops
/// an event that brings down whoever handles it from cycling for ever.
pub const MAX_DELIVERIES: i64 = 25;

/// A delivery as it arrived, parsed at the edge.
pub struct Admitted {
    pub delivery: Delivery,
    /// The typed event, or why it cannot be accepted.
    pub event: Result<Event, Rejection>,
    /// The account and what the event may not overtake in it; `None` for input
    /// that is dead-lettered whatever came before it.
    pub order: Option<(Id, Scope)>,
}

/// Parses a delivery: body to a typed event; the routing key must be the
/// event's own account's; a delivery the broker has made too often is given up.
pub fn admit(delivery: Delivery) -> Admitted {
    let deliveries = delivery_count(&delivery.properties);
    let event = if deliveries >= MAX_DELIVERIES {
        Err(Rejection::Invalid(format!(
            "delivered {deliveries} times without being handled; given up"
        )))
    } else {
        events::parse(&delivery.data).and_then(|event| {
            let account = &event.envelope().account_id;
            if delivery.routing_key.as_str() == names::inbound_key(account) {
                Ok(event)
            } else {
                Err(Rejection::Invalid(
                    "the routing key is not the event's own accountId (escaped as in AMQP names)"
                        .into(),
                ))
            }
        })
    };
    let order = event.as_ref().ok().map(|event| {
        let scope = match handlers::chat_query(event) {
            Some(query) => Scope::Chat(query.chat),
            None => Scope::Account,
        };
        (event.envelope().account_id.clone(), scope)
    });
    Admitted {
        delivery,
        event,
        order,
    }
}

/// The broker's count of earlier deliveries of this message (quorum queues
/// set `x-delivery-count` on redeliveries).
fn delivery_count(properties: &BasicProperties) -> i64 {
    let Some(value) = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count"))
    else {
        return 0;
    };
    match value {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::FieldTable;

    fn delivery(routing_key: &str, deliveries: Option<i64>) -> Delivery {
        let body = serde_json::json!({ "eventId": "e1", "type": "message.inbound", "accountId": "acme.ru",
            "occurredAt": "2026-11-26T10:00:00Z", "messageId": "m", "channelId": "wa",
            "chatType": "whatsapp", "chatId": "c1" });
        let mut d = Delivery::mock(
            1,
            "P.inbound".into(),
            routing_key.into(),
            false,
            body.to_string().into_bytes(),
        );
        if let Some(n) = deliveries {
            let mut headers = FieldTable::default();
            headers.insert("x-delivery-count".into(), AMQPValue::LongLongInt(n));
            d.properties = BasicProperties::default().with_headers(headers);
        }
        d
    }

    #[test]
    fn an_event_on_its_accounts_key_is_admitted_in_its_chat() {
        let admitted = admit(delivery("acme%2Eru", Some(3)));
        assert!(admitted.event.is_ok());
        let (account, scope) = admitted.order.unwrap();
        assert_eq!(account.as_str(), "acme.ru");
        assert!(matches!(scope, Scope::Chat(chat) if chat.chat_id.as_str() == "c1"));
    }

    #[test]
    fn another_accounts_key_is_refused() {
        for key in ["acme.ru", "other", "acme%2Eru.whatsapp.c1"] {
            let admitted = admit(delivery(key, None));
            let rejection = admitted.event.unwrap_err();
            assert_eq!(rejection.code(), "invalid", "{key}");
            assert!(admitted.order.is_none());
        }
    }

    #[test]
    fn an_event_delivered_too_often_is_given_up() {
        let admitted = admit(delivery("acme%2Eru", Some(MAX_DELIVERIES)));
        let rejection = admitted.event.unwrap_err();
        assert!(
            rejection
                .header()
                .starts_with("invalid: delivered 25 times"),
            "{}",
            rejection.header()
        );
        assert!(
            admit(delivery("acme%2Eru", Some(MAX_DELIVERIES - 1)))
                .event
                .is_ok()
        );
    }
}
