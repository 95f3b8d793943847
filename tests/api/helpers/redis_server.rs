//! A redis-server of the test's own, on a free port, for tests that need
//! settings the shared Redis must keep (maxmemory) or that stop it. Killed
//! when dropped, so a failing test leaves nothing running.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    pub url: String,
    child: Child,
    dir: std::path::PathBuf,
}

impl RedisServer {
    /// Starts a server without persistence and waits until it answers.
    pub async fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sbt-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let server = Self {
            port,
            url: format!("redis://127.0.0.1:{port}/0"),
            child: spawn(port, &dir),
            dir,
        };
        server.wait_up().await;
        server
    }

    /// Kills the server (as a crash would); [`RedisServer::restart`] brings it back.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port (empty: it has no persistence).
    pub async fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port, &self.dir);
        self.wait_up().await;
    }

    async fn wait_up(&self) {
        let port = self.port;
        let server = self;
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.query::<String>(&["PING"]).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} never answered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One command on a fresh connection, under a timeout.
    pub async fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> Result<T, String> {
        let client = redis::Client::open(self.url.as_str()).map_err(|e| e.to_string())?;
        let work = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            let mut cmd = redis::cmd(args[0]);
            for arg in &args[1..] {
                cmd.arg(*arg);
            }
            cmd.query_async::<T>(&mut conn).await
        };
        match tokio::time::timeout(Duration::from_secs(5), work).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// `used_memory` from `INFO memory`, in bytes.
    pub async fn used_memory(&self) -> u64 {
        let info: String = self.query(&["INFO", "memory"]).await.unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("INFO memory has used_memory")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(port: u16, dir: &std::path::Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--maxmemory-policy", "noeviction"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed")
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
