//! Which worker should consume which inbound partition.
//!
//! Every worker subscribes to every partition; the broker lets one consumer of
//! each be active (single active consumer), so order per chat never depends on
//! this module. What this module decides is balance: each partition has an
//! owner among the live workers by rendezvous hashing (the worker with the
//! highest hash of `(partition, worker)`), which moves only about `1/N` of the
//! partitions when a worker joins or leaves. A worker active on a partition it
//! does not own hands it over (see `consumer`).

/// The owner of each partition among `workers` (ids), or `None` if there are none.
pub fn owners(partitions: u16, workers: &[String]) -> Vec<Option<&str>> {
    (0..partitions)
        .map(|p| {
            workers
                .iter()
                .max_by_key(|w| (score(p, w), w.as_str()))
                .map(String::as_str)
        })
        .collect()
}

/// FNV-1a over the partition and the worker id: stable across builds and hosts.
fn score(partition: u16, worker: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in partition.to_be_bytes().iter().chain(worker.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV's low bits mix poorly for similar inputs; finish with a 64-bit mixer.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("worker-{i}-{}", i * 7919)).collect()
    }

    #[test]
    fn every_partition_has_one_owner() {
        let ws = workers(3);
        let owned = owners(16, &ws);
        assert!(owned.iter().all(Option::is_some));
        assert!(owners(4, &[]).iter().all(Option::is_none));
    }

    #[test]
    fn owners_are_spread() {
        let ws = workers(4);
        let owned = owners(256, &ws);
        for w in &ws {
            let n = owned.iter().filter(|o| **o == Some(w.as_str())).count();
            assert!((32..=96).contains(&n), "{w} owns {n} of 256");
        }
    }

    #[test]
    fn a_joining_worker_takes_only_its_share() {
        let three = workers(3);
        let mut four = three.clone();
        four.push("newcomer".into());
        let before = owners(64, &three);
        let after = owners(64, &four);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert!(
            after
                .iter()
                .zip(&before)
                .all(|(a, b)| a == b || *a == Some("newcomer"))
        );
        assert!(moved < 32, "{moved} of 64 moved");
    }
}
