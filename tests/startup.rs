//! Start-up problems are one clear line and a failing exit code, not a panic.
//! Services that are not up yet are waited for (`--startup-wait`), a refusal is
//! not, and a signal during start-up is honoured, even against a broker that
//! accepts TCP and never answers.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::redis_server::free_port;
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("run")
        .args(args)
        .env_remove("AMQP_URL")
        .env_remove("REDIS_URL")
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("run")
        .args(args)
        .env_remove("AMQP_URL")
        .env_remove("REDIS_URL")
        .env_remove("SWITCHBOARD_STARTUP_WAIT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs")
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits up to `limit` for the process to exit; kills it (and fails) if it does not.
async fn exits_within(child: &mut Child, limit: Duration) -> (i32, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            return (status.code().unwrap_or(-1), stderr);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the worker did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    assert!(worker.try_wait().unwrap().is_none(), "still starting");
    sigterm(&worker);
    let (code, stderr) = exits_within(&mut worker, Duration::from_secs(5)).await;
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
    let (code, stderr) = exits_within(&mut worker, Duration::from_secs(20)).await;
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
    let (code, stderr) = exits_within(&mut worker, Duration::from_secs(15)).await;
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
    let prefix = format!("sbt-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
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
        worker.try_wait().unwrap().is_none(),
        "still waiting for the broker"
    );
    let proxy = Proxy::start_on(&format!("127.0.0.1:{port}"), "127.0.0.1:5672").await;

    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(common::AMQP, ConnectionProperties::default()),
    )
    .await
    .unwrap()
    .unwrap();
    let last = format!("{prefix}.inbound.1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut declared = false;
    while !declared && Instant::now() < deadline {
        let probe = tokio::time::timeout(Duration::from_secs(5), conn.create_channel())
            .await
            .unwrap()
            .unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        declared = tokio::time::timeout(
            Duration::from_secs(5),
            probe.queue_declare(last.as_str().into(), passive, FieldTable::default()),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        let _ =
            tokio::time::timeout(Duration::from_secs(5), probe.close(200, "probe".into())).await;
        if !declared {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    sigterm(&worker);
    let (code, stderr) = exits_within(&mut worker, Duration::from_secs(20)).await;
    drop(proxy);

    // Clean up what the worker declared, whatever happened.
    let mut queues: Vec<String> = (0..2).map(|n| format!("{prefix}.inbound.{n}")).collect();
    queues.push(format!("{prefix}.dead"));
    common::delete_queues(&conn, &queues).await;
    if let Ok(Ok(channel)) =
        tokio::time::timeout(Duration::from_secs(5), conn.create_channel()).await
    {
        for exchange in ["inbound", "notify", "crm", "outbound"] {
            let name = format!("{prefix}.{exchange}");
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                channel.exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default()),
            )
            .await;
        }
    }

    assert!(
        declared,
        "the worker started once the broker came up: {stderr}"
    );
    assert_eq!(code, 0, "{stderr}");
}
