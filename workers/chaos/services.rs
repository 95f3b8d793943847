//! The chaos run's own RabbitMQ node and Redis, on spare ports under one
//! scratch directory, so that restarting them never touches the shared
//! services other tests use. [`Lab`] owns them: its `Drop` stops the node,
//! kills Redis and the workers and removes the data, also after a panic; the
//! binary calls [`Lab::shutdown`] after a signal too.
//!
//! The node is started through Debian's `rabbitmq-server` wrapper, which runs
//! it as the `rabbitmq` user (so `rabbitmqctl`, run the same way, shares its
//! Erlang cookie). It gets its own config file (the system one pins port
//! 5672), its own env file (the system one names the node `rabbit`) and its
//! own plugins file. Every `rabbitmqctl` call names the node with `-n`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::fleet::Fleet;

/// The chaos run's private services and worker processes.
pub struct Lab {
    pub dir: PathBuf,
    pub node: String,
    pub amqp_port: u16,
    dist_port: u16,
    pub redis_port: u16,
    redis: Option<Child>,
    node_started: bool,
    pub fleet: Fleet,
    /// Keep the worker logs (the data directories always go).
    pub keep_logs: bool,
}

/// A RabbitMQ command: Debian puts them in /usr/sbin, which a CI shell may not have on its PATH.
fn sbin(name: &str) -> String {
    let path = format!("/usr/sbin/{name}");
    if Path::new(&path).exists() {
        path
    } else {
        name.to_owned()
    }
}

