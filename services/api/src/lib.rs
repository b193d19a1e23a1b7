//! The Sluice control-plane API: pipes, destinations and API keys over
//! Postgres, described by a generated OpenAPI 3.1 document.

mod auth;
mod check;
mod extract;
mod merge;
mod problem;
mod routes;
mod views;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sluice_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use auth::{bootstrap_admin_key, MintedKey};
pub use problem::Problem;

pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub max_body_bytes: usize,
    /// Where the API may connect (destination checks, table browsing,
    /// source probes): `SLUICE_EGRESS_ALLOW` / `SLUICE_EGRESS_DENY`.
    pub egress: std::sync::Arc<sluice_model::EgressPolicy>,
    /// `/metrics` needs a key (`SLUICE_METRICS_REQUIRE_KEY`).
    pub metrics_require_key: bool,
    metrics: PrometheusHandle,
    web_dir: Option<PathBuf>,
}

impl AppState {
    pub fn new(store: Store, max_body_bytes: usize) -> Self {
        Self {
            store,
            max_body_bytes,
            egress: Default::default(),
            metrics_require_key: false,
            metrics: prometheus(),
            web_dir: None,
        }
    }

    pub fn with_egress(mut self, policy: sluice_model::EgressPolicy) -> Self {
        self.egress = std::sync::Arc::new(policy);
        self
    }

    /// Serves the built web UI (`web/dist`) from this directory at `/`.
    pub fn with_web_dir(mut self, dir: PathBuf) -> Self {
        self.web_dir = Some(dir);
        self
    }
}

/// One process-wide recorder; every router shares it.
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first, in which
            // case this one still renders what it records.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice API",
        description = "Control plane of Sluice, an ingestion service that keeps pipes from Kafka and Kinesis into ClickHouse running.\n\nAuthenticate with an API key: `Authorization: Basic base64(keyId:secret)` or `Authorization: Bearer keyId.secret`. Errors are RFC 9457 problem details (`application/problem+json`).",
        license(name = "Apache-2.0")
    ),
    modifiers(&Security),
    tags(
        (name = "pipes", description = "Pipes from a Kafka topic or Kinesis stream into a ClickHouse table"),
        (name = "destinations", description = "ClickHouse endpoints"),
        (name = "sources", description = "Kafka clusters and Kinesis streams looked at before a pipe reads them: connection checks, topic and stream lists, samples, schema discovery"),
        (name = "keys", description = "API keys (admin only) and the caller's own session"),
        (name = "workers", description = "The worker fleet: capacity, use, replicas, draining"),
        (name = "system", description = "Health, readiness, metrics")
    )
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("keyId as user name, secret as password"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("keyId.secret")
                    .build(),
            ),
        );
        openapi.security = Some(vec![
            SecurityRequirement::new("basic", Vec::<String>::new()),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::pipes::router())
        .merge(routes::destinations::router())
        .merge(routes::keys::router())
        .merge(routes::system::router())
        .merge(routes::workers::router())
        .merge(routes::sources::router())
        .merge(routes::tables::router())
}

/// The OpenAPI document, as checked in at `openapi/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

pub fn openapi_json() -> String {
    let mut json = openapi()
        .to_pretty_json()
        .expect("the OpenAPI document always serializes");
    json.push('\n');
    json
}

pub fn app(state: AppState) -> Router {
    let (router, api) = api_router().split_for_parts();
    let router = router.merge(SwaggerUi::new("/docs").url("/v1/openapi.json", api));
    // Anything that is not an API route is a file of the web UI; a missing
    // file, or no UI at all, is the API's problem+json 404.
    let router = match &state.web_dir {
        Some(dir) => router.fallback_service(
            ServeDir::new(dir)
                .append_index_html_on_directories(true)
                .not_found_service(axum::handler::HandlerWithoutStateExt::into_service(
                    not_found,
                )),
        ),
        None => router.fallback(not_found),
    };
    router
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            Problem::internal().into_response()
        }))
        .with_state(state)
}

/// What a browser is told about every response: scripts, styles and
/// connections only from this origin, never framed, no referrer sent on.
/// Swagger UI (`/docs`) starts itself with an inline script.
async fn security_headers(request: Request, next: Next) -> Response {
    use axum::http::{header, HeaderValue};
    let docs = request.uri().path().starts_with("/docs");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let policy = if docs {
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    } else {
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    };
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such endpoint; the API is described at /v1/openapi.json",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this endpoint does not support the method; see /v1/openapi.json",
    )
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("sluice_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("sluice_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
