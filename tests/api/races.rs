//! The store's guarantees under real races. With one active consumer per
//! partition, the broker no longer hands two events of one chat to two workers
//! at once, except around a hand-over or a crash; these tests race the
//! worker's own decide-and-apply directly against the real Redis, as many
//! workers at once would,
//! to show that the guarded apply alone keeps one claim winner, one contact
//! and an even round robin.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::{Account, Prefix, REDIS, eid, inbound, outbound, redis_conn, timed};
use serde_json::Value;
use switchboard::handlers::{ChatQuery, ReplyTo};
use switchboard::ids::Id;
use switchboard::model::{ChatRef, ChatType};
use switchboard::output::Message;
use switchboard::store::{Loaded, Store};
use switchboard::worker::pipeline::{Decided, DeclareQueues, Transient, decide_and_apply};

/// Decides and applies one event with the worker's own code
/// ([`decide_and_apply`]: decide, apply, decide again on conflict) and
/// returns what the worker would publish. No broker here: the users' queues
/// are not declared.
pub(crate) async fn run_event(store: &Store, body: &Value) -> Vec<Message> {
    struct NoBroker;
    impl DeclareQueues for NoBroker {
        async fn declare(&self, _: &Id, _: &[Id]) -> Result<(), Transient> {
            Ok(())
        }
    }
    let event = switchboard::events::parse(body.to_string().as_bytes()).expect("valid event");
    let reply = ReplyTo::default();
    let decided = decide_and_apply(store, &NoBroker, &event, &reply);
    match timed("decide_and_apply", decided)
        .await
        .expect("no passing failure")
    {
        Decided::Publish { outputs, .. } => outputs.messages(),
        Decided::Replay(record) => record.outputs.messages(),
        Decided::Reject(r) => panic!("rejected: {r}"),
    }
}

/// The bodies of the messages to one kind of destination (its metrics label).
pub(crate) fn bodies(messages: &[Message], label: &str) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m.to.label() == label)
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect()
}

/// An account set up in Redis on a prefix of its own, removed when dropped.
pub(crate) struct Raced {
    pub(crate) store: Store,
    pub(crate) _prefix: Prefix,
}

