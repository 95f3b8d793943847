//! Crashes: worker processes killed with SIGKILL in the middle of a stream.
//! What they held is redelivered to the others; what they applied but had not
//! published is published by the redelivery; nothing is lost or created twice.

mod common;

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

    app.assert_each_client_once(&crm, n, &["m1", "m2", "m3"])
        .await;

    third.kill().ok();
    let _ = third.wait();
    app.cleanup().await;
}
