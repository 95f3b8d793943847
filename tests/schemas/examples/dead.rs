//! `schemas/examples/dead/`: dead letters as an operator reads them from
//! `P.dead`, in the shape of an AsyncAPI message example: the `headers` the
//! worker adds and the refused body as `payload`. Each is named after its
//! reason code, and the worker itself, given that body with that routing key,
//! refuses it with exactly that header.

use lapin::message::Delivery;
use serde_json::Value;
use switchboard::names;
use switchboard::worker::pipeline;

use super::form;
use crate::asyncapi::{document, messages};
use crate::{json_files, schemas_dir};

/// Every dead-letter example as `(file under examples/, value)`.
pub fn dead_letters() -> Vec<(String, Value)> {
    let files = json_files(&schemas_dir().join("examples"), "dead");
    assert!(
        !files.is_empty(),
        "no dead-letter example under schemas/examples/dead/"
    );
    files
        .into_iter()
        .map(|file| {
            let value = crate::read_json(&format!("examples/{file}"));
            (file, value)
        })
        .collect()
}

fn header<'a>(example: &'a Value, name: &str, file: &str) -> &'a str {
    example["headers"][name]
        .as_str()
        .unwrap_or_else(|| panic!("examples/{file} has no header {name}"))
}

#[test]
fn dead_letter_examples_are_what_the_worker_writes() {
    let doc = document();
    let headers_schema = &messages(&doc)["deadLetter"]["headers"];
    let headers_ok = jsonschema::draft7::new(headers_schema)
        .unwrap_or_else(|e| panic!("deadLetter.headers does not compile: {e}"));
    let mut wrong_key = false;
    for (file, example) in dead_letters() {
        let keys: Vec<&String> = example
            .as_object()
            .unwrap_or_else(|| panic!("examples/{file} is not an object"))
            .keys()
            .collect();
        assert_eq!(
            keys,
            ["headers", "payload"],
            "examples/{file}: headers and payload only"
        );
        assert!(
            headers_ok.is_valid(&example["headers"]),
            "examples/{file}: its headers fail deadLetter.headers of asyncapi.json"
        );
        let error = header(&example, "x-switchboard-error", &file);
        let routing_key = header(&example, "x-switchboard-routing-key", &file);
        let body = serde_json::to_vec(&example["payload"]).expect("serializes");
        let delivery = Delivery::mock(
            1,
            "switchboard.inbound".into(),
            routing_key.into(),
            false,
            body,
        );
        let rejection = match pipeline::admit(delivery).event {
            Ok(event) => panic!(
                "examples/{file}: the worker accepts it as {}",
                event.type_name()
            ),
            Err(rejection) => rejection,
        };
        assert_eq!(
            error,
            rejection.header(),
            "examples/{file}: the worker's reason"
        );
        assert_eq!(
            form(&file),
            rejection.code(),
            "examples/{file} is named after its code"
        );
        if let Some(account) = example["payload"]["accountId"].as_str() {
            let own = names::inbound_key(&switchboard::ids::Id::parse(account).expect("an id"));
            wrong_key |= own != routing_key;
        }
    }
    assert!(
        wrong_key,
        "no dead-letter example shows an event published with another key than its account's"
    );
}
