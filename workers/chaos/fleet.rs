//! The worker processes: real `switchboard run` binaries on the run's prefix,
//! pointed at the private services, each in a slot that the faults empty with
//! SIGKILL and fill again. A worker that exits without being killed is
//! recorded: a worker never stops by itself.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

pub struct Fleet {
    bin: PathBuf,
    logs: PathBuf,
    args: Vec<String>,
    slots: Vec<Option<Child>>,
    pub started: u32,
    pub killed: u32,
    /// Workers that ended without a kill: slot and exit status.
    pub exited_alone: Vec<String>,
}

impl Fleet {
    pub fn new(bin: PathBuf, logs: PathBuf) -> Self {
        Self {
            bin,
            logs,
            args: Vec::new(),
            slots: Vec::new(),
            started: 0,
            killed: 0,
            exited_alone: Vec::new(),
        }
    }

    /// The `run` arguments of every worker, and how many slots there are.
    pub fn configure(&mut self, workers: usize, prefix: &str, amqp_url: &str, redis_url: &str) {
        self.args = [
            "run",
            "--prefix",
            prefix,
            "--amqp-url",
            amqp_url,
            "--redis-url",
            redis_url,
            "--startup-wait",
            "120",
            "--shutdown-grace-secs",
            "2",
        ]
        .map(str::to_owned)
        .to_vec();
        self.slots = (0..workers).map(|_| None).collect();
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Starts the worker of `slot`; its output goes to `logs/worker-{slot}.log`,
    /// at `warn` unless `SWITCHBOARD_CHAOS_LOG` gives another filter (e.g.
    /// `warn,switchboard=debug`: every event handled, with its ids, to follow
    /// one chat through the faults).
    pub fn start(&mut self, slot: usize) -> Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("worker-{slot}.log")))?;
        let child = Command::new(&self.bin)
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("SWITCHBOARD_CHAOS_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting the worker {}", self.bin.display()))?;
        self.slots[slot] = Some(child);
        self.started += 1;
        Ok(())
    }

    /// SIGKILLs the worker of `slot` (after noting whether it had already ended).
    pub fn kill(&mut self, slot: usize) {
        self.reap();
        if let Some(mut child) = self.slots[slot].take() {
            let _ = child.kill();
            let _ = child.wait();
            self.killed += 1;
        }
    }

    /// Notes every worker that ended on its own, and empties its slot.
    pub fn reap(&mut self) {
        for (slot, entry) in self.slots.iter_mut().enumerate() {
            if let Some(child) = entry
                && let Ok(Some(status)) = child.try_wait()
            {
                self.exited_alone.push(format!("worker {slot}: {status}"));
                *entry = None;
            }
        }
    }

    /// Starts a worker in every empty slot.
    pub fn fill(&mut self) -> Result<()> {
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_none() {
                self.start(slot)?;
            }
        }
        Ok(())
    }

    pub fn kill_all(&mut self) {
        for entry in &mut self.slots {
            if let Some(mut child) = entry.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
