//! Where every pipe replica runs: a pure function from the fleet and the
//! replicas' demands (and where they run now) to an assignment.
//!
//! Rules, in order of precedence:
//! 1. Never overcommit a worker's CPU or memory.
//! 2. Sticky: a replica stays on its worker unless that worker is gone or
//!    draining, the worker no longer has room for everything it runs, or
//!    the replica shares the worker with another replica of its pipe while
//!    a worker without one could take it (high availability).
//! 3. Spread: a replica to place goes to a worker that runs no replica of
//!    its pipe if there is one with room, else to any worker with room.
//! 4. Among those, the least loaded (by the larger of its CPU and memory
//!    fractions), so load spreads; ties go to the lower worker id, so the
//!    result is deterministic.
//!
//! Replicas are placed largest first (first-fit decreasing). What fits
//! nowhere is returned as unplaced: the fleet must grow. One call
//! converges: placing its own result again moves nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use uuid::Uuid;

/// A worker not heard from for this long is dead: the scheduler moves its
/// replicas (under new epochs).
pub const WORKER_SILENCE: Duration = Duration::from_secs(10);

/// A live worker as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCapacity {
    pub id: Uuid,
    pub millicpu: u32,
    pub memory_mib: u64,
    /// Being drained: keeps nothing, takes nothing.
    pub draining: bool,
}

/// One replica of a pipe: what it needs and where it runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaDemand {
    pub pipe: Uuid,
    pub replica: i32,
    pub millicpu: u32,
    pub memory_mib: u64,
    pub current: Option<Uuid>,
}

pub type ReplicaKey = (Uuid, i32);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub assignments: BTreeMap<ReplicaKey, Uuid>,
    /// Replicas no worker has room for, largest first.
    pub unplaced: Vec<ReplicaKey>,
    /// Replicas that ran somewhere and now run elsewhere (or nowhere).
    pub moved: Vec<ReplicaKey>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Used {
    millicpu: u64,
    memory_mib: u64,
}

struct Fleet<'a> {
    workers: HashMap<Uuid, &'a WorkerCapacity>,
    used: HashMap<Uuid, Used>,
    /// Which pipes each worker runs a replica of, and how many.
    pipes_on: HashMap<Uuid, HashMap<Uuid, u32>>,
    /// Takers ordered by load then id, rebuilt lazily: (load in
    /// millionths, worker id).
    by_load: BTreeSet<(u64, Uuid)>,
    load_of: HashMap<Uuid, u64>,
}

impl<'a> Fleet<'a> {
    fn new(workers: &'a [WorkerCapacity]) -> Self {
        let mut fleet = Fleet {
            workers: workers.iter().map(|w| (w.id, w)).collect(),
            used: HashMap::new(),
            pipes_on: HashMap::new(),
            by_load: BTreeSet::new(),
            load_of: HashMap::new(),
        };
        for w in workers.iter().filter(|w| !w.draining) {
            fleet.by_load.insert((0, w.id));
            fleet.load_of.insert(w.id, 0);
        }
        fleet
    }

    fn fits(&self, worker: Uuid, r: &ReplicaDemand) -> bool {
        let Some(w) = self.workers.get(&worker) else {
            return false;
        };
        let used = self.used.get(&worker).copied().unwrap_or_default();
        !w.draining
            && used.millicpu + u64::from(r.millicpu) <= u64::from(w.millicpu)
            && used.memory_mib + r.memory_mib <= w.memory_mib
    }

    fn runs_pipe(&self, worker: Uuid, pipe: Uuid) -> bool {
        self.pipes_on
            .get(&worker)
            .and_then(|p| p.get(&pipe))
            .is_some_and(|n| *n > 0)
    }

    fn load(&self, worker: Uuid) -> u64 {
        let (Some(w), used) = (
            self.workers.get(&worker),
            self.used.get(&worker).copied().unwrap_or_default(),
        ) else {
            return u64::MAX;
        };
        let cpu = used.millicpu * 1_000_000 / u64::from(w.millicpu.max(1));
        let memory = used.memory_mib * 1_000_000 / w.memory_mib.max(1);
        cpu.max(memory)
    }

