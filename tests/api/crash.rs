//! Crashes: worker processes killed with SIGKILL in the middle of a stream.
//! What they held is redelivered to the others; what they applied but had not
//! published is published by the redelivery; nothing is lost or created twice.

use std::time::Duration;

use crate::helpers::process::Process;
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_workers_lose_nothing_and_double_nothing() {
    // The in-process worker only sets the account up; the processes do the work.
    let managers = [
        ("m1", "manager", true),
        ("m2", "manager", true),
        ("m3", "manager", true),
    ];
    let Fixture { app, crm, .. } = Fixture::new(1, &managers, Some("round_robin")).await;
    app.stop_workers().await;

    // Killed when dropped, before the app removes the prefix.
    let worker = || Process::worker(&app.prefix, &["--concurrency", "8"]);
    let mut first = worker();
    let mut second = worker();
    let n = 150;
    let publish = async {
        for i in 0..n {
            app.publish_event(&inbound("acc", &format!("client-{i}"), "hello"))
                .await;
        }
    };
    let chaos = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        first.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let third = worker();
        tokio::time::sleep(Duration::from_millis(300)).await;
        second.kill();
        third
    };
    let ((), mut third) = tokio::join!(publish, chaos);

    app.assert_each_client_once(&crm, n, &["m1", "m2", "m3"])
        .await;

    third.kill();
    app.cleanup().await;
}
