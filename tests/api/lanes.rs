//! A chat's events in a pipeline: the next event of a chat starts once the
//! earlier one's outputs are on the channel, before their confirms, and sends
//! its own once the earlier one is acked. With a backlog of a few hot chats and
//! many events of each in flight at once, each user still gets a chat's
//! messages in the order they were published; and a connection cut in the
//! middle loses nothing, creates nothing twice and keeps that order (a chat's
//! events are acked only after their confirms, in order, so what the cut left
//! unacked is redelivered in order). A queue that refuses messages for a while
//! (a broker policy: `max-length` 1, `reject-publish`) has the refused events
//! sent again later: the later events of their chats wait for them, so the
//! order holds there too. Without the wait it failed about 2 runs in 3; with a
//! wait only for sends on another channel than the earlier event's, about 1 in
//! 4 (the full queue, read in between, refused one message and accepted the
//! next on the same channel). A queue that refuses everything (a stream of
//! events for it) stalls no other account: after 10 s of refusals its
//! messages go to `P.dead` as `undelivered`, and a replay delivers them once
//! it takes messages again; before, each of those events held its place for
//! 10 tries and the other account waited minutes (and each refusal closed the
//! publishing channel under its messages: repeats).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::ops::{self, depth, send};
use crate::helpers::proxy::Proxy;
use crate::helpers::*;
use switchboard::ops::{dead, replay};

const CHATS: usize = 3;
const PER_CHAT: u32 = 80;
const STAFF: [Staff<'static>; 3] = [
    ("m1", "manager", true),
    ("m2", "manager", true),
    ("q", "quality_control", false),
];

/// Every chat's messages `0..PER_CHAT`, the chats interleaved as a gateway
/// would publish them.
fn backlog() -> Vec<Value> {
    (0..PER_CHAT)
        .flat_map(|i| (0..CHATS).map(move |c| inbound("acc", &format!("hot-{c}"), &i.to_string())))
        .collect()
}

/// Each chat's texts in the order a user got them, repeats (the same
/// `notificationId` again, as a redelivery publishes it) left out; a repeat
/// must say what it said the first time, and one message of a chat must not
/// reach the user under two ids.
fn in_arrival_order(notes: &[Value]) -> BTreeMap<String, Vec<u32>> {
    let mut first: HashMap<String, u32> = HashMap::new();
    let mut by_chat: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for note in notes {
        let text: u32 = note["text"].as_str().unwrap().parse().unwrap();
        let id = note["notificationId"].as_str().unwrap().to_owned();
        match first.get(&id) {
            Some(said) => assert_eq!(*said, text, "a repeat of {id} says something else"),
            None => {
                first.insert(id, text);
                let chat = note["chatId"].as_str().unwrap().to_owned();
                let texts = by_chat.entry(chat.clone()).or_default();
                assert!(
                    !texts.contains(&text),
                    "{chat}: message {text} under two ids"
                );
                texts.push(text);
            }
        }
    }
    by_chat
}

/// Every chat got all its messages, in order.
fn assert_all_in_order(by_chat: &BTreeMap<String, Vec<u32>>, who: &str) {
    assert_eq!(by_chat.len(), CHATS, "{who}: chats");
    for (chat, texts) in by_chat {
        assert_eq!(
            texts,
            &(0..PER_CHAT).collect::<Vec<_>>(),
            "{who}: {chat} out of order or incomplete"
        );
    }
}

/// Takes `user`'s notifications until every message of the backlog arrived
/// (repeats come on top), or nothing more comes.
async fn all_notes(app: &TestApp, user: &str) -> Vec<Value> {
    let want = CHATS * PER_CHAT as usize;
    let mut notes = Vec::new();
    loop {
        let unique = |notes: &[Value]| {
            in_arrival_order(notes)
                .values()
                .map(Vec::len)
                .sum::<usize>()
        };
        let missing = want.saturating_sub(unique(&notes));
        if missing == 0 {
            return notes;
        }
        let more = app.notes("acc", user, missing).await;
        if more.is_empty() {
            return notes;
        }
        notes.extend(more);
    }
}

