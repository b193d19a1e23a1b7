//! sluice-scheduler: reconciles each pipe's desired state with what runs.
//!
//! It reads the replica leases workers hold and turns them into the pipe
//! state machine's observations: all desired replicas running (Running), a
//! replica retrying (Degraded, with its error), a replica failed for good
//! (Failed), no replica left of a stopping or deleting pipe (Stopped or
//! removed). It autoscales pipes on lag (`autoscaler`) and places their
//! replicas on the workers. One scheduler is active at a time (a Postgres
//! advisory lock); others wait as standbys.

mod autoscaler;
mod fleet;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use sluice_model::placement::{place, ReplicaDemand, WorkerCapacity, WORKER_SILENCE};
use sluice_model::{Observation, PipeState, Transition};
use sluice_store::{EventLevel, NewEvent, PlacedReplica, Store};
use uuid::Uuid;

const TICK: Duration = Duration::from_secs(1);
/// A new assignment's lease lasts this long before the worker first renews
/// it; the worker's own renewals use the same span.
const ASSIGNMENT_TTL: Duration = Duration::from_secs(15);

/// Workers silent this long are removed from the workers table.
const FORGET_SILENT_WORKERS: Duration = Duration::from_secs(600);

/// How far back the pipes' ten-second metric history goes (the UI shows
/// the last hour).
const METRIC_HISTORY: Duration = Duration::from_secs(24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What placement saw and decided, for sizing the fleet.
struct Placed {
    workers: Vec<sluice_store::WorkerRecord>,
    capacities: Vec<WorkerCapacity>,
    /// Each replica where it runs once the moves are made.
    demands: Vec<ReplicaDemand>,
}

/// Places every replica of every live pipe on the live workers
/// (`sluice_model::placement`) and writes the moves as leases under new
/// epochs. Each move is recorded as a pipe event with its reason.
async fn place_replicas(store: &Store) -> anyhow::Result<Placed> {
    let workers = store.live_workers(WORKER_SILENCE).await?;
    let live: HashMap<Uuid, bool> = workers.iter().map(|w| (w.id, w.draining)).collect();
    let leases: HashMap<(Uuid, i32), PlacedReplica> = store
        .replica_placements()
        .await?
        .into_iter()
        .map(|l| ((l.pipe_id, l.replica), l))
        .collect();
    let mut pipes = Vec::new();
    for state in [
        PipeState::Provisioning,
        PipeState::Running,
        PipeState::Degraded,
    ] {
        pipes.extend(store.pipes_in_state(state).await?);
    }
    let generations: HashMap<Uuid, i64> = pipes.iter().map(|p| (p.id, p.generation)).collect();
    let mut demands = Vec::new();
    for pipe in &pipes {
        let size = pipe.spec.scaling.replica_size;
        for replica in 0..pipe.desired_replicas().min(i32::MAX as u32) as i32 {
            let current = leases
                .get(&(pipe.id, replica))
                .map(|l| l.worker_id)
                .filter(|w| live.contains_key(w));
            demands.push(ReplicaDemand {
                pipe: pipe.id,
                replica,
                millicpu: size.millicpu(),
                memory_mib: size.memory_mib(),
                current,
            });
        }
    }
    let fleet: Vec<WorkerCapacity> = workers
        .iter()
        .map(|w| WorkerCapacity {
            id: w.id,
            millicpu: u32::try_from(w.millicpu).unwrap_or(0),
            memory_mib: u64::try_from(w.memory_mib).unwrap_or(0),
            draining: w.draining,
        })
        .collect();
    let placement = place(&fleet, &demands);
    if !placement.unplaced.is_empty() {
        tracing::warn!(
            unplaced = placement.unplaced.len(),
            workers = fleet.len(),
            "replicas wait for room on a worker"
        );
    }
    let moved: HashSet<(Uuid, i32)> = placement.moved.iter().copied().collect();
    for ((pipe_id, replica), worker) in &placement.assignments {
        let lease = leases.get(&(*pipe_id, *replica));
        if lease.is_some_and(|l| l.worker_id == *worker) {
            continue;
        }
        let reason = match lease {
            None => "new replica".to_owned(),
            Some(l) if !live.contains_key(&l.worker_id) => format!(
                "worker {} silent for {} s or gone",
                l.worker_id,
                WORKER_SILENCE.as_secs()
            ),
            Some(l) if live.get(&l.worker_id) == Some(&true) => {
                format!("worker {} is draining", l.worker_id)
            }
            Some(l) if moved.contains(&(*pipe_id, *replica)) => format!(
                "moved off worker {} (over capacity, or shared with another replica of the pipe)",
                l.worker_id
            ),
            Some(l) => format!("worker {} no longer runs it", l.worker_id),
        };
        let generation = generations.get(pipe_id).copied().unwrap_or(0);
        let assigned = store
            .assign_replica(
                *pipe_id,
                *replica,
                *worker,
                generation,
                lease.map(|l| l.epoch),
                ASSIGNMENT_TTL,
            )
            .await?;
        if assigned {
            tracing::info!(pipe_id = %pipe_id, replica, worker = %worker, %reason, "replica placed");
            let event = NewEvent {
                level: EventLevel::Info,
                kind: "replica_placed",
                message: format!("replica {replica} placed on worker {worker}: {reason}"),
            };
            store.insert_pipe_event(*pipe_id, &event).await?;
        }
    }
    let demands = demands
        .into_iter()
        .map(|d| ReplicaDemand {
            current: placement.assignments.get(&(d.pipe, d.replica)).copied(),
            ..d
        })
        .collect();
    Ok(Placed {
        workers,
        capacities: fleet,
        demands,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sluice_runtime::init_tracing();
    let store = sluice_runtime::open_store().await?;
    let mut autoscaler = autoscaler::Autoscaler::from_env()?;
    let mut fleet = fleet::FleetSizer::from_env().await?;
    let shutdown = sluice_runtime::shutdown_signal();
    tokio::pin!(shutdown);
    let mut leadership = None;
    let mut pruned_at: Option<Instant> = None;
    loop {
        if leadership.is_none() {
            match store.try_lead_scheduler().await {
                Ok(Some(lead)) => {
                    tracing::info!("this scheduler is now the active one");
                    leadership = Some(lead);
                }
                Ok(None) => tracing::debug!("another scheduler is active; standing by"),
                Err(e) => tracing::warn!(error = %e, "could not take the scheduler lock"),
            }
        }
        if let Some(lead) = &mut leadership {
            if let Err(e) = lead.confirm().await {
                tracing::warn!(error = %e, "lost the scheduler lock's session; standing by");
                leadership = None;
            } else {
                if let Err(e) = autoscaler.tick(&store).await {
                    tracing::warn!(error = %e, "autoscaling failed; retrying");
                }
                match place_replicas(&store).await {
                    Ok(placed) => {
                        if let Some(fleet) = &mut fleet {
                            let Placed {
                                workers,
                                capacities,
                                demands,
                            } = placed;
                            if let Err(e) =
                                fleet.tick(&store, &workers, &capacities, &demands).await
                            {
                                tracing::warn!(error = %e, "sizing the fleet failed; retrying");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "placing replicas failed; retrying"),
                }
                if let Err(e) = store.forget_silent_workers(FORGET_SILENT_WORKERS).await {
                    tracing::warn!(error = %e, "forgetting silent workers failed");
                }
                // Buckets age by minutes: pruning on every tick would only
                // repeat the same delete.
                if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    match store.prune_metric_buckets(METRIC_HISTORY).await {
                        Ok(_) => pruned_at = Some(Instant::now()),
                        Err(e) => tracing::warn!(error = %e, "pruning the metric history failed"),
                    }
                }
                if let Err(e) = reconcile(&store).await {
                    tracing::warn!(error = %e, "reconciliation failed; retrying");
                }
            }
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
    if let Some(fleet) = &fleet {
        fleet.shutdown().await;
    }
    Ok(())
}

async fn reconcile(store: &Store) -> anyhow::Result<()> {
    for state in PipeState::ALL {
        if state == PipeState::Stopped || state == PipeState::Failed {
            continue;
        }
        for pipe in store.pipes_in_state(state).await? {
            let span = tracing::info_span!("reconcile", pipe_id = %pipe.id);
            let _enter = span.enter();
            let summary = store.replica_summary(pipe.id).await?;
            let desired = i64::from(pipe.desired_replicas());
            let (observation, error) = if !pipe.state.is_live() {
                (
                    (summary.live == 0).then_some(Observation::ReplicasStopped),
                    None,
                )
            } else if let Some(error) = summary.failed_error.clone() {
                (Some(Observation::Fatal), Some(error))
            } else if summary.running >= desired {
                (Some(Observation::ReplicasReady), None)
            } else if let Some(error) = summary.retrying_error.clone() {
                (Some(Observation::ReplicasUnhealthy), Some(error))
            } else {
                (None, None)
            };
            let transition = observation.and_then(|o| pipe.state.observe(o).map(|t| (o, t)));
            let ready = i32::try_from(summary.running).unwrap_or(i32::MAX);
            match transition {
                Some((_, Transition::Remove)) => {
                    sluice_runtime::release_source_resources(store, &pipe).await;
                    // False when the pipe changed meanwhile: the next tick retries.
                    let removed = store.delete_pipe(pipe.id, pipe.version).await?;
                    if removed {
                        tracing::info!("pipe removed");
                    }
                }
                Some((observation, Transition::To(next))) => {
                    let message = match (&observation, &error) {
                        (Observation::Fatal, Some(e)) => format!("failed: {e}"),
                        (Observation::ReplicasUnhealthy, Some(e)) => format!("degraded: {e}"),
                        (Observation::ReplicasReady, _) => {
                            format!("{ready} of {desired} replicas running")
                        }
                        _ => "all replicas stopped".to_owned(),
                    };
                    let level = match observation {
                        Observation::Fatal => EventLevel::Error,
                        Observation::ReplicasUnhealthy => EventLevel::Warning,
                        _ => EventLevel::Info,
                    };
                    let event = NewEvent {
                        level,
                        kind: "state_changed",
                        message: format!("{} → {}: {message}", pipe.state.as_str(), next.as_str()),
                    };
                    if store
                        .observe_pipe(&pipe, ready, error.as_deref(), Some((next, event)))
                        .await?
                        .is_some()
                    {
                        tracing::info!(to = next.as_str(), "pipe state observed");
                    }
                }
                None => {
                    if pipe.ready_replicas != ready || error.is_some() {
                        store
                            .observe_pipe(&pipe, ready, error.as_deref(), None)
                            .await?;
                    }
                }
            }
        }
    }
    Ok(())
}
