//! The `examples` of each message are the example files under
//! `schemas/examples/`, in the order of their names, so an integrator reading
//! the AsyncAPI document sees exactly what the tests check against the schemas
//! and the worker's types. Header examples satisfy the message's `headers`.

use serde_json::Value;

use super::{DOCUMENT, document, messages, payload_file};
use crate::examples::dead::dead_letters;
use crate::examples::{examples_of, form};

/// What a message's `examples` must hold: `(name, payload)`, or `(name, whole
/// example)` for the dead letters, whose files hold headers and payload.
fn expected(key: &str, message: &Value) -> Vec<(String, Value)> {
    if let Some(schema) = payload_file(message) {
        return examples_of(schema)
            .into_iter()
            .map(|e| (form(&e.file).to_owned(), e.value))
            .collect();
    }
    assert_eq!(key, "deadLetter", "message {key} has no payload file");
    dead_letters()
        .into_iter()
        .map(|(file, value)| {
            let name = form(&file).to_owned();
            (name, value)
        })
        .collect()
}

#[test]
fn message_examples_are_the_example_files() {
    let doc = document();
    let how = "run .ci/asyncapi-examples to copy them from schemas/examples/";
    for (key, message) in messages(&doc) {
        let examples = message["examples"]
            .as_array()
            .unwrap_or_else(|| panic!("message {key} has no examples: {how}"));
        let wanted = expected(&key, &message);
        let names: Vec<&str> = examples
            .iter()
            .map(|e| e["name"].as_str().unwrap_or_default())
            .collect();
        let wanted_names: Vec<&str> = wanted.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, wanted_names, "the examples of message {key}: {how}");
        for ((name, file), example) in wanted.iter().zip(examples) {
            assert!(
                example["summary"].is_string(),
                "example {name} of message {key} has no summary"
            );
            if key == "deadLetter" {
                assert_eq!(
                    example["headers"], file["headers"],
                    "the headers of example {name} of message {key} in schemas/{DOCUMENT}: {how}"
                );
                assert_eq!(
                    example["payload"], file["payload"],
                    "the payload of example {name} of message {key} in schemas/{DOCUMENT}: {how}"
                );
            } else {
                assert_eq!(
                    &example["payload"], file,
                    "the payload of example {name} of message {key} in schemas/{DOCUMENT}: {how}"
                );
            }
            match message.get("headers") {
                Some(headers) => {
                    let check = jsonschema::draft7::new(headers)
                        .unwrap_or_else(|e| panic!("{key}.headers does not compile: {e}"));
                    assert!(
                        check.is_valid(&example["headers"]),
                        "the headers of example {name} of message {key} fail its headers schema"
                    );
                }
                None => assert!(
                    example.get("headers").is_none(),
                    "example {name} of message {key} has headers its message does not describe"
                ),
            }
        }
    }
}
