//! Input that is not an event: the dead letter keeps its bytes and the worker
//! goes on. One test per kind of bad input whose way end to end matters
//! (bytes that are not UTF-8, the type named in the reason, the size limit);
//! the invalid fields in one table on one worker.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_json_is_dead_lettered() {
    let f = fixture(1).await;
    // Not JSON, and not even UTF-8: the dead letter must still be byte-identical.
    let body = b"{\"type\": \"message.inbound\", \"eventId\": \xff\xfe oops";
    expect_dead(&f, &key(), body, BasicProperties::default(), "not_json").await;
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_type_is_dead_lettered() {
    let f = fixture(1).await;
    let mut body = inbound(ACC, "c-bad", "hi");
    body["type"] = json!("message.deleted");
    let header = expect_dead_json(&f, &key(), &body, "unknown_type").await;
    assert!(header.contains("message.deleted"), "{header}");
    expect_next_client(&f, "c-next", "m1").await;
    f.app.cleanup().await;
}

/// A bad field: the routing key, the body, what the reason names, and the
/// client who writes next.
struct BadField {
    why: &'static str,
    key: String,
    body: Vec<u8>,
    names: Option<&'static str>,
    next: String,
}

fn bad_fields() -> Vec<BadField> {
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = inbound(ACC, "c-bad", "hi");
        edit(&mut body);
        bytes(&body)
    };
    let row = |why, key: String, body, names, next: &str| BadField {
        why,
        key,
        body,
        names,
        next: next.to_owned(),
    };
    vec![
        // Valid JSON, but no event: there is no `type` to read.
        row(
            "JSON that is not an object",
            ACC.to_owned(),
            b"[1,2]".to_vec(),
            None,
            "c-next-1",
        ),
        row(
            "a missing type",
            key(),
            with(&|b| drop(b.as_object_mut().unwrap().remove("type"))),
            Some("type"),
            "c-next-2",
        ),
        row(
            "a missing chatId (the header names the field)",
            key(),
            with(&|b| drop(b.as_object_mut().unwrap().remove("chatId"))),
            Some("chatId"),
            "c-next-3",
        ),
        row(
            "an unknown chat type",
            format!("{ACC}.icq.c-bad"),
            with(&|b| b["chatType"] = json!("icq")),
            None,
            "c-next-4",
        ),
        // The shortest id is fine.
        row(
            "an empty id",
            key(),
            bytes(&inbound(ACC, "", "hi")),
            None,
            "x",
        ),
        // 128 characters are allowed, even when they are 256 bytes of UTF-8.
        row(
            "an id of 129 characters",
            key(),
            bytes(&inbound(ACC, &"é".repeat(129), "hi")),
            None,
            &"é".repeat(128),
        ),
        // Any printable character is allowed, separators and braces included.
        row(
            "an id with a control character",
            key(),
            bytes(&inbound(ACC, "c-\u{7}bell", "hi")),
            None,
            "c {x}:*.é",
        ),
        row(
            "occurredAt not RFC 3339",
            key(),
            with(&|b| b["occurredAt"] = json!("25.11.2026 10:00")),
            None,
            "c-next-8",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fields_are_dead_lettered() {
    let f = fixture(1).await;
    for (n, bad) in bad_fields().into_iter().enumerate() {
        let props = BasicProperties::default();
        let header = expect_dead(&f, &bad.key, &bad.body, props, "invalid_field").await;
        if let Some(field) = bad.names {
            assert!(header.contains(field), "{}: {header}", bad.why);
        }
        // Each refused input took no turn: the clients after them alternate.
        let manager = if n % 2 == 0 { "m1" } else { "m2" };
        expect_next_client(&f, &bad.next, manager).await;
    }
    f.app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_256_kib_is_dead_lettered_and_one_at_the_limit_is_accepted() {
    let f = fixture(1).await;
    let over = inbound_of_size("c-big", LIMIT + 1);
    expect_dead(&f, &key(), &over, BasicProperties::default(), "too_large").await;

    // Exactly 256 KiB is not over the limit: accepted, and it gets m1's turn,
    // which the refused one did not take.
    let at_limit = inbound_of_size("c-limit", LIMIT);
    f.app
        .publish_raw(&key(), &at_limit, BasicProperties::default())
        .await;
    let got = f.app.notes(ACC, "m1", 1).await;
    assert_eq!(kinds(&got), ["chat.new"]);
    assert_eq!(got[0]["chatId"], "c-limit");
    let text_len = serde_json::from_slice::<Value>(&at_limit).unwrap()["text"]
        .as_str()
        .unwrap()
        .len();
    assert_eq!(
        got[0]["text"].as_str().map(str::len),
        Some(text_len),
        "the whole text arrived"
    );
    let (m2, qc, crm) = tokio::join!(
        f.app.notes(ACC, "m2", 0),
        f.app.notes(ACC, "q", 1),
        f.app.take(&f.crm, 2, WAIT)
    );
    assert!(m2.is_empty(), "{m2:?}");
    assert_eq!(kinds(&qc), ["chat.new"]);
    assert_eq!(qc[0]["chatId"], "c-limit");
    assert_eq!(crm.len(), 2);
    assert!(crm.iter().all(|m| m.json["responsibleUserId"] == "m1"));
    let dead = f.app.dead(0).await;
    assert!(dead.is_empty(), "{:?}", describe(&dead));

    expect_next_client(&f, "c-next", "m2").await;
    f.app.cleanup().await;
}
