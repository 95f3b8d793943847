//! Everything the bench prints: the run's settings and the machine, what was
//! already busy before the start, and per phase the rates, latency
//! percentiles, outputs per event, Redis work and CPU.

use crate::args::{Args, Scenario};
use crate::collect::{Collected, Outputs};
use crate::cpu::CpuDelta;
use crate::load::Published;
use crate::preload::Preloaded;
use crate::redis_stats::RedisDelta;
use crate::shape::describe;

/// What one phase measured.
pub struct PhaseResult {
    pub published: Published,
    pub got: Collected,
    /// Every message the client side received during the run, by kind.
    pub outputs: Outputs,
    pub cpu: CpuDelta,
    pub redis: RedisDelta,
    /// The largest peak RSS of the worker processes (none in-process).
    pub worker_peak_rss_kib: Option<u64>,
    pub dead: u64,
}

/// The settings of the run and what it runs on.
pub fn header(args: &Args, rabbit_version: &str, redis_version: &str, prefix: &str) {
    let rate = if args.rate == 0 {
        "max".to_owned()
    } else {
        format!("{}/s", args.rate)
    };
    println!(
        "switchboard-bench  scenario={:?} accounts={} events={} workers={} ({}) concurrency={} partitions={} managers={} quality_control={} idle users={} chats={} contacts={} window={} rate={}",
        args.scenario,
        args.accounts,
        args.events,
        args.workers,
        args.worker_bin
            .as_ref()
            .map_or("in-process".to_owned(), |b| b.display().to_string()),
        args.concurrency,
        args.partitions,
        args.managers,
        args.quality_control,
        args.users,
        args.chats,
        args.contacts,
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

/// The disk's fsync, which bounds every phase's latency from below.
pub fn disk(f: &crate::disk::Fsyncs) {
    println!(
        "disk ({}): fsync of 4 KiB, ms p50/p99/max {:.2} / {:.2} / {:.1}; {} of {} over 10 ms in {:.0} s",
        f.dir.display(),
        f.quantile(0.5),
        f.quantile(0.99),
        f.quantile(1.0),
        f.over(10.0),
        f.count(),
        f.took.as_secs_f64()
    );
    if let Some(bytes) = crate::disk::broker_quorum_log_bytes() {
        println!(
            "      the broker's quorum log holds {:.0} MB (it rolls over at 512 MB; the broker was seen to slow as it fills: restart it before a set of runs)",
            bytes as f64 / 1e6
        );
    }
    if f.over(10.0) > 0 {
        println!(
            "      the broker syncs each persistent message before confirming or delivering it: stalls like these reach both phases' latency tails alike"
        );
    }
}

/// What loading `--contacts` took.
pub fn preloaded(p: &Preloaded) {
    println!(
        "preloaded {} contacts with one deal each in {:.1} s; Redis used_memory {:+} bytes = {:.0} bytes per contact (server-wide: other clients count too)",
        p.contacts,
        p.secs,
        p.memory_bytes,
        p.memory_bytes as f64 / p.contacts.max(1) as f64
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

    /// Rate, latency, outputs and order: what both phases print alike.
    fn common(&self, n: u64, args: &Args, ratio: Option<f64>) {
        let per_chat = if args.scenario == Scenario::FirstReply {
            format!(
                "; {:.0} chats/s (a message and its claim each)",
                self.rate() / 2.0
            )
        } else {
            String::new()
        };
        println!(
            "  events/s end to end          {:>9.0}   ({} of {n} measured outputs arrived{}){}{per_chat}",
            self.rate(),
            self.got.primaries,
            if self.got.stalled { ", STALLED" } else { "" },
            ratio
                .map(|r| format!(" = {r:.0}% of the broker ceiling"))
                .unwrap_or_default()
        );
        println!(
            "  publish with confirms, /s    {:>9.0}",
            self.publish_rate(n)
        );
        println!(
            "  latency ms p50/p90/p99/max   {}   (publish -> {})",
            self.percentiles(),
            match args.scenario {
                Scenario::FirstReply =>
                    "the claimer's chat.new; for a claim, the reply at the gateway",
                _ => "the responsible's notification",
            }
        );
        let o = &self.outputs;
        let per = |x: u64| x as f64 / n as f64;
        let size = Outputs::average;
        println!(
            "  outputs per event            notifications {:.2} (avg {} B), to the gateway {:.2} (avg {} B), CRM {:.2} (avg {} B); duplicates {}, dead letters {}, nacks {}",
            per(o.notifications.0),
            size(o.notifications),
            per(o.outbound.0),
            size(o.outbound),
            per(o.crm.0),
            size(o.crm),
            self.got.duplicates,
            self.dead,
            self.published.nacked
        );
        println!(
            "  out-of-order per chat: {}   (measured copies received after a later-published event's of the same chat on the same queue; must be 0; other copies: {})",
            self.got.out_of_order, self.got.out_of_order_others
        );
    }

    fn redis_lines(&self, n: u64) {
        let r = &self.redis;
        let per = |x: u64| x as f64 / n as f64;
        println!(
            "  Redis round trips per event  {:.2}   (EVALSHA {:.2} + EVAL {:.2} + EXEC {:.2} + PING {:.2}); commands per event incl. those inside scripts {:.2}; server time {:.0} µs/event{}",
            per(r.evalsha + r.eval + r.exec + r.ping),
            per(r.evalsha),
            per(r.eval),
            per(r.exec),
            per(r.ping),
            per(r.all_calls),
            r.round_trip_usec as f64 / n as f64,
            r.failed_note
                .as_ref()
                .map(|s| format!("; {s}"))
                .unwrap_or_default()
        );
    }

    /// CPU per 1000 events of each party; `bench_is` says what the bench process held.
    fn cpu_line(&self, n: u64, bench_is: &str) {
        let per_k = |s: f64| s * 1000.0 / n.max(1) as f64 * 1000.0;
        let workers = if self.worker_peak_rss_kib.is_some() {
            format!("workers {:.0}, ", per_k(self.cpu.workers))
        } else {
            String::new()
        };
        let redis = self.redis.cpu_secs.unwrap_or(self.cpu.redis);
        println!(
            "  CPU ms per 1000 events       {workers}bench process {:.0} ({bench_is}), RabbitMQ {:.0}, Redis {:.0}; machine {:.0}% busy, of which other processes {:.0}%",
            per_k(self.cpu.bench),
            per_k(self.cpu.rabbit),
            per_k(redis),
            self.cpu.busy * 100.0,
            self.cpu.others * 100.0
        );
        if let Some(kib) = self.worker_peak_rss_kib {
            println!(
                "  worker peak RSS              {:>9.1} MiB   (VmHWM, the largest of the worker processes)",
                kib as f64 / 1024.0
            );
        }
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
        "notes: Redis figures come from the server's INFO commandstats and INFO cpu, so any other client of this Redis during the run is counted too.\n       \
         Flat-out publishing measures throughput; its latency is mostly time queued. Use --rate below the ceiling for the path's own latency.\n       \
         The ceiling relays the event's own body to every place the worker publishes to for that event; compare the output sizes above."
    );
}

fn report_ceiling(args: &Args, c: &PhaseResult) {
    let n = args.events;
    let slots = args.ceiling_slots();
    println!(
        "broker ceiling: the worker's topology, {} -> {} partitions -> {} relay(s), each with a connection to consume and one to publish, as a worker has, prefetch {}, {} relayed at once each; per event one confirmed persistent publish to each place the worker publishes to for it, then the ack",
        describe(args.accounts, args.chats),
        args.partitions,
        args.workers,
        args.concurrency,
        slots.map_or("prefetch-bound".to_owned(), |s| s.to_string()),
    );
    c.common(n, args, None);
    if let Some(slots) = slots {
        println!(
            "  time per event in a slot     {:>9.2} ms   ({} slots kept busy / rate)",
            slots as f64 * args.workers as f64 * 1000.0 / c.rate().max(f64::MIN_POSITIVE),
            slots * args.workers
        );
    }
    c.redis_lines(n);
    c.cpu_line(n, "load generator, consumers and the relay");
}

fn report_switchboard(args: &Args, ceiling: Option<&PhaseResult>, sb: &PhaseResult) {
    let n = args.events;
    let (where_, bench_is) = if args.worker_bin.is_some() {
        ("as processes", "load generator and consumers")
    } else {
        ("in-process", "load generator, consumers and the workers")
    };
    println!(
        "switchboard: {} worker(s) {where_}, concurrency {}, {} partitions, scenario {:?}, {}",
        args.workers,
        args.concurrency,
        args.partitions,
        args.scenario,
        describe(args.accounts, args.chats)
    );
    let ratio = ceiling.map(|c| sb.rate() / c.rate().max(f64::MIN_POSITIVE) * 100.0);
    sb.common(n, args, ratio);
    let lanes = usize::from(args.concurrency) * args.workers;
    println!(
        "  time per event in a lane     {:>9.2} ms   ({lanes} lanes kept busy / rate; meaningful when publishing flat out)",
        lanes as f64 * 1000.0 / sb.rate().max(f64::MIN_POSITIVE)
    );
    sb.redis_lines(n);
    sb.cpu_line(n, bench_is);
}