    fn add(&mut self, worker: Uuid, r: &ReplicaDemand) {
        let used = self.used.entry(worker).or_default();
        used.millicpu += u64::from(r.millicpu);
        used.memory_mib += r.memory_mib;
        *self
            .pipes_on
            .entry(worker)
            .or_default()
            .entry(r.pipe)
            .or_default() += 1;
        self.reorder(worker);
    }

    fn remove(&mut self, worker: Uuid, r: &ReplicaDemand) {
        if let Some(used) = self.used.get_mut(&worker) {
            used.millicpu -= u64::from(r.millicpu);
            used.memory_mib -= r.memory_mib;
        }
        if let Some(n) = self
            .pipes_on
            .get_mut(&worker)
            .and_then(|p| p.get_mut(&r.pipe))
        {
            *n -= 1;
        }
        self.reorder(worker);
    }

    fn reorder(&mut self, worker: Uuid) {
        let Some(old) = self.load_of.get(&worker).copied() else {
            return;
        };
        let new = self.load(worker);
        self.by_load.remove(&(old, worker));
        self.by_load.insert((new, worker));
        self.load_of.insert(worker, new);
    }

    /// The least loaded worker with room for `r`, preferring one that runs
    /// no replica of its pipe.
    fn choose(&self, r: &ReplicaDemand) -> Option<Uuid> {
        let mut fallback = None;
        for &(_, worker) in &self.by_load {
            if !self.fits(worker, r) {
                continue;
            }
            if !self.runs_pipe(worker, r.pipe) {
                return Some(worker);
            }
            fallback.get_or_insert(worker);
        }
        fallback
    }

    /// The least loaded worker with room for `r` that runs no replica of
    /// its pipe.
    fn spread_target(&self, r: &ReplicaDemand) -> Option<Uuid> {
        self.by_load
            .iter()
            .map(|&(_, w)| w)
            .find(|&w| !self.runs_pipe(w, r.pipe) && self.fits(w, r))
    }
}

/// High availability: a replica sharing its worker with another of its
/// pipe moves to a worker without one that has room for it. Replicas just
/// placed move before ones that stayed (fewer restarts), then the highest
/// replica numbers (a stable choice). A move never crowds another worker,
/// so repeating until a pass moves nothing ends. Whether anything moved.
fn relieve_crowding(
    fleet: &mut Fleet<'_>,
    assignments: &mut BTreeMap<ReplicaKey, Uuid>,
    demand: &HashMap<ReplicaKey, &ReplicaDemand>,
) -> bool {
    let mut moved_any = false;
    loop {
        let mut crowded: Vec<(bool, ReplicaKey)> = assignments
            .iter()
            .filter(|(key, worker)| {
                fleet
                    .pipes_on
                    .get(worker)
                    .and_then(|p| p.get(&key.0))
                    .copied()
                    .unwrap_or(0)
                    > 1
            })
            .map(|(key, worker)| {
                (
                    demand.get(key).is_some_and(|r| r.current == Some(*worker)),
                    *key,
                )
            })
            .collect();
        crowded
            .sort_by_key(|(stayed, (pipe, replica))| (*stayed, *pipe, std::cmp::Reverse(*replica)));
        let mut moved = false;
        for (_, key) in crowded {
            let (Some(&worker), Some(r)) = (assignments.get(&key), demand.get(&key)) else {
                continue;
            };
            if fleet.pipes_on[&worker][&r.pipe] < 2 {
                continue;
            }
            if let Some(target) = fleet.spread_target(r) {
                fleet.remove(worker, r);
                fleet.add(target, r);
                assignments.insert(key, target);
                moved = true;
            }
        }
        if !moved {
            return moved_any;
        }
        moved_any = true;
    }
}

fn largest_first(a: &ReplicaDemand, b: &ReplicaDemand) -> std::cmp::Ordering {
    (b.millicpu, b.memory_mib, a.pipe, a.replica).cmp(&(
        a.millicpu,
        a.memory_mib,
        b.pipe,
        b.replica,
    ))
}

