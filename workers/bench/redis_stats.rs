//! What Redis reports about itself: `INFO` fields (version, clients, memory,
//! CPU) and the per-command counters of `INFO commandstats`, turned into the
//! calls, server time and CPU of one measured run.

use std::collections::HashMap;

use anyhow::Result;
use redis::aio::MultiplexedConnection;

use crate::limit::within;

/// Command -> (calls, µs), as `INFO commandstats` reports them.
pub type CommandStats = HashMap<String, (u64, u64)>;

/// One field of an `INFO` section, when Redis answers.
pub async fn info_field(
    conn: &mut MultiplexedConnection,
    section: &str,
    field: &str,
) -> Option<String> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg(section);
    let info: String = within("Redis INFO", cmd.query_async(conn)).await.ok()?;
    info.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')
            .map(|v| v.trim().to_owned())
    })
}

/// `INFO commandstats`, parsed.
async fn commandstats(conn: &mut MultiplexedConnection) -> Result<CommandStats> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("commandstats");
    let info: String = within("Redis INFO commandstats", cmd.query_async(conn)).await?;
    let mut stats = HashMap::new();
    for line in info.lines() {
        let Some((name, fields)) = line
            .trim()
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |key: &str| {
            fields
                .split(',')
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('=')?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        stats.insert(name.to_owned(), (field("calls"), field("usec")));
    }
    Ok(stats)
}

/// The used memory Redis reports, bytes.
pub async fn used_memory(conn: &mut MultiplexedConnection) -> Result<u64> {
    info_field(conn, "memory", "used_memory")
        .await
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("Redis INFO memory has no used_memory"))
}

/// Redis's counters at one instant: per command, and its CPU seconds.
pub struct RedisSample {
    stats: CommandStats,
    cpu: Option<f64>,
}

impl RedisSample {
    pub async fn take(conn: &mut MultiplexedConnection) -> Result<Self> {
        let stats = commandstats(conn).await?;
        let mut cmd = redis::cmd("INFO");
        cmd.arg("cpu");
        let info: String = within("Redis INFO cpu", cmd.query_async(conn)).await?;
        let field = |name: &str| {
            info.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(':')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
        };
        let cpu = field("used_cpu_user")
            .zip(field("used_cpu_sys"))
            .map(|(u, s)| u + s);
        Ok(Self { stats, cpu })
    }
}

/// Redis work between two samples.
#[derive(Debug)]
pub struct RedisDelta {
    pub evalsha: u64,
    pub eval: u64,
    pub exec: u64,
    /// PING: a connection pool's check of a connection it hands out (deadpool
    /// sends `UNWATCH` + `PING` in one round trip), or a client's ping.
    pub ping: u64,
    /// Every command but INFO.
    pub all_calls: u64,
    /// Server time spent in the round-trip commands (EVALSHA/EVAL/EXEC/PING), µs.
    pub round_trip_usec: u64,
    /// CPU seconds of the server (`INFO cpu`, user + system).
    pub cpu_secs: Option<f64>,
    pub failed_note: Option<String>,
}

impl RedisDelta {
    pub fn between(before: &RedisSample, after: &RedisSample) -> Self {
        let cpu_secs = after.cpu.zip(before.cpu).map(|(a, b)| a - b);
        let (before, after) = (&before.stats, &after.stats);
        let delta = |name: &str| {
            let (c1, u1) = after.get(name).copied().unwrap_or_default();
            let (c0, u0) = before.get(name).copied().unwrap_or_default();
            (c1.saturating_sub(c0), u1.saturating_sub(u0))
        };
        let (evalsha, u1) = delta("evalsha");
        let (eval, u2) = delta("eval");
        let (exec, u3) = delta("exec");
        let (ping, u4) = delta("ping");
        let all_calls = after
            .keys()
            .filter(|k| k.as_str() != "info")
            .map(|k| delta(k).0)
            .sum();
        let (loads, _) = delta("script|load");
        let failed_note = (loads > 0).then(|| format!("{loads} SCRIPT LOAD during the run"));
        Self {
            evalsha,
            eval,
            exec,
            ping,
            all_calls,
            round_trip_usec: u1 + u2 + u3 + u4,
            cpu_secs,
            failed_note,
        }
    }
}
