//! How long the disk takes to make a small write durable, measured before the
//! phases. Quorum queues write every message to their log and sync it before
//! they confirm or deliver it, so a stall of the disk's `fsync` stalls both
//! phases alike: no latency percentile of either can be below the stalls that
//! fall within it. On a virtual disk they can be long and frequent (seen: 20 to
//! 650 ms, every second or two, on an idle machine).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// The syncs of one probe, in ms, sorted.
pub struct Fsyncs {
    pub dir: PathBuf,
    pub took: Duration,
    sorted_ms: Vec<f64>,
}

impl Fsyncs {
    pub fn count(&self) -> usize {
        self.sorted_ms.len()
    }

    /// The `q` quantile (0..=1) in ms.
    pub fn quantile(&self, q: f64) -> f64 {
        let last = self.sorted_ms.len().saturating_sub(1);
        self.sorted_ms
            .get(((last as f64) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    }

    /// How many syncs took longer than `ms`.
    pub fn over(&self, ms: f64) -> usize {
        self.sorted_ms.iter().filter(|d| **d > ms).count()
    }
}

/// Where a packaged RabbitMQ keeps its data.
const BROKER_DATA: &str = "/var/lib/rabbitmq";

/// The directory to probe: `--fsync-dir`, else the broker's data directory of
/// a packaged install when it is writable, else the temporary directory.
pub fn probe_dir(asked: Option<&Path>) -> PathBuf {
    if let Some(dir) = asked {
        return dir.to_path_buf();
    }
    let broker = Path::new(BROKER_DATA);
    if broker.is_dir() && tempfile_in(broker).is_ok() {
        broker.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(format!(".sbbench-probe-{}", std::process::id()));
    let result = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map(drop);
    let _ = std::fs::remove_file(&path);
    result
}

/// [`quorum_log_bytes`] of a packaged broker.
pub fn broker_quorum_log_bytes() -> Option<u64> {
    quorum_log_bytes(&Path::new(BROKER_DATA).join("mnesia"))
}

/// The bytes in the quorum-queue logs (`*.wal`) of the broker nodes under
/// `mnesia` (a packaged broker's is /var/lib/rabbitmq/mnesia), when readable. RabbitMQ
/// keeps what a log holds in memory tables until the log rolls over (512 MB
/// by default), and was seen to spend a fifth more CPU per message with a
/// few hundred MB in it than just after a restart.
pub fn quorum_log_bytes(mnesia: &Path) -> Option<u64> {
    let mut total = None;
    for node in std::fs::read_dir(mnesia).ok()?.flatten() {
        let Ok(systems) = std::fs::read_dir(node.path().join("quorum")) else {
            continue;
        };
        for system in systems.flatten() {
            let Ok(files) = std::fs::read_dir(system.path()) else {
                continue;
            };
            for file in files.flatten() {
                if file.path().extension().is_some_and(|e| e == "wal")
                    && let Ok(meta) = file.metadata()
                {
                    *total.get_or_insert(0) += meta.len();
                }
            }
        }
    }
    total
}

/// Appends 4 KiB and syncs it, every 5 ms for `span`, in a file of its own in
/// `dir` that is removed afterwards. Blocking: run it off the async threads.
pub fn probe(dir: &Path, span: Duration) -> Result<Fsyncs> {
    let path = dir.join(format!(".sbbench-fsync-{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("cannot write a probe file in {}", dir.display()))?;
    let block = [b'x'; 4096];
    let mut ms = Vec::new();
    let start = Instant::now();
    let outcome = (|| -> std::io::Result<()> {
        while start.elapsed() < span {
            file.write_all(&block)?;
            let t = Instant::now();
            file.sync_data()?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    })();
    drop(file);
    let _ = std::fs::remove_file(&path);
    outcome.with_context(|| format!("fsync in {}", dir.display()))?;
    ms.sort_by(f64::total_cmp);
    Ok(Fsyncs {
        dir: dir.to_path_buf(),
        took: start.elapsed(),
        sorted_ms: ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_stalls_of_a_sorted_sample() {
        let f = Fsyncs {
            dir: PathBuf::new(),
            took: Duration::ZERO,
            sorted_ms: vec![0.3, 0.3, 0.4, 0.5, 40.0],
        };
        assert_eq!(f.quantile(0.5), 0.4);
        assert_eq!(f.quantile(1.0), 40.0);
        assert_eq!(f.over(10.0), 1);
        let none = Fsyncs {
            dir: PathBuf::new(),
            took: Duration::ZERO,
            sorted_ms: vec![],
        };
        assert_eq!((none.quantile(0.99), none.count()), (0.0, 0));
    }

    #[test]
    fn the_quorum_logs_of_every_node_are_summed() {
        let root = std::env::temp_dir().join(format!("sbbench-wal-test-{}", std::process::id()));
        let a = root.join("rabbit@a/quorum/rabbit@a");
        let b = root.join("rabbit@b/quorum/rabbit@b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::create_dir_all(root.join("rabbit@a-plugins-expand")).unwrap();
        std::fs::write(a.join("00000001.wal"), [0u8; 100]).unwrap();
        std::fs::write(a.join("meta.dets"), [0u8; 50]).unwrap();
        std::fs::write(b.join("00000007.wal"), [0u8; 20]).unwrap();
        assert_eq!(quorum_log_bytes(&root), Some(120));
        assert_eq!(quorum_log_bytes(&root.join("nowhere")), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_probe_syncs_and_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("sbbench-disk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = probe(&dir, Duration::from_millis(50)).unwrap();
        assert!(f.count() > 0);
        assert!(f.quantile(0.0) <= f.quantile(1.0));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "the probe file is removed"
        );
        std::fs::remove_dir(&dir).unwrap();
    }
}
