//! make bench-scheduler: one JSON line with the time placement takes for
//! 10,000 pipes on 1,000 workers, and how many replicas move when one
//! worker dies and when ten join. Appended to bench/results/scheduler.jsonl.
//!
//! The fleet: workers of 8 cores and 32 GiB. The pipes: sizes XS 40 %,
//! S 30 %, M 20 %, L 8 %, XL 2 %; 1 replica (25 %), 2 (60 %) or 3 (15 %).
//! That asks for about 75 % of the fleet's CPU. A fixed seed makes runs
//! comparable.

use std::io::Write;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use sluice_model::placement::{place, Placement, ReplicaDemand, WorkerCapacity};
use sluice_model::ReplicaSize;
use uuid::Uuid;

const PIPES: usize = 10_000;
const WORKERS: usize = 1_000;
const RUNS: usize = 5;

fn worker(rng: &mut impl Rng) -> WorkerCapacity {
    WorkerCapacity {
        id: Uuid::from_u128(rng.gen()),
        millicpu: 8_000,
        memory_mib: 32 * 1024,
        draining: false,
    }
}

fn demands(rng: &mut impl Rng) -> Vec<ReplicaDemand> {
    let mut out = Vec::new();
    for _ in 0..PIPES {
        let size = match rng.gen_range(0..100) {
            0..40 => ReplicaSize::XS,
            40..70 => ReplicaSize::S,
            70..90 => ReplicaSize::M,
            90..98 => ReplicaSize::L,
            _ => ReplicaSize::XL,
        };
        let replicas = match rng.gen_range(0..100) {
            0..25 => 1,
            25..85 => 2,
            _ => 3,
        };
        let pipe = Uuid::from_u128(rng.gen());
        for replica in 0..replicas {
            out.push(ReplicaDemand {
                pipe,
                replica,
                millicpu: size.millicpu(),
                memory_mib: size.memory_mib(),
                current: None,
            });
        }
    }
    out
}

fn applied(replicas: &[ReplicaDemand], placement: &Placement) -> Vec<ReplicaDemand> {
    replicas
        .iter()
        .map(|r| ReplicaDemand {
            current: placement.assignments.get(&(r.pipe, r.replica)).copied(),
            ..r.clone()
        })
        .collect()
}

/// The median of RUNS timings of `f`, in ms, and its last result.
fn timed(mut f: impl FnMut() -> Placement) -> (f64, Placement) {
    let mut times = Vec::new();
    let mut last = Placement::default();
    for _ in 0..RUNS {
        let start = Instant::now();
        last = f();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], last)
}

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut workers: Vec<WorkerCapacity> = (0..WORKERS).map(|_| worker(&mut rng)).collect();
    let replicas = demands(&mut rng);

    let (initial_ms, initial) = timed(|| place(&workers, &replicas));
    let steady = applied(&replicas, &initial);
    let (reconcile_ms, unchanged) = timed(|| place(&workers, &steady));
    assert!(unchanged.moved.is_empty(), "a steady fleet moves nothing");

    // The most loaded worker dies.
    let victim = *initial
        .assignments
        .values()
        .max_by_key(|w| initial.assignments.values().filter(|v| v == w).count())
        .expect("replicas placed");
    let survivors: Vec<WorkerCapacity> =
        workers.iter().filter(|w| w.id != victim).cloned().collect();
    let (death_ms, after_death) = timed(|| place(&survivors, &steady));
    let on_victim = steady.iter().filter(|r| r.current == Some(victim)).count();

    for _ in 0..10 {
        workers.push(worker(&mut rng));
    }
    let (join_ms, after_join) = timed(|| place(&workers, &steady));

    let cpu_demand: u64 = replicas.iter().map(|r| u64::from(r.millicpu)).sum();
    let line = serde_json::json!({
        "pipes": PIPES,
        "workers": WORKERS,
        "replicas": replicas.len(),
        "cpu_demand_fraction": (cpu_demand as f64 / (WORKERS as f64 * 8000.0) * 1000.0).round() / 1000.0,
        "initial_placement_ms": (initial_ms * 10.0).round() / 10.0,
        "reconcile_ms": (reconcile_ms * 10.0).round() / 10.0,
        "unplaced": initial.unplaced.len(),
        "moves_after_worker_death": after_death.moved.len(),
        "replicas_on_dead_worker": on_victim,
        "worker_death_reconcile_ms": (death_ms * 10.0).round() / 10.0,
        "moves_after_ten_join": after_join.moved.len(),
        "ten_join_reconcile_ms": (join_ms * 10.0).round() / 10.0,
    });
    println!("{line}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../results/scheduler.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("bench/results is writable");
    writeln!(file, "{line}").expect("appending the result");
}
