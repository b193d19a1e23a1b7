//! TEST SCAFFOLDING: a minimal Confluent-compatible schema registry.
//!
//! No Confluent-compatible registry server (Confluent's, Karapace,
//! Apicurio) can be installed from the registries these machines reach, so
//! the tests run this one. It keeps schemas in memory and implements only
//! the documented REST subset the clients use: register a schema under a
//! subject (`POST /subjects/{s}/versions`), look one up
//! (`POST /subjects/{s}`), get a schema by id, list subjects and a
//! subject's versions, get a subject version (or `latest`), with optional
//! HTTP basic auth. Schemas are stored as sent (no normalisation, no
//! compatibility checks). It is not part of Sluice and never used outside
//! tests and the local stack.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

#[derive(Clone, PartialEq)]
struct Stored {
    schema: String,
    schema_type: String,
    references: Value,
}

#[derive(Default)]
struct Inner {
    /// Index + 1 is the id.
    schemas: Vec<Stored>,
    /// Subject → ids of its versions, oldest first.
    subjects: BTreeMap<String, Vec<u32>>,
}

#[derive(Default)]
pub struct RegistryState {
    inner: Mutex<Inner>,
    credentials: Option<(String, String)>,
    /// While set, every request is answered 503, as a registry that is
    /// down behind its load balancer would be.
    pub down: AtomicBool,
    /// `GET /schemas/ids/…` requests served.
    pub schema_reads: AtomicUsize,
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

impl RegistryState {
    fn refuse(&self, headers: &HeaderMap) -> Option<Response> {
        if self.down.load(Ordering::SeqCst) {
            return Some(error(StatusCode::SERVICE_UNAVAILABLE, 50003, "unavailable"));
        }
        let (user, password) = self.credentials.as_ref()?;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let given = headers.get("authorization").and_then(|v| v.to_str().ok());
        (given != Some(expected.as_str()))
            .then(|| error(StatusCode::UNAUTHORIZED, 401, "Unauthorized"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn stored_of(body: &Value) -> Option<Stored> {
    Some(Stored {
        schema: body.get("schema")?.as_str()?.to_owned(),
        schema_type: body
            .get("schemaType")
            .and_then(Value::as_str)
            .unwrap_or("AVRO")
            .to_owned(),
        references: body.get("references").cloned().unwrap_or(json!([])),
    })
}

fn describe(stored: &Stored, id: u32) -> Value {
    let mut answer = json!({"id": id, "schema": stored.schema, "references": stored.references});
    if stored.schema_type != "AVRO" {
        answer["schemaType"] = json!(stored.schema_type);
    }
    answer
}

async fn register(
    State(state): State<Arc<RegistryState>>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = state.refuse(&headers) {
        return refused;
    }
    let Some(stored) = stored_of(&body) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema");
    };
    let mut inner = state.lock();
    let id = match inner.schemas.iter().position(|s| *s == stored) {
        Some(index) => index as u32 + 1,
        None => {
            inner.schemas.push(stored);
            inner.schemas.len() as u32
        }
    };
    let versions = inner.subjects.entry(subject).or_default();
    if !versions.contains(&id) {
        versions.push(id);
    }
    Json(json!({"id": id})).into_response()
}

async fn lookup(
    State(state): State<Arc<RegistryState>>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = state.refuse(&headers) {
        return refused;
    }
    let Some(stored) = stored_of(&body) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema");
    };
    let inner = state.lock();
    let found = inner.subjects.get(&subject).and_then(|ids| {
        ids.iter()
            .enumerate()
            .find_map(|(i, id)| (inner.schemas[*id as usize - 1] == stored).then_some((i + 1, *id)))
    });
    match found {
        Some((version, id)) => {
            let mut answer = describe(&stored, id);
            answer["subject"] = json!(subject);
            answer["version"] = json!(version);
            Json(answer).into_response()
        }
        None => error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
    }
}

async fn schema_by_id(
    State(state): State<Arc<RegistryState>>,
    Path(id): Path<u32>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = state.refuse(&headers) {
        return refused;
    }
    state.schema_reads.fetch_add(1, Ordering::SeqCst);
    let inner = state.lock();
    match id
        .checked_sub(1)
        .and_then(|i| inner.schemas.get(i as usize))
    {
        Some(stored) => {
            let mut answer = describe(stored, id);
            answer.as_object_mut().map(|o| o.remove("id"));
            Json(answer).into_response()
        }
        None => error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
    }
}

async fn subjects(State(state): State<Arc<RegistryState>>, headers: HeaderMap) -> Response {
    if let Some(refused) = state.refuse(&headers) {
        return refused;
    }
    let names: Vec<String> = state.lock().subjects.keys().cloned().collect();
    Json(names).into_response()
}

async fn versions(
    State(state): State<Arc<RegistryState>>,
    Path(subject): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = state.refuse(&headers) {
        return refused;
    }
    match state.lock().subjects.get(&subject) {
        Some(ids) => Json((1..=ids.len()).collect::<Vec<_>>()).into_response(),
        None => error(StatusCode::NOT_FOUND, 40401, "Subject not found"),
    }
}

async fn subject_version(
    State(state): State<Arc<RegistryState>>,
    Path((subject, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = state.refuse(&headers) {
        return refused;
    }
    let inner = state.lock();
    let Some(ids) = inner.subjects.get(&subject) else {
        return error(StatusCode::NOT_FOUND, 40401, "Subject not found");
    };
    let index = match version.as_str() {
        "latest" | "-1" => ids.len().checked_sub(1),
        number => number
            .parse::<usize>()
            .ok()
            .and_then(|v| v.checked_sub(1))
            .filter(|i| *i < ids.len()),
    };
    let Some(index) = index else {
        return error(StatusCode::NOT_FOUND, 40402, "Version not found");
    };
    let id = ids[index];
    let mut answer = describe(&inner.schemas[id as usize - 1], id);
    answer["subject"] = json!(subject);
    answer["version"] = json!(index + 1);
    Json(answer).into_response()
}

/// The registry's routes over `state`.
pub fn router(state: Arc<RegistryState>) -> Router {
    Router::new()
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route(
            "/subjects/{subject}/versions/{version}",
            get(subject_version),
        )
        .route("/schemas/ids/{id}", get(schema_by_id))
        .with_state(state)
}

/// A registry served on a loopback port of its own, for one test.
pub struct TestRegistry {
    pub url: String,
    pub state: Arc<RegistryState>,
    task: tokio::task::JoinHandle<()>,
}

impl TestRegistry {
    /// `credentials`: the basic-auth user and password it demands.
    pub async fn start(credentials: Option<(&str, &str)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the test registry");
        Self::serve(listener, credentials)
    }

    pub fn serve(listener: tokio::net::TcpListener, credentials: Option<(&str, &str)>) -> Self {
        let state = Arc::new(RegistryState {
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
            ..RegistryState::default()
        });
        let url = format!(
            "http://{}",
            listener.local_addr().expect("the test registry's address")
        );
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestRegistry { url, state, task }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}