pub fn place(workers: &[WorkerCapacity], replicas: &[ReplicaDemand]) -> Placement {
    let mut fleet = Fleet::new(workers);
    let mut assignments = BTreeMap::new();
    let mut to_place: Vec<&ReplicaDemand> = Vec::new();

    // Keep what may stay, largest first so that an overcommitted worker
    // keeps its big replicas and sheds small ones (cheaper to move).
    let mut staying: Vec<&ReplicaDemand> = replicas.iter().collect();
    staying.sort_by(|a, b| largest_first(a, b));
    let mut kept: Vec<&ReplicaDemand> = Vec::new();
    for r in staying {
        match r.current {
            Some(worker) if fleet.fits(worker, r) => {
                fleet.add(worker, r);
                kept.push(r);
            }
            _ => to_place.push(r),
        }
    }
    for r in &kept {
        if let Some(worker) = r.current {
            assignments.insert((r.pipe, r.replica), worker);
        }
    }

    // Place what must move, then relieve crowded workers (each relief may
    // make room for something still unplaced), until neither changes
    // anything: one call converges, the next moves nothing.
    let demand: HashMap<ReplicaKey, &ReplicaDemand> =
        replicas.iter().map(|r| ((r.pipe, r.replica), r)).collect();
    to_place.sort_by(|a, b| largest_first(a, b));
    let mut pending = to_place;
    loop {
        pending.retain(|r| match fleet.choose(r) {
            Some(worker) => {
                fleet.add(worker, r);
                assignments.insert((r.pipe, r.replica), worker);
                false
            }
            None => true,
        });
        if !relieve_crowding(&mut fleet, &mut assignments, &demand) || pending.is_empty() {
            break;
        }
    }
    let unplaced = pending.iter().map(|r| (r.pipe, r.replica)).collect();
    let moved = replicas
        .iter()
        .filter(|r| {
            r.current
                .is_some_and(|c| assignments.get(&(r.pipe, r.replica)) != Some(&c))
        })
        .map(|r| (r.pipe, r.replica))
        .collect();
    Placement {
        assignments,
        unplaced,
        moved,
    }
}

/// How many workers of `per_worker` capacity the demand needs, between the
/// fleet's bounds: what the local runtime starts and stops to.
pub fn workers_needed(
    replicas: &[ReplicaDemand],
    per_worker: &WorkerCapacity,
    min: usize,
    max: usize,
) -> usize {
    let cpu: u64 = replicas.iter().map(|r| u64::from(r.millicpu)).sum();
    let memory: u64 = replicas.iter().map(|r| r.memory_mib).sum();
    let by_cpu = cpu.div_ceil(u64::from(per_worker.millicpu.max(1)));
    let by_memory = memory.div_ceil(per_worker.memory_mib.max(1));
    // A pipe with n replicas needs n workers to spread over.
    let mut per_pipe: HashMap<Uuid, u64> = HashMap::new();
    for r in replicas {
        *per_pipe.entry(r.pipe).or_default() += 1;
    }
    let spread = per_pipe.values().copied().max().unwrap_or(0);
    let needed = by_cpu.max(by_memory).max(spread);
    usize::try_from(needed)
        .unwrap_or(usize::MAX)
        .clamp(min, max.max(min))
}

/// What the fleet runtime sees this tick (see `fleet_step`).
#[derive(Debug, Clone)]
pub struct FleetView<'a> {
    /// The live workers, with their capacity and draining flag.
    pub workers: &'a [WorkerCapacity],
    pub demands: &'a [ReplicaDemand],
    /// The capacity a worker the runtime starts registers with.
    pub per_worker: WorkerCapacity,
    pub min: usize,
    pub max: usize,
    /// How many workers the runtime runs now (ordinals `0..n`).
    pub running: usize,
    /// How many of the runtime's workers have registered: replicas that
    /// find no room wait for the ones still starting before the fleet grows
    /// again.
    pub registered: usize,
    /// The live worker a shrink would stop (ordinal `running - 1`), if it
    /// has registered.
    pub last: Option<Uuid>,
}

/// One step towards the fleet the demand needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetStep {
    Stay,
    /// Start workers up to this many.
    Grow {
        to: usize,
        reason: String,
    },
    /// Move the replicas off the worker a shrink would stop.
    Drain {
        worker: Uuid,
        reason: String,
    },
    /// Stop the last worker; nothing runs on it any more.
    Shrink {
        to: usize,
        reason: String,
    },
}

