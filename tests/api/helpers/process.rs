//! The `switchboard` binary as tests run it: a child process that is killed
//! when dropped, so a failing test leaves no worker behind to declare its
//! topology again, and one-shot commands with their output.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `switchboard` with the services' and the log's variables of the
/// environment removed, so each test says what it means.
pub fn switchboard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for var in [
        "AMQP_URL",
        "REDIS_URL",
        "RUST_LOG",
        "SWITCHBOARD_LOG_FORMAT",
        "SWITCHBOARD_PREFIX",
        "SWITCHBOARD_STARTUP_WAIT",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct Process(pub Child);

impl Process {
    pub fn spawn(cmd: &mut Command) -> Self {
        Self(cmd.spawn().expect("the binary runs"))
    }

    /// `switchboard run --prefix P` with `args`, its output thrown away.
    pub fn worker(prefix: &str, args: &[&str]) -> Self {
        Self::spawn(
            switchboard()
                .args(["run", "--prefix", prefix])
                .args(args)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    }

    /// The lines of the child's piped stdout, as they come, read on a thread
    /// of their own that ends with the pipe (join it to have every line).
    pub fn stdout_lines(&mut self) -> (mpsc::Receiver<String>, JoinHandle<()>) {
        let stdout = self.0.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        (lines_rx, reader)
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        self.0.kill().expect("SIGKILL");
        let _ = self.0.wait();
    }

    /// Sends SIGTERM, as an orchestrator stops a worker.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit and returns its exit code
    /// and stderr (if piped); kills it and fails if it does not exit.
    pub async fn exits_within(&mut self, limit: Duration) -> (i32, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.0.stderr.take() {
                    use std::io::Read;
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return (status.code().unwrap_or(-1), stderr);
            }
            if Instant::now() >= deadline {
                let _ = self.0.kill();
                let _ = self.0.wait();
                panic!("the process did not exit within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `switchboard` with `args` and `stdin` to its end; returns (exit
/// code, stdout, stderr).
pub fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = switchboard()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out: Output = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
