//! sluice-scheduler: reconciles each pipe's desired state with what runs.
//!
//! For now no worker runs replicas (the data plane is a later issue), so a
//! pipe that is Stopping or Deleting has nothing left to stop: the scheduler
//! confirms it at once through the state machine's `ReplicasStopped`
//! observation. Placement and autoscaling grow here. One scheduler is active
//! at a time (a Postgres advisory lock); others wait as standbys.

use std::time::Duration;

use sluice_model::{Observation, PipeState, Transition};
use sluice_store::{NewEvent, PipeUpdate, Store};

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
    for state in [PipeState::Stopping, PipeState::Deleting] {
        for pipe in store.pipes_in_state(state).await? {
            let span = tracing::info_span!("reconcile", pipe_id = %pipe.id);
            let _enter = span.enter();
            match pipe.state.observe(Observation::ReplicasStopped) {
                Some(Transition::To(next)) => {
                    let update = PipeUpdate {
                        spec: None,
                        state: next,
                        bump_generation: false,
                        event: NewEvent::info(
                            "state_changed",
                            format!(
                                "all replicas stopped: {} → {}",
                                pipe.state.as_str(),
                                next.as_str()
                            ),
                        ),
                    };
                    if store
                        .update_pipe(pipe.id, pipe.version, update)
                        .await?
                        .is_some()
                    {
                        tracing::info!(to = next.as_str(), "pipe state confirmed");
                    }
                }
                Some(Transition::Remove) => {
                    // False when the pipe changed meanwhile: the next tick retries.
                    let removed = store.delete_pipe(pipe.id, pipe.version).await?;
                    if removed {
                        tracing::info!("pipe removed");
                    }
                }
                None => {}
            }
        }
    }
    Ok(())
}
