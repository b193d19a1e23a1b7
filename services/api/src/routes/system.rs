//! Health, readiness and metrics: unauthenticated, for load balancers and
//! Prometheus.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Viewer;
use crate::problem::Problem;
use crate::views::Health;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The API can serve requests: Postgres answers.
#[utoipa::path(get, path = "/readyz", tag = "system", security(()),
    responses((status = 200, body = Health),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(Health { status: "ready" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(unavailable("Postgres is not answering"))
        }
        Err(_) => Err(unavailable("Postgres did not answer within 2 s")),
    }
}

fn unavailable(detail: &str) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not-ready",
        "Not ready",
        detail,
    )
}

/// Prometheus metrics. Open by default; with `SLUICE_METRICS_REQUIRE_KEY`
/// set on the API it needs a key of any role.
#[utoipa::path(get, path = "/metrics", tag = "system", security((), ("basic" = []), ("bearer" = [])),
    responses((status = 200, content_type = "text/plain", body = String),
        (status = 401, description = "No valid key, when SLUICE_METRICS_REQUIRE_KEY is set", body = Problem, content_type = "application/problem+json")))]
async fn metrics(
    State(state): State<AppState>,
    caller: Result<Viewer, Problem>,
) -> Result<impl IntoResponse, Problem> {
    if state.metrics_require_key {
        caller?;
    }
    match state.store.pipe_counts_by_state().await {
        Ok(counts) => {
            for s in sluice_model::PipeState::ALL {
                let count = counts
                    .iter()
                    .find(|(name, _)| name == s.as_str())
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("sluice_pipes", "state" => s.as_str()).set(count as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "counting pipes for metrics failed"),
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}
