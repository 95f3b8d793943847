//! Everything the bench prints: the run's settings and the machine, what was
//! already busy before the start, and per phase the rates, latency
//! percentiles, outputs per event, Redis work and CPU.

use crate::args::Args;
use crate::collect::Collected;
use crate::cpu::CpuDelta;
use crate::load::Published;
use crate::redis_stats::RedisDelta;
use crate::shape::describe;

/// What one phase measured.
pub struct PhaseResult {
    pub published: Published,
    pub got: Collected,
    pub cpu: CpuDelta,
    pub redis: Option<RedisDelta>,
    pub dead: u64,
    pub crm: u64,
}

/// The settings of the run and what it runs on.
pub fn header(args: &Args, rabbit_version: &str, redis_version: &str, prefix: &str) {
    let rate = if args.rate == 0 {
        "max".to_owned()
    } else {
        format!("{}/s", args.rate)
    };
    println!(
        "switchboard-bench  scenario={:?} accounts={} events={} workers={} concurrency={} partitions={} managers={} quality_control={} chats={} window={} rate={}",
        args.scenario,
        args.accounts,
        args.events,
        args.workers,
        args.concurrency,
        args.partitions,
        args.managers,
        args.quality_control,
        args.chats,
        args.window,
        rate
    );
    println!(
        "shape: {} (each its own ordered stream on one of {} partitions; managers and quality control per account); events round robin over accounts and chats",
        describe(args.accounts, args.chats),
        args.partitions
    );
    println!(
        "machine: {} CPUs; RabbitMQ {rabbit_version}, Redis {redis_version}; prefix {prefix}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
    );
}

/// What else runs here (a second of CPU, the other Redis clients): both disturb the figures.
pub fn background(cpu: &CpuDelta, redis_clients: Option<u64>) {
    println!(
        "before start: machine {:.0}% busy (others {:.0}%; RabbitMQ {:.0}%, Redis {:.0}% of a CPU); {} other Redis client(s) connected",
        cpu.busy * 100.0,
        cpu.others * 100.0,
        cpu.rabbit * 100.0,
        cpu.redis * 100.0,
        redis_clients.map_or("?".into(), |c| c.saturating_sub(1).to_string())
    );
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        let secs = self.got.last_us.saturating_sub(self.published.first_us) as f64 / 1e6;
        if secs > 0.0 {
            self.got.primaries as f64 / secs
        } else {
            0.0
        }
    }

    fn publish_rate(&self, n: u64) -> f64 {
        let secs = self
            .published
            .confirmed_us
            .saturating_sub(self.published.first_us) as f64
            / 1e6;
        if secs > 0.0 { n as f64 / secs } else { 0.0 }
    }

    fn percentiles(&self) -> String {
        let mut l = self.got.latencies.clone();
        if l.is_empty() {
            return "-".into();
        }
        l.sort_unstable();
        let at = |p: f64| l[(((l.len() - 1) as f64) * p).round() as usize] as f64 / 1000.0;
        format!(
            "{:.1} / {:.1} / {:.1} / {:.1}",
            at(0.5),
            at(0.9),
            at(0.99),
            l[l.len() - 1] as f64 / 1000.0
        )
    }

    /// What reached the client per event, and the per-chat order check.
    fn outputs_line(&self, n: u64, crm: Option<u64>) {
        let per = |x: u64| x as f64 / n as f64;
        println!(
            "  outputs per event            responsible {:.2}, quality control {:.2}{}; duplicates {}, dead letters {}, nacks {}",
            per(self.got.primaries),
            per(self.got.observers),
            crm.map(|c| format!(", CRM {:.2}", per(c)))
                .unwrap_or_default(),
            self.got.duplicates,
            self.dead,
            self.published.nacked
        );
        println!(
            "  out-of-order per chat: {}   (responsible's notifications received after a later-published event's of the same chat; must be 0; quality control: {})",
            self.got.out_of_order, self.got.out_of_order_observers
        );
    }

    fn cpu_line(&self, n: u64) -> String {
        let per_k = |s: f64| s * 1000.0 / n.max(1) as f64 * 1000.0;
        format!(
            "CPU ms per 1000: bench process {:.0}, RabbitMQ {:.0}, Redis {:.0}; machine {:.0}% busy, of which other processes {:.0}%",
            per_k(self.cpu.bench),
            per_k(self.cpu.rabbit),
            per_k(self.cpu.redis),
            self.cpu.busy * 100.0,
            self.cpu.others * 100.0
        )
    }
}

