//! `switchboard publish FILE|-`: sends JSON events to `P.inbound` as a gateway
//! or a CRM would: routing key the account's ([`inbound_key`]), persistent,
//! `application/json`, each confirmed by the broker.
//!
//! The input is read whole and checked before anything is sent (every event an
//! object with a valid `accountId`), so a typo in line 40 does not leave 39
//! events sent. The events go out in input order on one channel, so the broker
//! keeps that order. The worker validates the rest: an event it cannot accept
//! lands in `P.dead` (see `switchboard dead list`).

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Confirmation, Connection, PublisherConfirm};
use serde_json::Value;

use super::{OpsError, close_channel, within};
use crate::ids::Id;
use crate::names::{Names, inbound_key};

/// Confirms awaited at once; bounds memory on a large file.
const WINDOW: usize = 256;

/// One event ready to go: its routing key and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub routing_key: String,
    pub body: Vec<u8>,
}

/// Parses one JSON object, an array of them, or one per line (any mix of
/// whitespace between values), and finds each one's routing key.
pub fn parse(text: &str) -> Result<Vec<Outgoing>, OpsError> {
    let mut values = Vec::new();
    for (n, value) in serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
    {
        let value =
            value.map_err(|e| OpsError::Input(format!("value {}: not JSON: {e}", n + 1)))?;
        match value {
            Value::Array(items) => values.extend(items),
            other => values.push(other),
        }
    }
    if values.is_empty() {
        return Err(OpsError::Input("no events in the input".into()));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(n, event)| outgoing(n + 1, event))
        .collect()
}

fn outgoing(n: usize, event: Value) -> Result<Outgoing, OpsError> {
    let Value::Object(fields) = &event else {
        return Err(OpsError::Input(format!("event {n}: not a JSON object")));
    };
    let account = fields
        .get("accountId")
        .and_then(Value::as_str)
        .ok_or_else(|| OpsError::Input(format!("event {n}: no string `accountId`")))?;
    let account =
        Id::parse(account).map_err(|e| OpsError::Input(format!("event {n}: `accountId` {e}")))?;
    let body = serde_json::to_vec(&event).map_err(|e| OpsError::Input(e.to_string()))?;
    Ok(Outgoing {
        routing_key: inbound_key(&account),
        body,
    })
}

/// Publishes every event in order and returns how many the broker confirmed.
pub async fn publish(
    conn: &Connection,
    names: &Names,
    events: &[Outgoing],
) -> Result<usize, OpsError> {
    // A missing exchange is told before anything is sent (a publish to it
    // would close the channel under the publishes that follow).
    let exchange = names.inbound();
    if !super::probe::exchange(conn, &exchange, "exchange.declare").await? {
        return Err(missing_exchange(&exchange));
    }
    let channel = within("opening a channel", conn.create_channel()).await?;
    let result = send(&channel, names, events).await;
    close_channel(&channel).await;
    result
}

async fn send(
    channel: &lapin::Channel,
    names: &Names,
    events: &[Outgoing],
) -> Result<usize, OpsError> {
    within(
        "confirm.select",
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    let exchange = names.inbound();
    let mut confirmed = 0;
    for window in events.chunks(WINDOW) {
        let mut pending: Vec<PublisherConfirm> = Vec::with_capacity(window.len());
        for event in window {
            let props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            let publish =
                publish_mandatory(channel, &exchange, &event.routing_key, &event.body, props);
            pending.push(publish.await.map_err(|e| no_exchange(e, &exchange))?);
        }
        for confirm in pending {
            let n = confirmed + 1;
            let confirmation = within("a publisher confirm", confirm)
                .await
                .map_err(|e| no_exchange(e, &exchange))?;
            match taken(confirmation) {
                Ok(()) => confirmed += 1,
                Err(Unsent::Unroutable) => {
                    return Err(OpsError::Refused(format!(
                        "event {n}: {exchange} routed it nowhere (no partition queue bound); start a worker with this --prefix first ({confirmed} sent before it)"
                    )));
                }
                Err(Unsent::Refused) => {
                    return Err(OpsError::Refused(format!(
                        "event {n}: the broker refused it ({confirmed} sent before it)"
                    )));
                }
            }
        }
    }
    Ok(confirmed)
}

/// Publishes `body` to `exchange` as `mandatory`, so that a message no queue
/// takes comes back instead of vanishing; the confirm is the caller's to await.
pub(super) async fn publish_mandatory(
    channel: &lapin::Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Result<PublisherConfirm, OpsError> {
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let publish = channel.basic_publish(exchange.into(), key.into(), options, body, properties);
    within("basic.publish", publish).await
}

/// Why the broker did not take a mandatory message.
pub(super) enum Unsent {
    /// No queue is bound for its routing key: it came back.
    Unroutable,
    /// The broker nacked it.
    Refused,
}

/// Whether the broker took a mandatory message, from its confirm.
pub(super) fn taken(confirmation: Confirmation) -> Result<(), Unsent> {
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) => Err(Unsent::Unroutable),
        Confirmation::Nack(_) => Err(Unsent::Refused),
    }
}

fn no_exchange(error: OpsError, exchange: &str) -> OpsError {
    match error {
        e if e.is_not_found() => missing_exchange(exchange),
        other => other,
    }
}

fn missing_exchange(exchange: &str) -> OpsError {
    OpsError::NotFound(format!(
        "exchange {exchange} does not exist: start a worker with this --prefix first (it declares the topology)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_an_array_or_one_per_line() {
        let one = parse(r#"{"accountId":"acme.ru","type":"x"}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].routing_key, "acme%2Eru");
        let array = parse(r#"[{"accountId":"a"},{"accountId":"b"}]"#).unwrap();
        assert_eq!(
            array
                .iter()
                .map(|o| o.routing_key.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        let lines =
            parse("{\"accountId\":\"a\"}\n{\"accountId\":\"b\"}\n\n{\"accountId\":\"c\"}\n")
                .unwrap();
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn nothing_is_sent_when_one_event_is_wrong() {
        let err = parse("{\"accountId\":\"a\"}\n{\"type\":\"x\"}").unwrap_err();
        assert!(err.to_string().contains("event 2"), "{err}");
        assert!(
            parse("{\"accountId\":\"a\"} nope")
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
        assert!(parse("  ").is_err());
        assert!(
            parse("[1]")
                .unwrap_err()
                .to_string()
                .contains("not a JSON object")
        );
    }
}
