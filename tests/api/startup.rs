//! Start-up problems are one clear line and a failing exit code, not a panic.
//! Services that are not up yet are waited for (`--startup-wait`), a refusal is
//! not, and a signal during start-up is honoured, even against a broker that
//! accepts TCP and never answers.

use std::process::Stdio;
use std::time::{Duration, Instant};

use switchboard::names::Names;

use crate::helpers::process::{self, Process};
use crate::helpers::proxy::Proxy;
use crate::helpers::redis_server::free_port;
use crate::helpers::{Prefix, TestApp};

/// `switchboard run` with `args`, to its end: (exit code, stderr).
fn run(args: &[&str]) -> (i32, String) {
    let mut all = vec!["run"];
    all.extend(args);
    let (code, _, stderr) = process::run(&all, "");
    (code, stderr)
}

fn one_line_error(stderr: &str, needle: &str) {
    let lines: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("switchboard: "))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(needle), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_malformed_amqp_url_is_one_line() {
    let (code, stderr) = run(&["--amqp-url", "not a url"]);
    assert_eq!(code, 1);
    one_line_error(&stderr, "invalid AMQP URL");
}

#[test]
fn a_malformed_redis_url_is_one_line() {
    let (code, stderr) = run(&["--redis-url", "http://nope"]);
    assert_eq!(code, 1);
    one_line_error(&stderr, "invalid Redis URL");
}

#[test]
fn an_unreachable_broker_is_one_line() {
    let (code, stderr) = run(&[
        "--amqp-url",
        "amqp://guest:secret@127.0.0.1:1/%2f",
        "--startup-wait",
        "0",
    ]);
    assert_eq!(code, 1);
    one_line_error(&stderr, "cannot connect to RabbitMQ");
    assert!(stderr.contains("is RabbitMQ running"), "{stderr}");
    assert!(
        !stderr.contains("secret"),
        "the password is not printed: {stderr}"
    );
}

#[test]
fn an_unreachable_redis_is_one_line() {
    let (code, stderr) = run(&[
        "--redis-url",
        "redis://127.0.0.1:1/0",
        "--startup-wait",
        "0",
    ]);
    assert_eq!(code, 1);
    one_line_error(&stderr, "cannot connect to Redis");
    assert!(stderr.contains("is Redis running"), "{stderr}");
}

#[test]
fn a_bad_prefix_is_refused_by_the_flag_parser() {
    let (code, stderr) = run(&["--prefix", "a b{c}"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--prefix"), "{stderr}");
}

/// The worker binary, started with `args`; stderr is kept for the checks.
fn spawn(args: &[&str]) -> Process {
    Process::spawn(
        process::switchboard()
            .arg("run")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_a_start_against_a_broker_that_never_answers() {
    // Accepts TCP and never says a word, like a wedged broker.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let mut worker = spawn(&["--amqp-url", &url, "--startup-wait", "120"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(worker.0.try_wait().unwrap().is_none(), "still starting");
    worker.sigterm();
    let (code, stderr) = worker.exits_within(Duration::from_secs(5)).await;
    silent.abort();
    assert_eq!(code, 0, "a signal is a clean stop: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_is_bounded_and_ends_in_one_line() {
    let port = free_port();
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let started = Instant::now();
    let mut worker = spawn(&["--amqp-url", &url, "--startup-wait", "2"]);
    let (code, stderr) = worker.exits_within(Duration::from_secs(20)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "it waited"
    );
    assert_eq!(code, 1, "{stderr}");
    one_line_error(&stderr, "cannot connect to RabbitMQ");
    assert!(stderr.contains("--startup-wait"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_not_waited_for() {
    let mut worker = spawn(&[
        "--amqp-url",
        "amqp://guest:wrong@127.0.0.1:5672/%2f",
        "--startup-wait",
        "120",
    ]);
    let (code, stderr) = worker.exits_within(Duration::from_secs(15)).await;
    assert_eq!(code, 1, "{stderr}");
    one_line_error(&stderr, "RabbitMQ refused the login");
    assert!(
        !stderr.contains("wrong"),
        "the password is not printed: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_waits_for_a_broker_that_comes_up_late() {
    let port = free_port();
    // Whatever the worker declares is removed when the test ends.
    let guard = Prefix::random();
    let prefix = guard.name.clone();
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let mut worker = spawn(&[
        "--amqp-url",
        &url,
        "--prefix",
        &prefix,
        "--partitions",
        "2",
        "--startup-wait",
        "30",
    ]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        worker.0.try_wait().unwrap().is_none(),
        "still waiting for the broker"
    );
    let proxy = Proxy::start_on(&format!("127.0.0.1:{port}"), "127.0.0.1:5672").await;

    let app = TestApp::spawn(0).await;
    let last = Names::new(&prefix).inbound_partition(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut declared = false;
    while !declared && Instant::now() < deadline {
        declared = app.queue_exists(&last).await;
        if !declared {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    worker.sigterm();
    let (code, stderr) = worker.exits_within(Duration::from_secs(20)).await;
    drop(proxy);

    assert!(
        declared,
        "the worker started once the broker came up: {stderr}"
    );
    assert_eq!(code, 0, "{stderr}");
    app.cleanup().await;
}
