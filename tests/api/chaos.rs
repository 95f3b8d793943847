//! The short chaos run CI makes: `switchboard-chaos` with 3 worker processes
//! on its own RabbitMQ node and Redis, ~2,200 events over 200 chats, worker
//! SIGKILLs every 3 s, one broker restart, one Redis restart (AOF kept) and
//! three Redis cuts, checked against its model. The run exits non-zero when
//! any count is wrong, and this test with it. Needs root, like `.ci/run`
//! (the private node runs as the `rabbitmq` user).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_short_chaos_run_loses_nothing_and_doubles_nothing() {
    let mut run = Command::new(env!("CARGO_BIN_EXE_switchboard-chaos"))
        .args(["--worker-bin", env!("CARGO_BIN_EXE_switchboard")])
        .args(["--events", "2000", "--chats", "200", "--rate", "200"])
        .args(["--kill-every", "3", "--deadline", "150", "--stall", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("switchboard-chaos starts");
    // Bounded: past the limit it gets SIGTERM (it then stops its services), then SIGKILL.
    let limit = Instant::now() + Duration::from_secs(200);
    let mut signalled = false;
    let status = loop {
        if let Some(status) = run.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > limit && !signalled {
            let _ = Command::new("kill")
                .args(["-TERM", &run.id().to_string()])
                .status();
            signalled = true;
        }
        if Instant::now() > limit + Duration::from_secs(60) {
            let _ = run.kill();
            break run.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (mut out, mut err) = (String::new(), String::new());
    let _ = run.stdout.take().map(|mut s| s.read_to_string(&mut out));
    let _ = run.stderr.take().map(|mut s| s.read_to_string(&mut err));
    println!("{out}");
    eprintln!("{err}");
    assert!(!signalled, "the chaos run did not finish within 200 s");
    assert!(
        status.success(),
        "the chaos run failed ({status}); its report is above"
    );
    assert!(out.contains("\nPASS"), "the chaos run printed no verdict");
    for fault in ["1 broker restart", "1 Redis restart", "3 Redis cuts"] {
        assert!(out.contains(fault), "the run had no {fault}");
    }
}
