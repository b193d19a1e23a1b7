//! The client against a registry served by the test itself (the
//! documented `GET /schemas/ids/{id}` answer, basic auth), and against one
//! that is not there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use sluice_formats::avro::SchemaSource;
use sluice_registry::{Registry, RegistryConfig, RegistryError};

const ORDER: &str =
    r#"{"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]}"#;

#[derive(Default)]
struct Served {
    requests: AtomicUsize,
}

async fn schema_by_id(
    State(served): State<Arc<Served>>,
    Path(id): Path<u32>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    served.requests.fetch_add(1, Ordering::SeqCst);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("reader:s3cret")
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error_code": 401, "message": "Unauthorized"})),
        );
    }
    match id {
        1 => (StatusCode::OK, Json(json!({"schema": ORDER}))),
        2 => (
            StatusCode::OK,
            Json(json!({"schema": "syntax = \"proto3\"; message M {}", "schemaType": "PROTOBUF"})),
        ),
        3 => (StatusCode::OK, Json(json!({"schema": "{not avro"}))),
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"error_code": 40403, "message": "Schema not found"})),
        ),
    }
}

async fn serve() -> (String, Arc<Served>) {
    let served = Arc::new(Served::default());
    let app = Router::new()
        .route("/schemas/ids/{id}", get(schema_by_id))
        .with_state(served.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, served)
}

fn config(url: &str) -> RegistryConfig {
    let mut config = RegistryConfig::new(url);
    config.username = Some("reader".into());
    config.password = Some("s3cret".into());
    config.timeout = Duration::from_secs(2);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_are_fetched_once_per_id_with_basic_auth() {
    let (url, served) = serve().await;
    let registry = Arc::new(Registry::new(config(&url)).unwrap());
    registry.schema_by_id(1).await.expect("schema 1");
    registry.schema_by_id(1).await.expect("schema 1 again");
    // The decoder's synchronous path, from inside the runtime.
    let from_decoder = registry.clone();
    tokio::task::spawn(async move { from_decoder.schema(1).map(|_| ()) })
        .await
        .unwrap()
        .expect("schema 1 through SchemaSource");
    assert_eq!(
        served.requests.load(Ordering::SeqCst),
        1,
        "one request per id"
    );

    match registry.schema_by_id(99).await {
        Err(RegistryError::Refused {
            id: 99,
            status: 404,
            body,
        }) => {
            assert!(body.contains("Schema not found"), "{body}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    match registry.schema_by_id(2).await {
        Err(RegistryError::Invalid { reason, .. }) => {
            assert!(reason.contains("PROTOBUF"), "{reason}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert!(matches!(
        registry.schema_by_id(3).await,
        Err(RegistryError::Invalid { .. })
    ));

    let mut wrong = config(&url);
    wrong.password = Some("nope".into());
    let refused = Registry::new(wrong).unwrap();
    assert!(matches!(
        refused.schema_by_id(1).await,
        Err(RegistryError::Refused { status: 401, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_is_a_retryable_error() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let registry = Registry::new(config(&format!("http://127.0.0.1:{port}"))).unwrap();
    match registry.schema_by_id(1).await {
        Err(RegistryError::Unreachable { reason, .. }) => {
            assert!(reason.to_lowercase().contains("connect"), "{reason}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn a_bad_ca_certificate_is_refused_up_front() {
    let mut bad = RegistryConfig::new("https://registry.example");
    bad.ca_certificate =
        Some("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into());
    assert!(matches!(Registry::new(bad), Err(RegistryError::Config(_))));
}