impl Raced {
    /// Managers `m0`.. (eligible) and quality control `q` on channel "wa".
    pub(crate) async fn new(managers: usize, distribution: &str) -> Self {
        let prefix = Prefix::random();
        let store = Store::new(REDIS, &prefix.name, Duration::from_secs(600)).unwrap();
        let mut setup = Account::new("acc").distribution(Some(distribution));
        for i in 0..managers {
            setup = setup.user(&format!("m{i}"), &[("wa", "manager", true)]);
        }
        for body in &setup
            .user("q", &[("wa", "quality_control", false)])
            .events()
        {
            run_event(&store, body).await;
        }
        Self {
            store,
            _prefix: prefix,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_simultaneous_answers_make_one_claim() {
    let account = Raced::new(10, "first_reply").await;
    for round in 0..20 {
        let chat = format!("client-{round}");
        run_event(&account.store, &inbound("acc", &chat, "hello")).await;
        let answers = (0..10).map(|i| {
            let store = account.store.clone();
            let body = outbound("acc", &chat, &format!("m{i}"), "mine");
            tokio::spawn(async move { run_event(&store, &body).await })
        });
        let outputs: Vec<Vec<Message>> = futures_util::future::try_join_all(answers).await.unwrap();

        let all: Vec<Message> = outputs.iter().flatten().cloned().collect();
        let crm = bodies(&all, "crm");
        assert_eq!(
            crm.iter()
                .filter(|c| c["type"] == "contact.created")
                .count(),
            1,
            "round {round}"
        );
        assert_eq!(
            crm.iter().filter(|c| c["type"] == "deal.created").count(),
            1,
            "round {round}"
        );
        assert_eq!(bodies(&all, "outbound").len(), 1, "one reply sent");
        let notes = bodies(&all, "notify");
        let rejected: Vec<_> = notes
            .iter()
            .filter(|n| n["type"] == "message.rejected")
            .collect();
        assert_eq!(rejected.len(), 9);
        assert!(rejected.iter().all(|n| n["reason"] == "claimed_by_other"));
        let winner = notes.iter().find(|n| n["type"] == "chat.assigned").unwrap()["userId"].clone();
        let withdrawn: Vec<_> = notes
            .iter()
            .filter(|n| n["type"] == "chat.withdrawn")
            .map(|n| n["userId"].clone())
            .collect();
        assert_eq!(withdrawn.len(), 9);
        assert!(!withdrawn.contains(&winner));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_first_messages_make_one_contact() {
    let account = Raced::new(3, "round_robin").await;
    let sends = (0..50).map(|_| {
        let store = account.store.clone();
        let body = inbound("acc", "one client", "hi");
        tokio::spawn(async move { run_event(&store, &body).await })
    });
    let all: Vec<Message> = futures_util::future::try_join_all(sends)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    let crm = bodies(&all, "crm");
    assert_eq!(
        crm.iter()
            .filter(|c| c["type"] == "contact.created")
            .count(),
        1
    );
    assert_eq!(
        crm.iter().filter(|c| c["type"] == "deal.created").count(),
        1
    );
    let new: Vec<_> = bodies(&all, "notify")
        .into_iter()
        .filter(|n| n["type"] == "chat.new" && n["userId"] != "q")
        .collect();
    assert_eq!(new.len(), 1, "one manager was given the client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_new_clients_are_spread_evenly() {
    let account = Raced::new(3, "round_robin").await;
    let sends = (0..31).map(|i| {
        let store = account.store.clone();
        let body = inbound("acc", &format!("client-{i}-{}", eid()), "hi");
        tokio::spawn(async move { run_event(&store, &body).await })
    });
    let all: Vec<Message> = futures_util::future::try_join_all(sends)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    let mut per_manager: BTreeMap<String, usize> = BTreeMap::new();
    for note in bodies(&all, "notify")
        .into_iter()
        .filter(|n| n["type"] == "chat.new" && n["userId"] != "q")
    {
        *per_manager
            .entry(note["userId"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let mut counts: Vec<usize> = per_manager.values().copied().collect();
    counts.sort();
    assert_eq!(counts, vec![10, 10, 11], "{per_manager:?}");
}

/// `snapshot.lua` and `channel.lua` build chat, contact and deal keys themselves
/// from ids: ids that need escaping (spaces, braces, colons, dots, `%`, non-ASCII)
/// must lead them to the keys the store wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripts_find_keys_of_ids_that_need_escaping() {
    let account = Raced::new(0, "first_reply").await;
    let store = &account.store;
    // A client waits with nobody to claim him; a manager who arrives is offered him
    // (channel.lua finds the chat from the waiting index).
    let waiting = "+7 (900) {x}:*.é%41";
    run_event(store, &inbound("acc", waiting, "anyone?")).await;
    let added = crate::helpers::event(
        "users.upserted",
        "acc",
        serde_json::json!({ "users": [{ "userId": "m 9.{é}", "name": "M",
            "access": [{ "channelId": "wa", "role": "manager", "receivesNewClients": true }] }] }),
    );
    let offered = bodies(&run_event(store, &added).await, "notify");
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert_eq!(offered[0]["chatId"], waiting);
    assert_eq!(offered[0]["type"], "chat.new");

    // A contact the CRM has, with an id that needs escaping: the client's message
    // reaches its responsible (snapshot.lua finds the contact through the chat).
    let contact = crate::helpers::event(
        "contact.upserted",
        "acc",
        serde_json::json!({ "contactId": "ct {1}:é.%2E", "name": "Olga", "responsibleUserId": "m 9.{é}",
            "contactData": [{ "chatType": "whatsapp", "chatId": "olga:{x}" }] }),
    );
    run_event(store, &contact).await;
    let notes = bodies(
        &run_event(store, &inbound("acc", "olga:{x}", "hello")).await,
        "notify",
    );
    let to_responsible: Vec<_> = notes.iter().filter(|n| n["userId"] == "m 9.{é}").collect();
    assert_eq!(to_responsible.len(), 1, "{notes:?}");
    assert_eq!(to_responsible[0]["type"], "chat.message");
    assert_eq!(to_responsible[0]["contactId"], "ct {1}:é.%2E");

    // Its deal, with such an id too, is found through the contact's deals
    // (snapshot.lua builds the contact-deals and deal keys).
    let deal = crate::helpers::event(
        "deal.upserted",
        "acc",
        serde_json::json!({ "dealId": "d {2}:%é.", "name": "Sofa", "contactIds": ["ct {1}:é.%2E"],
            "responsibleUserId": "m 9.{é}", "pipelineId": "p", "stageId": "s1", "closed": false }),
    );
    run_event(store, &deal).await;
    let query = ChatQuery {
        channel_id: None,
        chat: ChatRef {
            chat_type: ChatType::Whatsapp,
            chat_id: Id::parse("olga:{x}").unwrap(),
        },
        user_id: None,
        with_deals: true,
    };
    let (account, event) = (Id::parse("acc").unwrap(), Id::parse(eid()).unwrap());
    let snapshot = timed("Store::snapshot", store.snapshot(&account, &event, &query));
    let Loaded::Fresh(snapshot) = snapshot.await.unwrap() else {
        panic!("a fresh event")
    };
    let deals: Vec<&str> = snapshot.deals.iter().map(|d| d.deal_id.as_str()).collect();
    assert_eq!(deals, ["d {2}:%é."]);
}

/// An account written before the channel indexes (seats and an `rr:` pool in
/// JSON, no observers, pool hash or layout mark) is served as before: its
/// first snapshot builds the indexes, quality control still sees every new
/// client, and round robin goes on from the old turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_of_the_old_layout_gets_its_indexes_at_its_first_snapshot() {
    let account = Raced::new(3, "round_robin").await;
    let base = format!("{}:{{acc}}:", account._prefix.name);
    let mut redis = redis_conn().await;
    // m0 and m1 had clients (m1 the last), m2 none: m2, then m0, then m1.
    let old = serde_json::json!({ "turn": 7, "last": { "m0": 6, "m1": 7 } });
    let mut to_old = redis::pipe();
    to_old
        .del(format!("{base}layout"))
        .del(format!("{base}observers:wa"))
        .del(format!("{base}pool:wa"))
        .del(format!("{base}turn:wa"))
        .set(format!("{base}rr:wa"), old.to_string());
    let (): () = timed("to the old layout", to_old.query_async(&mut redis))
        .await
        .unwrap();

    let mut given = Vec::new();
    for i in 0..3 {
        let messages = run_event(&account.store, &inbound("acc", &format!("old-{i}"), "hi")).await;
        let notes = bodies(&messages, "notify");
        let to: Vec<&str> = notes
            .iter()
            .map(|n| n["userId"].as_str().unwrap())
            .collect();
        assert!(to.contains(&"q"), "quality control is told: {to:?}");
        given.extend(to.into_iter().filter(|u| *u != "q").map(str::to_owned));
    }
    assert_eq!(given, ["m2", "m0", "m1"]);
    let old_pool: Option<String> = timed(
        "GET",
        redis::cmd("GET")
            .arg(format!("{base}rr:wa"))
            .query_async(&mut redis),
    )
    .await
    .unwrap();
    assert_eq!(old_pool, None, "the old pool is gone");
}

/// `SCRIPT FLUSH` on the test's Redis: it forgets every script, as a
/// restarted or failed-over Redis does.
async fn forget_scripts() {
    let mut conn = redis_conn().await;
    let mut flush = redis::cmd("SCRIPT");
    flush.arg("FLUSH");
    timed("SCRIPT FLUSH", flush.query_async::<()>(&mut conn))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_scripts_are_loaded_again_when_redis_forgot_them() {
    // Every step's script is unknown to Redis when it runs (`NOSCRIPT`): the
    // store loads it and runs the same call again, and nothing is lost.
    let account = Raced::new(2, "round_robin").await;
    forget_scripts().await;
    let first = run_event(&account.store, &inbound("acc", "client", "hi")).await;
    let given = bodies(&first, "notify")
        .into_iter()
        .find(|n| n["type"] == "chat.new" && n["userId"] != "q")
        .expect("a manager was given the client");
    assert_eq!(bodies(&first, "crm").len(), 2, "contact and deal created");
    forget_scripts().await;
    let again = run_event(&account.store, &inbound("acc", "client", "again")).await;
    let told: Vec<_> = bodies(&again, "notify")
        .into_iter()
        .filter(|n| n["type"] == "chat.message")
        .map(|n| n["userId"].clone())
        .collect();
    assert!(
        told.contains(&given["userId"]),
        "the responsible was told: {told:?}"
    );
}
