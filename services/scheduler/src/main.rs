//! sluice-scheduler: reconciles each pipe's desired state with what runs.
//!
//! It reads the replica leases workers hold and turns them into the pipe
//! state machine's observations: all desired replicas running (Running), a
//! replica retrying (Degraded, with its error), a replica failed for good
//! (Failed), no replica left of a stopping or deleting pipe (Stopped or
//! removed). Placement and autoscaling grow here. One scheduler is active at
//! a time (a Postgres advisory lock); others wait as standbys.

use std::time::Duration;

use sluice_model::{Observation, PipeState, Transition};
use sluice_store::{EventLevel, NewEvent, Store};

const TICK: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sluice_runtime::init_tracing();
    let store = sluice_runtime::open_store().await?;
    let shutdown = sluice_runtime::shutdown_signal();
    tokio::pin!(shutdown);
    let mut leadership = None;
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
            } else if let Err(e) = reconcile(&store).await {
                tracing::warn!(error = %e, "reconciliation failed; retrying");
            }
        }
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(TICK) => {}
        }
    }
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
            let desired = i64::from(pipe.spec.scaling.replicas);
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
