//! Start-up problems are one clear line and a failing exit code, not a panic.

use std::process::Command;

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
    let (code, stderr) = run(&["--amqp-url", "amqp://guest:secret@127.0.0.1:1/%2f"]);
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
    let (code, stderr) = run(&["--redis-url", "redis://127.0.0.1:1/0"]);
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
