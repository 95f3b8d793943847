//! CPU time from `/proc`: this process, the worker processes it started,
//! RabbitMQ (`beam.smp`), `redis-server` and the whole machine, so a phase
//! can say what each of them spent and how much went to anything else running
//! here; and a worker's peak memory.

/// CPU ticks (1/100 s) of this process, its worker processes, RabbitMQ
/// (beam.smp) and redis-server, and of the whole machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cpu {
    bench: u64,
    workers: u64,
    rabbit: u64,
    redis: u64,
    busy: u64,
    total: u64,
}

/// What was spent between two samples.
#[derive(Debug)]
pub struct CpuDelta {
    /// CPU seconds.
    pub bench: f64,
    pub workers: f64,
    pub rabbit: f64,
    pub redis: f64,
    /// Share of the machine's CPU time that was busy.
    pub busy: f64,
    /// Share of the machine's CPU time used by anything but these three.
    pub others: f64,
}

impl Cpu {
    /// The CPU spent so far; `workers` are the pids of the worker processes.
    pub fn sample(workers: &[u32]) -> Self {
        let mut cpu = Cpu {
            bench: ticks("self").unwrap_or(0),
            workers: workers
                .iter()
                .filter_map(|pid| ticks(&pid.to_string()))
                .sum(),
            ..Cpu::default()
        };
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let pid = entry.file_name().to_string_lossy().into_owned();
                if !pid.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                match comm.trim() {
                    "beam.smp" => cpu.rabbit += ticks(&pid).unwrap_or(0),
                    "redis-server" => cpu.redis += ticks(&pid).unwrap_or(0),
                    _ => {}
                }
            }
        }
        if let Some(line) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned))
        {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            cpu.total = v.iter().take(8).sum();
            // user nice system idle iowait irq softirq steal
            cpu.busy = cpu.total - v.get(3).copied().unwrap_or(0) - v.get(4).copied().unwrap_or(0);
        }
        cpu
    }

    pub fn since(&self, before: &Cpu) -> CpuDelta {
        let ours = self.bench.saturating_sub(before.bench)
            + self.workers.saturating_sub(before.workers)
            + self.rabbit.saturating_sub(before.rabbit)
            + self.redis.saturating_sub(before.redis);
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        let busy = self.busy.saturating_sub(before.busy);
        CpuDelta {
            bench: (self.bench.saturating_sub(before.bench)) as f64 / 100.0,
            workers: (self.workers.saturating_sub(before.workers)) as f64 / 100.0,
            rabbit: (self.rabbit.saturating_sub(before.rabbit)) as f64 / 100.0,
            redis: (self.redis.saturating_sub(before.redis)) as f64 / 100.0,
            busy: busy as f64 / total,
            others: busy.saturating_sub(ours) as f64 / total,
        }
    }
}

/// User + system ticks of process `pid` (or `self`).
fn ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ": state is field 3, utime 14, stime 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The peak resident memory (`VmHWM`) of process `pid`, KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix("VmHWM:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}
