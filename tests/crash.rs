//! Crashes: worker processes killed with SIGKILL in the middle of a stream.
//! What they held is redelivered to the others; what they applied but had not
//! published is published by the redelivery; nothing is lost or created twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// A real `switchboard run` process on the test's prefix.
fn worker(prefix: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--prefix", prefix, "--concurrency", "8"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the worker starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_workers_lose_nothing_and_double_nothing() {
    // The in-process worker only sets the account up; the processes do the work.
    let mut app = TestApp::spawn(1).await;
    let crm = app.bind_crm().await;
    let managers = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("m3", "manager", true),
    ];
    setup_account(&app, "acc", &managers, Some("round_robin")).await;
    app.stop_workers().await;

    let mut first = worker(&app.prefix);
    let mut second = worker(&app.prefix);
    let n = 150;
    let publish = async {
        for i in 0..n {
            app.publish_chat(&inbound("acc", &format!("client-{i}"), "hello"))
                .await;
        }
    };
    let chaos = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        first.kill().expect("SIGKILL");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let third = worker(&app.prefix);
        tokio::time::sleep(Duration::from_millis(300)).await;
        second.kill().expect("SIGKILL");
        third
    };
    let ((), mut third) = tokio::join!(publish, chaos);
    let _ = first.wait();
    let _ = second.wait();

    let crm = app.take(&crm, 2 * n, Duration::from_secs(60)).await;
    let mut contacts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in crm.iter().filter(|m| m.json["type"] == "contact.created") {
        contacts
            .entry(
                m.json["contactData"][0]["chatId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
            .or_default()
            .insert(m.json["contactId"].to_string());
    }
    assert_eq!(contacts.len(), n, "every client got a contact");
    assert!(
        contacts.values().all(|ids| ids.len() == 1),
        "no client got two contacts"
    );
    let deals: BTreeSet<_> = crm
        .iter()
        .filter(|m| m.json["type"] == "deal.created")
        .map(|m| m.json["dealId"].to_string())
        .collect();
    assert_eq!(deals.len(), n, "one deal per client");

    // Each client reached exactly one manager, and the round robin stayed even
    // (repeats after a crash carry the same notificationId; count causes).
    let mut owner: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut per_manager = Vec::new();
    for (m, _, _) in managers {
        let notes = app.notes("acc", m, n / 3).await;
        let causes: BTreeSet<_> = notes
            .iter()
            .map(|n| n["notificationId"].to_string())
            .collect();
        for note in &notes {
            owner
                .entry(note["chatId"].to_string())
                .or_default()
                .insert(m.to_owned());
        }
        per_manager.push(causes.len());
    }
    assert_eq!(owner.len(), n);
    assert!(
        owner.values().all(|ms| ms.len() == 1),
        "a client was given to two managers"
    );
    assert_eq!(per_manager, vec![n / 3; 3], "the round robin stayed even");

    third.kill().ok();
    let _ = third.wait();
    app.cleanup().await;
}