/// A port nothing listens on right now.
fn spare_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs a command to completion under `limit` (killed when it overruns).
pub async fn run_cmd(cmd: &mut tokio::process::Command, limit: Duration) -> Result<String> {
    let out = tokio::time::timeout(limit, cmd.kill_on_drop(true).output())
        .await
        .with_context(|| format!("{cmd:?} did not finish within {limit:?}"))??;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Lab {
    pub fn new(dir: PathBuf, worker_bin: PathBuf) -> Result<Self> {
        let pid = std::process::id();
        std::fs::create_dir_all(dir.join("rabbit/mnesia"))?;
        std::fs::create_dir_all(dir.join("redis"))?;
        std::fs::create_dir_all(dir.join("logs/rabbit"))?;
        Ok(Self {
            fleet: Fleet::new(worker_bin, dir.join("logs")),
            dir,
            node: format!("sbchaos-{pid}@localhost"),
            amqp_port: spare_port()?,
            dist_port: spare_port()?,
            redis_port: spare_port()?,
            redis: None,
            node_started: false,
            keep_logs: false,
        })
    }

    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.redis_port)
    }

    /// Starts Redis with the append-only file in `dir/redis` (kept across restarts).
    pub async fn start_redis(&mut self) -> Result<()> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.redis_port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--dir"])
            .arg(self.dir.join("redis"))
            .arg("--logfile")
            .arg(self.dir.join("logs/redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (is it installed?)")?;
        self.redis = Some(child);
        let client = redis::Client::open(self.redis_url())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ping = async {
                let mut c = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut c).await
            };
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), ping).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the private Redis did not answer within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops Redis cleanly (SHUTDOWN writes and syncs the AOF) and starts it
    /// again on the same port and directory.
    pub async fn restart_redis(&mut self) -> Result<()> {
        let client = redis::Client::open(self.redis_url())?;
        if let Ok(Ok(mut c)) = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_multiplexed_async_connection(),
        )
        .await
        {
            // The connection drops as the server exits: an error is the normal answer.
            let shutdown = redis::cmd("SHUTDOWN");
            let _ =
                tokio::time::timeout(Duration::from_secs(10), shutdown.query_async::<()>(&mut c))
                    .await;
        }
        if let Some(mut child) = self.redis.take() {
            let deadline = Instant::now() + Duration::from_secs(15);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    bail!("the private Redis did not shut down within 15 s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.start_redis().await
    }

    /// Closes every normal client connection of the private Redis; returns how many.
    pub async fn cut_redis_clients(&self) -> Result<u64> {
        let client = redis::Client::open(self.redis_url())?;
        let work = async {
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .query_async::<u64>(&mut c)
                .await
        };
        Ok(tokio::time::timeout(Duration::from_secs(10), work).await??)
    }

    fn rabbit_env(&self, cmd: &mut tokio::process::Command) {
        let r = self.dir.join("rabbit");
        cmd.env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", r.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("logs/rabbit"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", r.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", r.join("rabbitmq.conf"))
            .env("RABBITMQ_CONF_ENV_FILE", r.join("rabbitmq-env.conf"))
            .env("RABBITMQ_PID_FILE", r.join("pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1");
    }

    fn rabbitmqctl(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(sbin("rabbitmqctl"));
        self.rabbit_env(&mut cmd);
        cmd.arg("-n").arg(&self.node).args(args);
        cmd
    }

    /// Writes the node's files (once) and starts it; returns when it runs.
    pub async fn start_rabbit(&mut self) -> Result<()> {
        let r = self.dir.join("rabbit");
        if !r.join("rabbitmq.conf").exists() {
            let conf = format!(
                "listeners.tcp.local = 127.0.0.1:{}\nloopback_users.guest = false\n",
                self.amqp_port
            );
            std::fs::write(r.join("rabbitmq.conf"), conf)?;
            std::fs::write(
                r.join("enabled_plugins"),
                "[rabbitmq_consistent_hash_exchange].\n",
            )?;
            std::fs::write(r.join("rabbitmq-env.conf"), "")?;
            let chown = tokio::process::Command::new("chown")
                .args(["-R", "rabbitmq:rabbitmq"])
                .arg(&r)
                .arg(self.dir.join("logs/rabbit"))
                .output()
                .await?;
            if !chown.status.success() {
                bail!(
                    "cannot hand {} to the rabbitmq user: run the chaos run as root",
                    r.display()
                );
            }
        }
        let mut start = tokio::process::Command::new(sbin("rabbitmq-server"));
        self.rabbit_env(&mut start);
        start.arg("-detached");
        self.node_started = true;
        run_cmd(&mut start, Duration::from_secs(30)).await?;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut wait = self.rabbitmqctl(&["-q", "await_startup", "--timeout", "30"]);
            if run_cmd(&mut wait, Duration::from_secs(40)).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the private RabbitMQ node {} did not start within 90 s (log: {})",
                    self.node,
                    self.dir.join("logs/rabbit").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Stops the node (its data stays in the mnesia directory) and starts it again.
    pub async fn restart_rabbit(&mut self) -> Result<()> {
        run_cmd(&mut self.rabbitmqctl(&["stop"]), Duration::from_secs(60)).await?;
        self.start_rabbit().await
    }

    /// Stops everything the lab started and removes its data; safe to call twice.
    pub fn shutdown(&mut self) {
        self.fleet.kill_all();
        if let Some(mut child) = self.redis.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::mem::take(&mut self.node_started) {
            stop_node(&self.node, &self.dir.join("rabbit/pid"));
        }
        let _ = std::fs::remove_dir_all(self.dir.join("rabbit"));
        let _ = std::fs::remove_dir_all(self.dir.join("redis"));
        if !self.keep_logs {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `rabbitmqctl stop` on the private node; if it still runs after that, its
/// Erlang VM (from the pid file) gets SIGKILL.
fn stop_node(node: &str, pid_file: &Path) {
    let _ = Command::new("timeout")
        .args(["60", &sbin("rabbitmqctl"), "-q", "-n", node, "stop"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Ok(pid) = std::fs::read_to_string(pid_file) {
        let pid = pid.trim();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ours = String::from_utf8_lossy(&cmdline).contains(node);
        if !pid.is_empty() && ours {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.shutdown();
    }
}
