//! Which of a replica's shards its shard workers read right now.
//!
//! A replica has a fixed number of shard workers (by size) and a worker
//! reads one shard at a time. When the replica holds more shards than
//! workers, shards take turns on a time slice short enough that none waits
//! longer than [`MAX_WAIT`] — where the reference holds an enhanced fan-out
//! subscription for its full five minutes and starves the rest. A slice is
//! never shorter than [`MIN_SLICE`], which also keeps re-subscribing a
//! shard well inside AWS's one SubscribeToShard per shard per second.
//!
//! Pure: the replica calls [`rotate`] on every tick with the clock and
//! applies the result.

use std::collections::BTreeMap;
use std::time::Duration;

/// The longest a held shard may wait for a worker.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// The slice when few shards wait: long enough that a subscription pays
/// for its set-up, short enough for low latency.
pub const DEFAULT_SLICE: Duration = Duration::from_secs(10);
pub const MIN_SLICE: Duration = Duration::from_secs(2);

/// The slice that keeps every shard's wait under [`MAX_WAIT`]: a shard
/// waits for `ceil(held / workers) - 1` slices at most, and a third of the
/// budget is left for stopping and starting readers.
pub fn slice(held: usize, workers: usize) -> Duration {
    let workers = workers.max(1);
    let rounds_waiting = held.div_ceil(workers).saturating_sub(1).max(1) as u32;
    (MAX_WAIT * 2 / 3 / rounds_waiting).clamp(MIN_SLICE, DEFAULT_SLICE)
}

/// Changes to make: readers to stop, then readers to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    pub stop: Vec<String>,
    pub start: Vec<String>,
}

/// `held`: the shards the replica holds and may read, in any order.
/// `active`: shards being read and since when (ms). `waiting_since`: when
/// each held shard last stopped being read or was taken (ms); shards not in
/// it count as waiting since forever.
pub fn rotate(
    now_ms: u64,
    held: &[String],
    active: &BTreeMap<String, u64>,
    waiting_since: &BTreeMap<String, u64>,
    workers: usize,
) -> Rotation {
    let mut rotation = Rotation::default();
    let mut running: Vec<(&String, u64)> = Vec::new();
    for (shard, since) in active {
        if held.contains(shard) {
            running.push((shard, *since));
        } else {
            rotation.stop.push(shard.clone());
        }
    }
    let mut waiting: Vec<(&String, u64)> = held
        .iter()
        .filter(|s| !active.contains_key(*s))
        .map(|s| (s, waiting_since.get(s).copied().unwrap_or(0)))
        .collect();
    // Longest waiting first; ties by shard id, so the order is stable.
    waiting.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
    let slice_ms = slice(held.len(), workers).as_millis() as u64;
    // Longest running first: the first to give way.
    running.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
    let mut preemptible = running
        .iter()
        .filter(|(_, since)| now_ms.saturating_sub(*since) >= slice_ms)
        .map(|(shard, _)| (*shard).clone())
        .collect::<Vec<_>>()
        .into_iter();
    let mut busy = running.len();
    for (shard, _) in waiting {
        if busy < workers {
            busy += 1;
            rotation.start.push(shard.clone());
        } else if let Some(victim) = preemptible.next() {
            rotation.stop.push(victim);
            rotation.start.push(shard.clone());
        } else {
            break;
        }
    }
    rotation
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shards(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("shard-{i}")).collect()
    }

    #[test]
    fn slices_shrink_as_shards_outnumber_workers() {
        assert_eq!(slice(4, 4), DEFAULT_SLICE);
        assert_eq!(slice(8, 4), DEFAULT_SLICE);
        assert_eq!(slice(16, 4), Duration::from_secs(20) / 3);
        assert_eq!(slice(64, 4), MIN_SLICE);
    }

    #[test]
    fn all_start_when_workers_suffice() {
        let r = rotate(0, &shards(3), &BTreeMap::new(), &BTreeMap::new(), 4);
        assert_eq!(r.start.len(), 3);
        assert!(r.stop.is_empty());
    }

    #[test]
    fn shards_no_longer_held_stop() {
        let active = BTreeMap::from([("gone".to_string(), 0)]);
        let r = rotate(0, &shards(1), &active, &BTreeMap::new(), 4);
        assert_eq!(r.stop, vec!["gone"]);
        assert_eq!(r.start, vec!["shard-0"]);
    }

    /// Simulates a replica ticking every second: every shard is read, and
    /// none waits longer than MAX_WAIT (plus the tick).
    fn simulate(held: usize, workers: usize, seconds: u64) -> (u64, BTreeMap<String, u64>) {
        let held = shards(held);
        let mut active: BTreeMap<String, u64> = BTreeMap::new();
        let mut waiting_since: BTreeMap<String, u64> =
            held.iter().map(|s| (s.clone(), 0)).collect();
        let mut served: BTreeMap<String, u64> = BTreeMap::new();
        let mut max_wait = 0;
        for second in 0..seconds {
            let now = second * 1000;
            let r = rotate(now, &held, &active, &waiting_since, workers);
            for s in r.stop {
                active.remove(&s);
                waiting_since.insert(s, now);
            }
            for s in r.start {
                max_wait = max_wait.max(now - waiting_since[&s]);
                active.insert(s, now);
            }
            assert!(active.len() <= workers);
            for s in active.keys() {
                *served.entry(s.clone()).or_default() += 1;
            }
        }
        // Shards waiting at the end count too.
        for (s, since) in &waiting_since {
            if !active.contains_key(s) {
                max_wait = max_wait.max(seconds * 1000 - since);
            }
        }
        (max_wait, served)
    }

    #[test]
    fn eight_shards_on_four_workers_wait_at_most_thirty_seconds() {
        let (max_wait, served) = simulate(8, 4, 600);
        assert!(max_wait <= MAX_WAIT.as_millis() as u64, "{max_wait}");
        assert_eq!(served.len(), 8);
        // Fair: each shard gets about half the time.
        for seconds in served.values() {
            assert!((250..=350).contains(seconds), "{served:?}");
        }
    }

    proptest! {
        #[test]
        fn no_shard_waits_longer_than_the_bound(held in 1usize..40, workers in 1usize..9) {
            // With MIN_SLICE the bound holds up to 15 rounds of waiting.
            prop_assume!(held.div_ceil(workers) <= 10);
            let (max_wait, served) = simulate(held, workers, 300);
            prop_assert!(max_wait <= MAX_WAIT.as_millis() as u64 + 1000, "{max_wait}");
            prop_assert_eq!(served.len(), held);
        }
    }
}
