//! Many bad and good inputs at once, over two workers.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bad_and_good_inputs_over_two_workers() {
    let f = fixture(2).await;
    let corr = || BasicProperties::default().with_correlation_id(ShortString::from("corr"));
    // (routing key, body, properties, code)
    let bad = |i: usize| -> (String, Vec<u8>, BasicProperties, &'static str) {
        let chat = format!("bad-{i}");
        let key = key();
        let plain = BasicProperties::default;
        match i % 10 {
            0 => (
                key,
                format!("not json {i} {{").into_bytes(),
                plain(),
                "not_json",
            ),
            1 => (
                ACC.to_owned(),
                format!("[{i}, 2]").into_bytes(),
                plain(),
                "invalid_field",
            ),
            2 => {
                let mut b = inbound(ACC, &chat, "hi");
                b["type"] = json!("message.deleted");
                (key, bytes(&b), plain(), "unknown_type")
            }
            3 => {
                let mut b = inbound(ACC, &chat, "hi");
                b["chatType"] = json!("icq");
                (key, bytes(&b), plain(), "invalid_field")
            }
            4 => {
                let mut b = inbound(ACC, &chat, "hi");
                b["channelId"] = json!("ghost-channel");
                (key, bytes(&b), plain(), "unknown_channel")
            }
            5 => (key, inbound_of_size(&chat, LIMIT + 1), plain(), "too_large"),
            6 => (
                key,
                bytes(&outbound(ACC, &chat, "ghost", "hi")),
                plain(),
                "unknown_user",
            ),
            7 => {
                let b = event(
                    "users.upserted",
                    ACC,
                    json!({ "users": [{ "userId": "a0", "name": "A", "access": [
                        { "channelId": "wa", "role": "manager", "receivesNewClients": true },
                        { "channelId": "ghost-channel", "role": "manager", "receivesNewClients": true } ] }] }),
                );
                (ACC.to_owned(), bytes(&b), plain(), "unknown_channel")
            }
            8 => (
                ACC.to_owned(),
                bytes(&first_reply_settings("p", "ghost-stage")),
                plain(),
                "invalid",
            ),
            _ => (key, bytes(&suitcase(&chat)), corr(), "invalid"),
        }
    };

    let mut expected: HashMap<Vec<u8>, &str> = HashMap::new();
    let mut good = Vec::new();
    let (mut b, mut g) = (0, 0);
    for n in 0..30 {
        if n % 3 == 2 {
            let chat = format!("good-{g}");
            f.app.publish_event(&inbound(ACC, &chat, "hello")).await;
            good.push(chat);
            g += 1;
        } else {
            let (key, body, props, code) = bad(b);
            f.app.publish_raw(&key, &body, props).await;
            assert!(
                expected.insert(body, code).is_none(),
                "bad bodies are distinct"
            );
            b += 1;
        }
    }
    assert_eq!((expected.len(), good.len()), (20, 10));

    let dead = f.app.dead(20).await;
    assert_eq!(dead.len(), 20, "{:?}", describe(&dead));
    for letter in &dead {
        let code = expected.remove(&letter.body).unwrap_or_else(|| {
            panic!(
                "unexpected dead letter {:?}",
                describe(std::slice::from_ref(letter))
            )
        });
        let header = letter.header("x-switchboard-error").unwrap_or_default();
        assert!(
            header.starts_with(&format!("{code}:")),
            "expected {code}, got {header:?}"
        );
    }
    assert!(expected.is_empty());

    // The ten good clients, evenly over the two managers, each exactly once.
    let (m1, m2, qc, crm, sent) = tokio::join!(
        f.app.notes(ACC, "m1", 5),
        f.app.notes(ACC, "m2", 5),
        f.app.notes(ACC, "q", 10),
        f.app.take(&f.crm, 20, WAIT),
        f.app.take(&f.outbound, 0, WAIT),
    );
    assert!(
        m1.iter()
            .chain(&m2)
            .chain(&qc)
            .all(|n| n["type"] == "chat.new"),
        "{m1:?} {m2:?} {qc:?}"
    );
    assert_eq!(
        (m1.len(), m2.len()),
        (5, 5),
        "round robin stays even: {m1:?} {m2:?}"
    );
    let chats = |notes: &[Value]| {
        notes
            .iter()
            .map(|n| n["chatId"].as_str().unwrap().to_owned())
            .collect::<BTreeSet<_>>()
    };
    let all: BTreeSet<String> = good.iter().cloned().collect();
    assert_eq!(
        chats(&m1)
            .union(&chats(&m2))
            .cloned()
            .collect::<BTreeSet<_>>(),
        all
    );
    assert_eq!(chats(&qc), all);
    assert_eq!(qc.len(), 10);
    let count = |t: &str| crm.iter().filter(|m| m.json["type"] == t).count();
    assert_eq!(
        (crm.len(), count("contact.created"), count("deal.created")),
        (20, 10, 10)
    );
    assert!(sent.is_empty());
    assert!(!f.app.queue_exists(&f.app.user_queue(ACC, "a0")).await);
    f.app.cleanup().await;
}
