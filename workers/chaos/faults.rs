//! The faults, while the stream is being published: a worker SIGKILLed every
//! few seconds (in turn) and started again a second later; Redis client
//! connections cut three times; one restart of the broker and one of Redis
//! (both keep their data). The one-off faults fire at set points of the
//! stream's progress; any the stream outran fire right after it ends, so a
//! run always has them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::services::Lab;

#[derive(Debug, Clone, Copy)]
enum Fault {
    CutRedis,
    RestartBroker,
    RestartRedis,
}

const SCHEDULE: [(f64, Fault); 5] = [
    (0.15, Fault::CutRedis),
    (0.30, Fault::RestartBroker),
    (0.50, Fault::CutRedis),
    (0.65, Fault::RestartRedis),
    (0.85, Fault::CutRedis),
];

#[derive(Debug, Default)]
pub struct Faults {
    pub worker_kills: u32,
    pub broker_restarts: u32,
    pub redis_restarts: u32,
    pub redis_cuts: u32,
    /// Redis connections closed by the cuts.
    pub redis_connections_cut: u64,
}

/// Applies the faults until the publisher is `done` and every one-off fault
/// happened; leaves every worker slot filled.
pub async fn inflict(
    lab: &mut Lab,
    progress: Arc<AtomicUsize>,
    total: usize,
    kill_every: Duration,
    done: Arc<AtomicBool>,
) -> Result<Faults> {
    let begin = Instant::now();
    let mut f = Faults::default();
    let mut schedule = SCHEDULE.iter().peekable();
    let mut next_kill = begin + kill_every;
    let mut restarts: Vec<(Instant, usize)> = Vec::new();
    let mut victim = 0;
    let say = |what: &str, progress: &AtomicUsize| {
        let at = progress.load(Ordering::SeqCst);
        println!(
            "  {:>6.1} s  {at:>6}/{total} published  {what}",
            begin.elapsed().as_secs_f64()
        );
    };
    loop {
        lab.fleet.reap();
        let finished = done.load(Ordering::SeqCst);
        let share = progress.load(Ordering::SeqCst) as f64 / total.max(1) as f64;
        if let Some((_, fault)) = schedule.next_if(|(at, _)| finished || share >= *at) {
            match fault {
                Fault::CutRedis => {
                    let n = lab.cut_redis_clients().await?;
                    f.redis_cuts += 1;
                    f.redis_connections_cut += n;
                    say(
                        &format!("Redis: CLIENT KILL TYPE normal closed {n} connections"),
                        &progress,
                    );
                }
                Fault::RestartBroker => {
                    say("RabbitMQ: stopping the node", &progress);
                    let t = Instant::now();
                    lab.restart_rabbit().await?;
                    f.broker_restarts += 1;
                    say(
                        &format!(
                            "RabbitMQ: node back after {:.1} s",
                            t.elapsed().as_secs_f64()
                        ),
                        &progress,
                    );
                }
                Fault::RestartRedis => {
                    say("Redis: SHUTDOWN (AOF kept)", &progress);
                    let t = Instant::now();
                    lab.restart_redis().await?;
                    f.redis_restarts += 1;
                    say(
                        &format!("Redis: back after {:.1} s", t.elapsed().as_secs_f64()),
                        &progress,
                    );
                }
            }
        }
        let now = Instant::now();
        if (!finished || f.worker_kills == 0) && now >= next_kill {
            lab.fleet.kill(victim);
            f.worker_kills += 1;
            say(&format!("worker {victim}: SIGKILL"), &progress);
            restarts.push((now + Duration::from_secs(1), victim));
            victim = (victim + 1) % lab.fleet.len();
            next_kill = now + kill_every;
        }
        for (_, slot) in restarts.extract_if(.., |(at, _)| *at <= now) {
            lab.fleet.start(slot)?;
        }
        if finished && schedule.peek().is_none() && restarts.is_empty() && f.worker_kills > 0 {
            lab.fleet.reap();
            lab.fleet.fill()?;
            return Ok(f);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