/// How the fleet should change: grow to what the demand needs (one more
/// when replicas find no room though the totals fit: fragmentation), and
/// shrink only the last worker, only once the others can take all of its
/// replicas, and only after draining it, so a shrink never cuts a replica
/// off mid-batch.
pub fn fleet_step(view: &FleetView<'_>) -> FleetStep {
    let max = view.max.max(view.min);
    let needed = workers_needed(view.demands, &view.per_worker, view.min, max);
    let unplaced = place(view.workers, view.demands).unplaced.len();
    let want = if unplaced > 0 && view.running >= needed && view.registered >= view.running {
        (view.running + 1).min(max)
    } else {
        needed
    };
    let demand = || {
        let cpu: u64 = view.demands.iter().map(|d| u64::from(d.millicpu)).sum();
        format!("{} replicas need {} m CPU", view.demands.len(), cpu)
    };
    if want > view.running {
        let why = if want > needed {
            format!("{unplaced} replicas found no room")
        } else if view.demands.is_empty() {
            format!("the minimum is {}", view.min)
        } else {
            demand()
        };
        return FleetStep::Grow {
            to: want,
            reason: format!("{why}: {} → {want} workers (at most {max})", view.running),
        };
    }
    if want >= view.running || view.running == 0 {
        return FleetStep::Stay;
    }
    let to = view.running - 1;
    let Some(last) = view.last else {
        return FleetStep::Shrink {
            to,
            reason: format!("{}; the last worker has not registered", demand()),
        };
    };
    let others: Vec<WorkerCapacity> = view
        .workers
        .iter()
        .map(|w| WorkerCapacity {
            draining: w.draining || w.id == last,
            ..w.clone()
        })
        .collect();
    if !place(&others, view.demands).unplaced.is_empty() {
        // The totals fit in fewer workers, but not the replicas as they
        // are sized: keep the worker.
        return FleetStep::Stay;
    }
    let draining = view.workers.iter().any(|w| w.id == last && w.draining);
    let still_runs = view.demands.iter().any(|d| d.current == Some(last));
    if !draining {
        FleetStep::Drain {
            worker: last,
            reason: format!("{}: draining worker {last} before stopping it", demand()),
        }
    } else if still_runs {
        FleetStep::Stay
    } else {
        FleetStep::Shrink {
            to,
            reason: format!(
                "{}: {} → {to} workers (at least {})",
                demand(),
                view.running,
                view.min
            ),
        }
    }
}