/// The managers' notifications: each chat went to one of them, whole and in order.
/// Returns how many notifications they got, repeats included.
async fn assert_managers_in_order(app: &TestApp) -> usize {
    let mut by_chat = BTreeMap::new();
    let mut total = 0;
    for m in ["m1", "m2"] {
        let notes = app.notes("acc", m, 1).await;
        total += notes.len();
        for (chat, texts) in in_arrival_order(&notes) {
            assert!(
                by_chat.insert(chat.clone(), texts).is_none(),
                "{chat} with both managers"
            );
        }
    }
    assert_all_in_order(&by_chat, "managers");
    total
}

/// Stops the set-up's worker, queues the backlog, and starts a worker with
/// many events in flight (`config` tuned by the test).
async fn start_on_backlog(app: &TestApp, config: switchboard::Config) {
    setup_account(app, "acc", &STAFF, Some("round_robin")).await;
    app.stop_workers().await;
    send(app, &backlog()).await;
    app.start_worker(config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_events_of_a_few_hot_chats_in_flight_reach_each_user_in_order() {
    let app = TestApp::spawn_with(1, |c| c.concurrency = 64).await;
    start_on_backlog(&app, app.config()).await;

    let notes = all_notes(&app, "q").await;
    assert_eq!(
        notes.len(),
        CHATS * PER_CHAT as usize,
        "no fault, no repeats"
    );
    assert_all_in_order(&in_arrival_order(&notes), "quality control");
    assert_eq!(
        assert_managers_in_order(&app).await,
        CHATS * PER_CHAT as usize,
        "no fault, no repeats"
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_cut_mid_stream_loses_nothing_and_keeps_each_chats_order() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let mut app = TestApp::spawn_with(1, |c| {
        c.concurrency = 64;
        c.amqp_url = format!("amqp://guest:guest@{}/%2f", proxy.addr);
    })
    .await;
    let crm = app.bind_crm().await;
    start_on_backlog(&app, app.config()).await;

    // Cut once the worker is well into the backlog, with events in flight.
    let queue = app.user_queue("acc", "q");
    let deadline = Instant::now() + Duration::from_secs(30);
    while depth(&app, &queue).await < CHATS as u32 * PER_CHAT / 4 {
        assert!(Instant::now() < deadline, "the worker never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(proxy.cut().await > 0, "the worker's connection was cut");
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore();

    assert_all_in_order(
        &in_arrival_order(&all_notes(&app, "q").await),
        "quality control",
    );
    assert_managers_in_order(&app).await;
    let created = app.take(&crm, CHATS * 2, Duration::from_secs(20)).await;
    let contacts = by_type(&created, "contact.created");
    assert_eq!(
        ids(&created, "contact.created", "contactId").len(),
        CHATS,
        "{contacts:?}"
    );
    app.cleanup().await;
}

/// Sets a broker policy on the one queue `queue` (`rabbitmqctl set_policy`),
/// or clears it with `definition` `None`.
fn policy(name: &str, queue: &str, definition: Option<&str>) {
    let pattern = format!("^{}$", queue.replace('.', "\\."));
    let mut args = vec!["30", "rabbitmqctl"];
    match definition {
        Some(definition) => args.extend([
            "set_policy",
            "--apply-to",
            "queues",
            "--priority",
            "100",
            name,
            pattern.as_str(),
            definition,
        ]),
        None => args.extend(["clear_policy", name]),
    }
    // `timeout`: a broker that stopped answering must fail the test, not hang it.
    let out = std::process::Command::new("timeout")
        .args(&args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `verdict` (at most 120 s), then clears the policy `name` on
/// `queue`, also when it ran out of time.
async fn then_clear<T>(
    name: &str,
    queue: &str,
    verdict: impl std::future::Future<Output = T>,
) -> T {
    let verdict = tokio::time::timeout(Duration::from_secs(120), verdict).await;
    policy(name, queue, None);
    verdict.expect("done within 120 s")
}

/// Waits until the broker refuses a message to `queue` (a policy takes a
/// moment to reach a queue); at most 20 s.
async fn until_refused(app: &TestApp, queue: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let probe = async {
            app.channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    Default::default(),
                    b"{}",
                    lapin::BasicProperties::default(),
                )
                .await?
                .await
        };
        if let lapin::Confirmation::Nack(_) = timed("a probe", probe).await.unwrap() {
            return;
        }
        assert!(Instant::now() < deadline, "{queue} never refused a message");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `P.dead` holds `want` messages, failing after `within`.
async fn until_dead_letters(app: &TestApp, want: u32, within: Duration) {
    let dead_queue = app.names.dead();
    let deadline = Instant::now() + within;
    while depth(app, &dead_queue).await < want {
        assert!(
            Instant::now() < deadline,
            "not {want} dead letters in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Consumes `queue` until `want` distinct messages came (repeats on top) or
/// nothing came for 5 s; every message, in arrival order.
async fn drain(app: &TestApp, queue: &str, want: usize) -> Vec<Value> {
    use futures_util::StreamExt;
    let channel = timed("channel.open", app.conn.create_channel())
        .await
        .unwrap();
    let consume = channel.basic_consume(
        queue.into(),
        "drain".into(),
        lapin::options::BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        lapin::types::FieldTable::default(),
    );
    let mut consumer = timed("basic.consume", consume).await.unwrap();
    let mut notes: Vec<Value> = Vec::new();
    let unique = |notes: &[Value]| {
        in_arrival_order(notes)
            .values()
            .map(Vec::len)
            .sum::<usize>()
    };
    while unique(&notes) < want {
        match tokio::time::timeout(Duration::from_secs(5), consumer.next()).await {
            Ok(Some(Ok(delivery))) => notes.push(serde_json::from_slice(&delivery.data).unwrap()),
            _ => break,
        }
    }
    let _ = timed("channel.close", channel.close(200, "drained".into())).await;
    notes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_message_is_not_overtaken_by_the_later_events_of_its_chat() {
    let app = TestApp::spawn_with(1, |c| c.concurrency = 64).await;
    setup_account(&app, "acc", &STAFF, Some("round_robin")).await;
    // Quality control's queue takes one message, then refuses (nacks) every
    // publish until someone reads it: the refused events are sent again later,
    // on a fresh channel, while the later events of their chats are running.
    let queue = app.user_queue("acc", "q");
    let name = format!("{}-refuse", app.prefix);
    policy(
        &name,
        &queue,
        Some(r#"{"max-length":1,"overflow":"reject-publish"}"#),
    );
    let verdict = async {
        app.stop_workers().await;
        send(&app, &backlog()).await;
        app.start_worker(app.config()).await;
        // Refused for a while (each refused event retries with backoff; its
        // chat's later events must wait for it), then read as fast as it comes.
        let deadline = Instant::now() + Duration::from_secs(20);
        while depth(&app, &queue).await < 1 {
            assert!(Instant::now() < deadline, "the worker never got going");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let notes = drain(&app, &queue, CHATS * PER_CHAT as usize).await;
        let dead = app.dead(0).await;
        (notes, dead)
    };
    let (notes, dead) = then_clear(&name, &queue, verdict).await;
    let reasons: Vec<_> = dead
        .iter()
        .map(|d| d.header("x-switchboard-error"))
        .collect();
    assert!(dead.is_empty(), "nothing given up: {reasons:?}");
    // Quality control got each chat whole and in order, the refused ones later.
    assert_all_in_order(&in_arrival_order(&notes), "quality control");
    // A refused event is sent again whole: its manager's notification repeats.
    let repeats = assert_managers_in_order(&app).await - CHATS * PER_CHAT as usize;
    assert!(repeats > 0, "quality control's queue refused messages");
    eprintln!("refused queue: {repeats} events sent again");
    app.cleanup().await;
}

/// `full`'s chats: [`FULL_PER_CHAT`] messages each, interleaved.
const FULL_CHATS: usize = 40;
const FULL_PER_CHAT: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_that_keeps_refusing_stalls_no_other_account() {
    let app = TestApp::spawn_with(1, |c| c.concurrency = 64).await;
    setup_account(&app, "acc", &STAFF, Some("round_robin")).await;
    setup_account(&app, "full", &STAFF, Some("round_robin")).await;
    // Account `full`'s quality control has a queue that refuses every message
    // (a user who reads nothing, a `max-length` policy). 400 of `full`'s
    // events come first, then `acc`'s backlog, all on one worker, one
    // partition. Each refusal renews the publishing channel under `acc`'s
    // messages; each refused event is tried again. Before, every such event
    // held its delivery and its place for 10 tries (16-30 s), so `full`'s
    // stream filled the window and `acc` waited minutes. Now the worker finds
    // within 10 s that the queue refuses everything and puts its messages on
    // `P.dead` (`undelivered`) instead: `full`'s other users and `acc` go on.
    const FULL: usize = FULL_CHATS * FULL_PER_CHAT;
    let queue = app.user_queue("full", "q");
    let name = format!("{}-refuse-all", app.prefix);
    policy(
        &name,
        &queue,
        Some(r#"{"max-length":0,"overflow":"reject-publish"}"#),
    );
    until_refused(&app, &queue).await;
    let verdict = async {
        app.stop_workers().await;
        let refused = (0..FULL_PER_CHAT).flat_map(|i| {
            (0..FULL_CHATS).map(move |c| inbound("full", &format!("f-{c}"), &i.to_string()))
        });
        let events: Vec<Value> = refused.chain(backlog()).collect();
        send(&app, &events).await;
        app.start_worker(app.config()).await;
        let notes = all_notes(&app, "q").await;
        // One dead letter per `full` event: its quality control's notification
        // (or, for an event that reached its 10 tries first, the event).
        until_dead_letters(&app, FULL as u32, Duration::from_secs(60)).await;
        notes
    };
    let notes = tokio::time::timeout(Duration::from_secs(120), verdict).await;
    if notes.is_err() {
        policy(&name, &queue, None);
    }
    let notes = notes.expect("done within 120 s");
    // `acc`'s users got each message once (no repeats: the renewals let the
    // old channel drain) and in order.
    assert_all_in_order(&in_arrival_order(&notes), "quality control");
    let managers = assert_managers_in_order(&app).await;
    let want = CHATS * PER_CHAT as usize;
    assert_eq!(
        (notes.len(), managers),
        (want, want),
        "quality control's and the managers' notifications, repeats included"
    );
    // `full`'s managers got each of their chats whole and in order.
    let mut full_chats = BTreeMap::new();
    for m in ["m1", "m2"] {
        for (chat, texts) in in_arrival_order(&app.notes("full", m, 1).await) {
            assert!(full_chats.insert(chat, texts).is_none(), "a chat with both");
        }
    }
    assert_eq!(full_chats.len(), FULL_CHATS);
    for (chat, texts) in &full_chats {
        let want: Vec<u32> = (0..FULL_PER_CHAT as u32).collect();
        assert_eq!(texts, &want, "{chat}");
    }
    let conn = ops::amqp(&ops::target(&app)).await;
    let letters = dead::peek(&conn, &app.names, &dead::Filter::default(), usize::MAX)
        .await
        .unwrap()
        .letters;
    let key = format!("{}.{}", "full", "q");
    let undelivered: Vec<_> = letters
        .iter()
        .filter(|l| l.reason().is_some_and(|r| r.starts_with("undelivered: ")))
        .collect();
    let given_up = letters
        .iter()
        .filter(|l| {
            l.reason()
                .is_some_and(|r| r.starts_with("failed: still failing"))
        })
        .count();
    assert_eq!(
        (letters.len(), undelivered.len() + given_up),
        (FULL, FULL),
        "each `full` event: one dead letter, undelivered or given up"
    );
    // At most the first window's events reached their 10 tries.
    assert!(undelivered.len() >= FULL - 64, "{}", undelivered.len());
    for letter in &undelivered {
        assert_eq!(letter.exchange(), Some(app.names.notify()));
        assert_eq!(letter.routing_key(), Some(key.clone()));
        let note = letter.json().unwrap();
        assert_eq!(
            (note["accountId"].as_str(), note["userId"].as_str()),
            (Some("full"), Some("q"))
        );
    }

    // The queue takes messages again: within a probe's time, the worker
    // sends there again, and a replay delivers what was undelivered.
    policy(&name, &queue, None);
    for i in 0..12 {
        send(&app, &[inbound("full", "after", &i.to_string())]).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let after = app.notes("full", "q", 1).await;
    let direct: Vec<u32> = after
        .iter()
        // Leaving out `until_refused`'s probes the queue took before the policy.
        .filter(|n| n["chatId"] == "after")
        .map(|n| {
            let text = n["text"].as_str();
            text.and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("{n}"))
        })
        .collect();
    assert!(!direct.is_empty(), "never sent to the queue again");
    let first = 12 - direct.len() as u32;
    assert_eq!(
        direct,
        (first..12).collect::<Vec<_>>(),
        "once it takes messages, all go there"
    );
    let options = replay::Options {
        filter: dead::Filter {
            reason: Some("undelivered".into()),
            account: None,
        },
        ..Default::default()
    };
    let report = replay::replay(&conn, &app.names, &options).await.unwrap();
    switchboard::ops::close(&conn).await;
    let diverted_after = first as usize;
    assert_eq!(
        (report.replayed, report.stopped),
        (undelivered.len() + diverted_after, None)
    );
    let replayed = app.notes("full", "q", report.replayed).await;
    let ids: std::collections::BTreeSet<_> = replayed
        .iter()
        .map(|n| n["notificationId"].to_string())
        .collect();
    assert_eq!(
        (replayed.len(), ids.len()),
        (report.replayed, report.replayed)
    );
    app.cleanup().await;
}

/// A probe the destination refuses costs its event no retry: once quality
/// control's queue counts as refusing, the one message every 5 s that tries it
/// (the probe) is refused too while the queue is still full, and goes to
/// `P.dead` (`undelivered`) at once, as the messages around it do. Before, the
/// refusal failed the event: it was tried again (its manager told twice) and,
/// had it been at its 10th try, dead-lettered as `failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_probe_is_put_on_dead_at_once() {
    let app = TestApp::spawn_with(1, |c| c.concurrency = 16).await;
    setup_account(&app, "full", &STAFF, Some("round_robin")).await;
    let queue = app.user_queue("full", "q");
    let name = format!("{}-refuse-probe", app.prefix);
    policy(
        &name,
        &queue,
        Some(r#"{"max-length":0,"overflow":"reject-publish"}"#),
    );
    // Reads the managers' queues until they are quiet for a moment.
    let managers_notes_of = |chat: &'static str| {
        let app = &app;
        async move {
            let mut n = 0;
            for m in ["m1", "m2"] {
                let queue = app.user_queue("full", m);
                let notes = app.take(&queue, 0, Duration::from_secs(3)).await;
                n += notes.iter().filter(|g| g.json["chatId"] == chat).count();
            }
            n
        }
    };
    let verdict = async {
        until_refused(&app, &queue).await;
        // New clients, one a second, until the queue has refused everything
        // for 10 s: then each of them ends with one dead letter.
        const EARLY: u32 = 12;
        for i in 0..EARLY {
            send(&app, &[inbound("full", &format!("early-{i}"), "hi")]).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        until_dead_letters(&app, EARLY, Duration::from_secs(60)).await;
        // The managers' queues read to the end; then, past the next probe's
        // time, one more client: its message to quality control is the probe.
        managers_notes_of("probe").await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        send(&app, &[inbound("full", "probe", "hi")]).await;
        until_dead_letters(&app, EARLY + 1, Duration::from_secs(30)).await;
        managers_notes_of("probe").await
    };
    let outcome = tokio::time::timeout(Duration::from_secs(150), verdict).await;
    policy(&name, &queue, None);
    let told = outcome.expect("done within 150 s");
    assert_eq!(
        told, 1,
        "the probe's manager told once: its event was not tried again"
    );
    let conn = ops::amqp(&ops::target(&app)).await;
    let letters = dead::peek(&conn, &app.names, &dead::Filter::default(), usize::MAX)
        .await
        .unwrap()
        .letters;
    switchboard::ops::close(&conn).await;
    let probe: Vec<_> = letters
        .iter()
        .filter(|l| l.json().is_some_and(|n| n["chatId"] == "probe"))
        .collect();
    assert_eq!(probe.len(), 1, "one dead letter for the probe's event");
    let reason = probe[0].reason().unwrap_or_default();
    assert!(reason.starts_with("undelivered: "), "{reason}");
    assert_eq!(
        probe[0].json().unwrap()["userId"].as_str(),
        Some("q"),
        "quality control's notification"
    );
    app.cleanup().await;
}
