//! The workers of the Switchboard phase: real `switchboard run` processes
//! (`--worker-bin`), so that their CPU and peak memory are read from `/proc`
//! apart from the bench's own, or else `switchboard::run` tasks inside the
//! bench process. Either way cleanup stops them; a child's output goes to a
//! log file that is removed after a run that went well and kept otherwise.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio_util::sync::CancellationToken;

use crate::args::Args;
use crate::session::Bench;

/// How long workers get to finish after SIGTERM or their token is cancelled.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// One worker process and where its output goes.
pub struct ChildWorker {
    child: Child,
    pub log: PathBuf,
}

impl Bench {
    /// Starts `args.workers` workers on the bench prefix: child processes of
    /// `--worker-bin` when given, else in-process; cleanup stops them.
    pub fn start_workers(&mut self, args: &Args) -> Result<()> {
        match &args.worker_bin {
            Some(bin) => {
                for n in 0..args.workers {
                    let worker = self.spawn_worker(bin, args, n)?;
                    self.children.push(worker);
                }
            }
            None => self.start_in_process(args),
        }
        Ok(())
    }

    fn spawn_worker(&self, bin: &Path, args: &Args, n: usize) -> Result<ChildWorker> {
        let log = std::env::temp_dir().join(format!("{}-worker-{n}.log", self.prefix()));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(bin)
            .arg("run")
            .args(["--prefix", self.prefix()])
            .args(["--amqp-url", &args.amqp_url])
            .args(["--redis-url", &args.redis_url])
            .args(["--concurrency", &args.concurrency.to_string()])
            .args(["--partitions", &args.partitions.to_string()])
            .args(["--shutdown-grace-secs", "5"])
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting the worker {}", bin.display()))?;
        Ok(ChildWorker { child, log })
    }

    fn start_in_process(&mut self, args: &Args) {
        let mut config = switchboard::Config::with_prefix(self.prefix());
        config.amqp_url = args.amqp_url.clone();
        config.redis_url = args.redis_url.clone();
        config.concurrency = args.concurrency;
        config.partitions = args.partitions;
        config.shutdown_grace_secs = 5;
        for _ in 0..args.workers {
            let token = CancellationToken::new();
            let config = config.clone();
            let handle = tokio::spawn({
                let token = token.clone();
                async move {
                    if let Err(e) = switchboard::run(config, token).await {
                        eprintln!("switchboard-bench: worker failed: {e}");
                    }
                }
            });
            self.workers.push((token, handle));
        }
    }

    /// The pids of the worker processes (none for in-process workers).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.children.iter().map(|w| w.child.id()).collect()
    }

    /// Fails when a worker process has ended: a worker never stops by itself.
    pub fn check_workers(&mut self) -> Result<()> {
        for worker in &mut self.children {
            if let Ok(Some(status)) = worker.child.try_wait() {
                bail!(
                    "a worker process ended ({status}); its log: {}",
                    worker.log.display()
                );
            }
        }
        Ok(())
    }

    /// Stops every worker: processes get SIGTERM and [`STOP_LIMIT`] to end
    /// (so that a profiler wrapping the worker writes its output), then
    /// SIGKILL; their logs are removed when the run went well, else listed.
    pub async fn stop_workers(&mut self, keep_logs: bool) {
        for worker in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &worker.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let deadline = tokio::time::Instant::now() + STOP_LIMIT;
        for mut worker in self.children.drain(..) {
            while matches!(worker.child.try_wait(), Ok(None))
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = worker.child.kill();
            let _ = worker.child.wait();
            if keep_logs {
                eprintln!(
                    "switchboard-bench: worker log kept: {}",
                    worker.log.display()
                );
            } else {
                let _ = std::fs::remove_file(&worker.log);
            }
        }
        for (token, _) in &self.workers {
            token.cancel();
        }
        for (_, handle) in self.workers.drain(..) {
            if tokio::time::timeout(STOP_LIMIT, handle).await.is_err() {
                eprintln!("switchboard-bench: a worker did not stop in time");
            }
        }
    }
}