/// The replicas of `placement` on each worker, for reports.
pub fn by_worker(placement: &Placement) -> HashMap<Uuid, Vec<ReplicaKey>> {
    let mut out: HashMap<Uuid, Vec<ReplicaKey>> = HashMap::new();
    for (key, worker) in &placement.assignments {
        out.entry(*worker).or_default().push(*key);
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    fn demand(pipe: u128, replica: i32, current: Option<u128>) -> ReplicaDemand {
        ReplicaDemand {
            pipe: Uuid::from_u128(pipe),
            replica,
            millicpu: 500,
            memory_mib: 1000,
            current: current.map(Uuid::from_u128),
        }
    }

    fn view<'a>(
        workers: &'a [WorkerCapacity],
        demands: &'a [ReplicaDemand],
        running: usize,
        last: Option<u128>,
    ) -> FleetView<'a> {
        FleetView {
            workers,
            demands,
            per_worker: worker(0, 1000),
            min: 1,
            max: 4,
            running,
            registered: running,
            last: last.map(Uuid::from_u128),
        }
    }

    #[test]
    fn the_fleet_grows_to_the_demand_within_its_bounds() {
        let workers = [worker(1, 1000)];
        let demands: Vec<_> = (0..5).map(|r| demand(9, r, None)).collect();
        // 2,500 m on 1,000 m workers, and a pipe of 5 replicas to spread:
        // 5 workers, capped at 4.
        match fleet_step(&view(&workers, &demands, 1, Some(1))) {
            FleetStep::Grow { to, reason } => {
                assert_eq!(to, 4);
                assert!(reason.contains("1 → 4 workers"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            fleet_step(&view(&workers, &demands, 4, Some(1))),
            FleetStep::Stay
        );
    }

    #[test]
    fn fragmentation_grows_the_fleet_by_one() {
        // 2 × 600 m fits 2 workers by the totals (1,200 m ≤ 2,000 m) but
        // not on 1,000 m workers holding 600 m each already.
        let workers = [worker(1, 1000), worker(2, 1000)];
        let mut demands = vec![
            ReplicaDemand {
                millicpu: 600,
                ..demand(1, 0, Some(1))
            },
            ReplicaDemand {
                millicpu: 600,
                ..demand(2, 0, Some(2))
            },
            ReplicaDemand {
                millicpu: 600,
                ..demand(3, 0, None)
            },
        ];
        demands[2].millicpu = 600;
        match fleet_step(&view(&workers, &demands, 2, Some(2))) {
            FleetStep::Grow { to, .. } => assert_eq!(to, 3),
            other => panic!("{other:?}"),
        }
        // While a started worker has not registered, wait for it.
        let starting = FleetView {
            registered: 1,
            ..view(&workers, &demands, 2, Some(2))
        };
        assert_eq!(fleet_step(&starting), FleetStep::Stay);
    }

    #[test]
    fn a_shrink_drains_the_last_worker_first_and_waits_for_its_replicas() {
        let mut workers = [worker(1, 1000), worker(2, 1000)];
        let demands = [demand(1, 0, Some(1)), demand(2, 0, Some(2))];
        assert_eq!(
            fleet_step(&view(&workers, &demands, 2, Some(2))),
            FleetStep::Drain {
                worker: Uuid::from_u128(2),
                reason: "2 replicas need 1000 m CPU: draining worker 00000000-0000-0000-0000-000000000002 before stopping it".into()
            }
        );
        workers[1].draining = true;
        assert_eq!(
            fleet_step(&view(&workers, &demands, 2, Some(2))),
            FleetStep::Stay
        );
        let moved = [demand(1, 0, Some(1)), demand(2, 0, Some(1))];
        match fleet_step(&view(&workers, &moved, 2, Some(2))) {
            FleetStep::Shrink { to, .. } => assert_eq!(to, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_shrink_when_the_others_cannot_take_the_replicas() {
        // 3 × 600 m: the totals fit 2 workers, but not as sized.
        let workers = [worker(1, 1000), worker(2, 1000), worker(3, 1000)];
        let demands: Vec<_> = (0..3)
            .map(|p| ReplicaDemand {
                millicpu: 600,
                ..demand(p, 0, Some(p + 1))
            })
            .collect();
        assert_eq!(
            fleet_step(&view(&workers, &demands, 3, Some(3))),
            FleetStep::Stay
        );
    }

    #[test]
    fn never_below_the_minimum() {
        let workers = [worker(1, 1000)];
        assert_eq!(
            fleet_step(&view(&workers, &[], 1, Some(1))),
            FleetStep::Stay
        );
        match fleet_step(&view(&[], &[], 0, None)) {
            FleetStep::Grow { to, .. } => assert_eq!(to, 1),
            other => panic!("{other:?}"),
        }
    }

    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn worker(n: u128, millicpu: u32) -> WorkerCapacity {
        WorkerCapacity {
            id: id(n),
            millicpu,
            memory_mib: u64::from(millicpu) * 4,
            draining: false,
        }
    }

    fn replica(pipe: u128, replica: i32, millicpu: u32, current: Option<u128>) -> ReplicaDemand {
        ReplicaDemand {
            pipe: id(pipe),
            replica,
            millicpu,
            memory_mib: u64::from(millicpu) * 4,
            current: current.map(id),
        }
    }

    fn with_result(replicas: &[ReplicaDemand], p: &Placement) -> Vec<ReplicaDemand> {
        replicas
            .iter()
            .map(|r| ReplicaDemand {
                current: p.assignments.get(&(r.pipe, r.replica)).copied(),
                ..r.clone()
            })
            .collect()
    }

    #[test]
    fn replicas_of_a_pipe_spread_over_workers() {
        let workers = [worker(1, 2000), worker(2, 2000), worker(3, 2000)];
        let replicas = [replica(10, 0, 125, None), replica(10, 1, 125, None)];
        let p = place(&workers, &replicas);
        assert_ne!(p.assignments[&(id(10), 0)], p.assignments[&(id(10), 1)]);
        assert!(p.unplaced.is_empty());
    }

    #[test]
    fn a_dead_workers_replicas_move_and_nothing_else_does() {
        let workers = [worker(1, 2000), worker(2, 2000), worker(3, 2000)];
        let replicas = [
            replica(10, 0, 250, Some(1)),
            replica(10, 1, 250, Some(2)),
            replica(11, 0, 250, Some(3)),
        ];
        let p = place(&workers[..2], &replicas);
        assert_eq!(p.moved, vec![(id(11), 0)]);
        assert_eq!(p.assignments[&(id(10), 0)], id(1));
        assert_eq!(p.assignments[&(id(10), 1)], id(2));
    }

    #[test]
    fn a_draining_worker_is_emptied() {
        let mut workers = vec![worker(1, 2000), worker(2, 2000)];
        workers[0].draining = true;
        let replicas = [replica(10, 0, 250, Some(1))];
        let p = place(&workers, &replicas);
        assert_eq!(p.assignments[&(id(10), 0)], id(2));
    }

    #[test]
    fn crowded_replicas_spread_once_a_worker_joins() {
        let workers = [worker(1, 2000)];
        let replicas = [replica(10, 0, 250, None), replica(10, 1, 250, None)];
        let p = place(&workers, &replicas);
        assert_eq!(p.assignments.len(), 2, "co-located rather than unplaced");
        let joined = [worker(1, 2000), worker(2, 2000)];
        let again = place(&joined, &with_result(&replicas, &p));
        assert_eq!(again.moved, vec![(id(10), 1)]);
        assert_ne!(
            again.assignments[&(id(10), 0)],
            again.assignments[&(id(10), 1)]
        );
    }

    #[test]
    fn what_fits_nowhere_is_unplaced() {
        let workers = [worker(1, 500)];
        let replicas = [replica(10, 0, 2000, None), replica(11, 0, 250, None)];
        let p = place(&workers, &replicas);
        assert_eq!(p.unplaced, vec![(id(10), 0)]);
        assert_eq!(p.assignments[&(id(11), 0)], id(1));
    }

    #[test]
    fn the_fleet_grows_to_the_demand_within_bounds() {
        let per_worker = worker(0, 2000);
        let replicas: Vec<_> = (0..20).map(|p| replica(p, 0, 250, None)).collect();
        assert_eq!(workers_needed(&replicas, &per_worker, 1, 10), 3);
        assert_eq!(workers_needed(&replicas, &per_worker, 1, 2), 2);
        assert_eq!(workers_needed(&[], &per_worker, 1, 10), 1);
        let ha: Vec<_> = (0..3).map(|r| replica(1, r, 125, None)).collect();
        assert_eq!(workers_needed(&ha, &per_worker, 1, 10), 3);
    }

    fn scenario() -> impl Strategy<Value = (Vec<WorkerCapacity>, Vec<ReplicaDemand>)> {
        let sizes = prop::sample::select(vec![125u32, 250, 500, 1000, 2000]);
        (
            1usize..12,
            prop::collection::vec((0u128..15, sizes, 0usize..14), 0..60),
            prop::collection::vec(any::<bool>(), 12),
        )
            .prop_map(|(n, replicas, draining)| {
                let workers: Vec<_> = (0..n)
                    .map(|i| WorkerCapacity {
                        draining: draining[i] && i > 0,
                        ..worker(i as u128 + 1, 2000)
                    })
                    .collect();
                let mut next: HashMap<u128, i32> = HashMap::new();
                let replicas = replicas
                    .into_iter()
                    .map(|(pipe, size, current)| {
                        let n = next.entry(pipe).or_default();
                        *n += 1;
                        // Some run on workers that no longer exist (index ≥ n).
                        replica(
                            pipe + 100,
                            *n - 1,
                            size,
                            (current > 0).then_some(current as u128),
                        )
                    })
                    .collect();
                (workers, replicas)
            })
    }

    proptest! {
        #[test]
        fn never_overcommits_and_places_what_fits((workers, replicas) in scenario()) {
            let p = place(&workers, &replicas);
            let mut used: HashMap<Uuid, (u64, u64)> = HashMap::new();
            for r in &replicas {
                if let Some(w) = p.assignments.get(&(r.pipe, r.replica)) {
                    let u = used.entry(*w).or_default();
                    u.0 += u64::from(r.millicpu);
                    u.1 += r.memory_mib;
                }
            }
            for w in &workers {
                let u = used.get(&w.id).copied().unwrap_or_default();
                prop_assert!(u.0 <= u64::from(w.millicpu) && u.1 <= w.memory_mib);
                if w.draining { prop_assert_eq!(u, (0, 0)); }
            }
            prop_assert_eq!(p.assignments.len() + p.unplaced.len(), replicas.len());
            // Unplaced only when no worker has room left for it.
            for key in &p.unplaced {
                let r = replicas.iter().find(|r| (r.pipe, r.replica) == *key).unwrap();
                for w in workers.iter().filter(|w| !w.draining) {
                    let u = used.get(&w.id).copied().unwrap_or_default();
                    prop_assert!(u.0 + u64::from(r.millicpu) > u64::from(w.millicpu) || u.1 + r.memory_mib > w.memory_mib);
                }
            }
        }

        #[test]
        fn converges_in_one_call((workers, replicas) in scenario()) {
            let first = place(&workers, &replicas);
            let second = place(&workers, &with_result(&replicas, &first));
            prop_assert!(second.moved.is_empty(), "moved again: {:?}", second.moved);
            prop_assert_eq!(second.assignments, first.assignments);
        }

        #[test]
        fn sticky_unless_forced((workers, replicas) in scenario()) {
            let p = place(&workers, &replicas);
            for key in &p.moved {
                let r = replicas.iter().find(|r| (r.pipe, r.replica) == *key).unwrap();
                let old = r.current.unwrap();
                let alive = workers.iter().find(|w| w.id == old && !w.draining);
                // Moved from a live worker: it was crowded with its own
                // pipe, or its worker could not hold everything it ran.
                if let Some(w) = alive {
                    // Crowded before, or made crowded by a replica placed
                    // next to it (it is still there).
                    let crowded = replicas.iter().any(|o| o.pipe == r.pipe && o.replica != r.replica
                        && (o.current == Some(old) || p.assignments.get(&(o.pipe, o.replica)) == Some(&old)));
                    let demand: (u64, u64) = replicas.iter().filter(|o| o.current == Some(old)).fold((0, 0), |a, o| (a.0 + u64::from(o.millicpu), a.1 + o.memory_mib));
                    let over = demand.0 > u64::from(w.millicpu) || demand.1 > w.memory_mib;
                    prop_assert!(crowded || over, "{key:?} moved off a healthy worker");
                }
            }
        }

        #[test]
        fn spreads_when_a_worker_without_the_pipe_has_room((workers, replicas) in scenario()) {
            let p = place(&workers, &replicas);
            let mut used: HashMap<Uuid, (u64, u64)> = HashMap::new();
            let mut pipes_on: HashMap<Uuid, HashMap<Uuid, u32>> = HashMap::new();
            for r in &replicas {
                if let Some(w) = p.assignments.get(&(r.pipe, r.replica)) {
                    let u = used.entry(*w).or_default();
                    u.0 += u64::from(r.millicpu);
                    u.1 += r.memory_mib;
                    *pipes_on.entry(*w).or_default().entry(r.pipe).or_default() += 1;
                }
            }
            for r in &replicas {
                let Some(w) = p.assignments.get(&(r.pipe, r.replica)) else { continue };
                if pipes_on[w][&r.pipe] < 2 { continue; }
                for other in workers.iter().filter(|o| !o.draining && o.id != *w) {
                    let hosts = pipes_on.get(&other.id).and_then(|m| m.get(&r.pipe)).is_some_and(|n| *n > 0);
                    let u = used.get(&other.id).copied().unwrap_or_default();
                    let room = u.0 + u64::from(r.millicpu) <= u64::from(other.millicpu) && u.1 + r.memory_mib <= other.memory_mib;
                    prop_assert!(hosts || !room, "{r:?} shares {w} though {} has room", other.id);
                }
            }
        }
    }
}
