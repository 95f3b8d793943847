//! What the worker's logs look like to an operator: no colour codes when they
//! go to a file or a pipe, one JSON object per line with `--log-format json`,
//! no ERROR on a clean shutdown, and start-up failures said in words.

use std::process::Stdio;
use std::time::Duration;

use crate::helpers::Prefix;
use crate::helpers::process::{Process, switchboard};

/// Starts `switchboard run`, waits for "Worker started.", sends SIGTERM and
/// returns (exit code, stdout lines, stderr).
fn start_and_stop(prefix: &str, format: &str) -> (i32, Vec<String>, String) {
    let mut child = Process::spawn(
        switchboard()
            .args(["run", "--prefix", prefix, "--log-format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let (lines_rx, reader) = child.stdout_lines();
    let mut lines = Vec::new();
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(30)) {
        let started = line.contains("Worker started.");
        lines.push(line);
        if started {
            break;
        }
    }
    // Let it start consuming, then stop it as an orchestrator would.
    std::thread::sleep(Duration::from_millis(500));
    child.sigterm();
    let out = read_to_end(&mut child);
    reader.join().unwrap();
    lines.extend(lines_rx.try_iter());
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn clean_shutdowns_log_no_error_and_no_colour_codes_and_json_is_one_object_a_line() {
    let guard = Prefix::random();
    let prefix = guard.name.as_str();
    // The lapin ERROR on close came from a race, so stop a few workers.
    let runs: Vec<_> = ["text", "text", "text", "json"]
        .iter()
        .map(|format| (format, start_and_stop(prefix, format)))
        .collect();
    let teardown = switchboard()
        .args(["teardown", "--prefix", prefix])
        .output()
        .expect("teardown runs");
    assert!(teardown.status.success(), "{teardown:?}");

    for (format, (code, lines, stderr)) in &runs {
        let all = format!("{}\n{stderr}", lines.join("\n"));
        assert_eq!(*code, 0, "{format}: {all}");
        assert!(
            all.contains("Worker started.") && all.contains("Worker stopped."),
            "{format}: {all}"
        );
        assert!(
            !all.contains("ERROR"),
            "{format}: a clean shutdown logged an ERROR:\n{all}"
        );
        assert!(
            !all.contains('\u{1b}'),
            "{format}: colour codes in a pipe:\n{all}"
        );
        if **format == "json" {
            for line in lines.iter().filter(|l| !l.trim().is_empty()) {
                let json: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not one JSON object a line ({e}): {line}"));
                assert!(
                    json["level"].is_string() && json["message"].is_string(),
                    "{line}"
                );
            }
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains(r#""message":"Worker started.""#)),
                "{lines:?}"
            );
        }
    }
}

fn failed_start(args: &[&str]) -> String {
    let out = switchboard()
        .arg("run")
        .args(args)
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("ERROR"), "no library ERROR dump: {all}");
    assert_eq!(all.lines().count(), 1, "one line: {all}");
    all
}

#[test]
fn a_refused_login_is_said_in_words() {
    let all = failed_start(&["--amqp-url", "amqp://guest:wrong@127.0.0.1:5672/%2f"]);
    assert!(all.contains("RabbitMQ refused the login"), "{all}");
    assert!(!all.contains("wrong"), "the password is not printed: {all}");
    let all = failed_start(&["--redis-url", "redis://:wrong@127.0.0.1:6379/0"]);
    assert!(all.contains("cannot connect to Redis"), "{all}");
    assert!(
        !all.contains("creating a new object"),
        "no pool jargon: {all}"
    );
}

#[test]
fn a_missing_virtual_host_is_said_in_words() {
    let all = failed_start(&[
        "--amqp-url",
        "amqp://guest:guest@127.0.0.1:5672/no-such-vhost",
    ]);
    assert!(all.contains("no such virtual host"), "{all}");
}

#[test]
fn every_line_of_an_event_carries_its_ids() {
    let guard = Prefix::random();
    let prefix = guard.name.as_str();
    let mut child = Process::spawn(
        switchboard()
            .args(["run", "--prefix", prefix, "--log-format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let (lines_rx, reader) = child.stdout_lines();
    let wait_for = |needle: &str| {
        while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(30)) {
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    };
    assert!(wait_for("Worker started.").is_some());
    // A message to a channel the account does not have: dead-lettered, with a warning.
    let event_id = uuid::Uuid::new_v4().to_string();
    let event = serde_json::json!({ "eventId": event_id, "type": "message.inbound", "accountId": "acc.logs",
        "occurredAt": "2026-11-25T10:00:00Z", "messageId": "m", "channelId": "nope",
        "chatType": "whatsapp", "chatId": "c1", "text": "hi" });
    let mut publish = switchboard()
        .args(["publish", "--prefix", prefix, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("publish runs");
    use std::io::Write;
    publish
        .stdin
        .take()
        .unwrap()
        .write_all(event.to_string().as_bytes())
        .unwrap();
    assert!(publish.wait().unwrap().success());
    let line = wait_for("Input dead-lettered.");
    child.sigterm();
    let _ = child.0.wait();
    reader.join().unwrap();
    let teardown = switchboard()
        .args(["teardown", "--prefix", prefix, "--force"])
        .output()
        .expect("teardown runs");
    assert!(teardown.status.success(), "{teardown:?}");

    let line = line.expect("the dead letter was logged");
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    let span = &json["span"];
    assert_eq!(span["eventId"], event_id.as_str(), "{line}");
    assert_eq!(span["accountId"], "acc.logs", "{line}");
    assert_eq!(span["type"], "message.inbound", "{line}");
}

/// Waits for the process to exit and collects what is left of its output.
fn read_to_end(child: &mut Process) -> std::process::Output {
    use std::io::Read;
    // Read to the end first: the pipe closes when the worker exits.
    let mut stderr = Vec::new();
    if let Some(mut pipe) = child.0.stderr.take() {
        let _ = pipe.read_to_end(&mut stderr);
    }
    let status = child.0.wait().expect("the worker exits");
    std::process::Output {
        status,
        stdout: Vec::new(),
        stderr,
    }
}