/// The figures of both phases (either may have been skipped) and the notes.
pub fn report(args: &Args, ceiling: Option<&PhaseResult>, sb: Option<&PhaseResult>) {
    println!();
    if let Some(c) = ceiling {
        report_ceiling(args, c);
    }
    if let Some(sb) = sb {
        report_switchboard(args, ceiling, sb);
    }
    println!();
    println!(
        "notes: Redis figures come from the server's INFO commandstats, so any other client of this Redis during the run is counted too.\n       \
         Flat-out publishing measures throughput; its latency is mostly time queued. Use --rate below the ceiling for the path's own latency.\n       \
         The bench process holds the load generator, the client consumers and the workers; all share this machine with RabbitMQ and Redis."
    );
}

fn report_ceiling(args: &Args, c: &PhaseResult) {
    let n = args.events;
    let slots = args.ceiling_slots();
    println!(
        "broker ceiling: the worker's topology, {} -> {} partitions -> {} relay connection(s), prefetch {}, {} relayed at once each; per event {} confirmed persistent publish(es) via P.notify (responsible + {} quality control), then the ack",
        describe(args.accounts, args.chats),
        args.partitions,
        args.workers,
        args.concurrency,
        slots.map_or("prefetch-bound".to_owned(), |s| s.to_string()),
        1 + args.quality_control,
        args.quality_control,
    );
    println!(
        "  events/s end to end          {:>9.0}   ({} of {n} relayed{})",
        c.rate(),
        c.got.primaries,
        stalled(&c.got)
    );
    println!("  publish with confirms, /s    {:>9.0}", c.publish_rate(n));
    println!("  latency ms p50/p90/p99/max   {}", c.percentiles());
    if let Some(slots) = slots {
        println!(
            "  time per event in a slot     {:>9.2} ms   ({} slots kept busy / rate)",
            slots as f64 * args.workers as f64 * 1000.0 / c.rate().max(f64::MIN_POSITIVE),
            slots * args.workers
        );
    }
    c.outputs_line(n, None);
    println!("  {}", c.cpu_line(n));
}

fn report_switchboard(args: &Args, ceiling: Option<&PhaseResult>, sb: &PhaseResult) {
    let n = args.events;
    println!(
        "switchboard: {} worker(s) in-process, concurrency {}, {} partitions, scenario {:?}, {}",
        args.workers,
        args.concurrency,
        args.partitions,
        args.scenario,
        describe(args.accounts, args.chats)
    );
    let ratio = ceiling.map(|c| sb.rate() / c.rate().max(f64::MIN_POSITIVE) * 100.0);
    println!(
        "  events/s end to end          {:>9.0}   ({} of {n} delivered{}){}",
        sb.rate(),
        sb.got.primaries,
        stalled(&sb.got),
        ratio
            .map(|r| format!(" = {r:.0}% of the broker ceiling"))
            .unwrap_or_default()
    );
    println!("  publish with confirms, /s    {:>9.0}", sb.publish_rate(n));
    println!(
        "  latency ms p50/p90/p99/max   {}   (publish -> the responsible's notification)",
        sb.percentiles()
    );
    let lanes = usize::from(args.concurrency) * args.workers;
    println!(
        "  time per event in a lane     {:>9.2} ms   ({lanes} lanes kept busy / rate; meaningful when publishing flat out)",
        lanes as f64 * 1000.0 / sb.rate().max(f64::MIN_POSITIVE)
    );
    let per = |x: u64| x as f64 / n as f64;
    sb.outputs_line(n, Some(sb.crm));
    if let Some(r) = &sb.redis {
        println!(
            "  Redis round trips per event  {:.2}   (EVALSHA {:.2} + EVAL {:.2} + EXEC {:.2}); commands incl. those inside scripts {:.2}; server time {:.0} µs/event{}",
            per(r.evalsha + r.eval + r.exec),
            per(r.evalsha),
            per(r.eval),
            per(r.exec),
            per(r.all_calls),
            r.round_trip_usec as f64 / n as f64,
            r.failed_note
                .as_ref()
                .map(|s| format!("; {s}"))
                .unwrap_or_default()
        );
    }
    println!("  {}", sb.cpu_line(n));
}

fn stalled(c: &Collected) -> &'static str {
    if c.stalled { ", STALLED" } else { "" }
}
