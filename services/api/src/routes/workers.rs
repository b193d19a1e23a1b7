//! The worker fleet: capacity, use, heartbeat and replicas of each live
//! worker, and draining one before it is stopped.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use sluice_model::placement::WORKER_SILENCE;
use sluice_model::ReplicaSize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ReadErrors, WriteErrors};
use crate::auth::{Admin, Viewer};
use crate::extract::IdPath;
use crate::problem::{ApiResult, Problem};
use crate::views::{Worker, WorkerReplica};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workers))
        .routes(routes!(drain_worker))
}

async fn workers(state: &AppState) -> ApiResult<Vec<Worker>> {
    let mut replicas: HashMap<Uuid, Vec<sluice_store::WorkerReplica>> = HashMap::new();
    for r in state.store.replicas_by_worker().await? {
        replicas.entry(r.worker_id).or_default().push(r);
    }
    Ok(state
        .store
        .live_workers(WORKER_SILENCE)
        .await?
        .into_iter()
        .map(|w| {
            let mine = replicas.remove(&w.id).unwrap_or_default();
            let sizes = mine.iter().map(|r| {
                serde_json::from_value::<ReplicaSize>(serde_json::Value::String(
                    r.replica_size.clone(),
                ))
                .unwrap_or_default()
            });
            let used_millicpu = sizes.clone().map(ReplicaSize::millicpu).sum();
            let used_memory_mib = sizes.map(ReplicaSize::memory_mib).sum();
            Worker {
                id: w.id,
                hostname: w.hostname,
                millicpu: w.millicpu,
                memory_mib: w.memory_mib,
                used_millicpu,
                used_memory_mib,
                draining: w.draining,
                heartbeat_at: w.heartbeat_at,
                replicas: mine
                    .into_iter()
                    .map(|r| WorkerReplica {
                        pipe_id: r.pipe_id,
                        replica: r.replica,
                        status: r.status,
                    })
                    .collect(),
            }
        })
        .collect())
}

/// Live workers (heard from within the last 10 s) with their capacity, what
/// their replicas use, and the replicas they run.
#[utoipa::path(get, path = "/v1/workers", tag = "workers",
    responses((status = 200, body = Vec<Worker>), ReadErrors))]
async fn list_workers(_: Viewer, State(state): State<AppState>) -> ApiResult<Json<Vec<Worker>>> {
    Ok(Json(workers(&state).await?))
}

/// Drain a worker: the scheduler moves its replicas to other workers (each
/// under a new epoch) and gives it no new ones. Stop the worker once its
/// `replicas` list is empty.
#[utoipa::path(post, path = "/v1/workers/{id}/drain", tag = "workers",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Worker), WriteErrors))]
async fn drain_worker(
    _: Admin,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Json<Worker>> {
    if !state.store.drain_worker(id).await? {
        return Err(Problem::not_found("worker"));
    }
    tracing::info!(worker_id = %id, "worker draining");
    workers(&state)
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("worker"))
}
