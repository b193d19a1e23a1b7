//! `KubernetesFleet` against a `kube::Client` whose transport is a mock
//! service: it records each request and answers with the API server's
//! responses from `tests/fixtures/kubernetes/`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use sluice_fleet::kubernetes::KubernetesFleet;
use sluice_fleet::{FleetError, FleetRuntime};

const SCALE_GET: &str = include_str!("fixtures/kubernetes/scale-get.json");
const SCALE_PATCH: &str = include_str!("fixtures/kubernetes/scale-patch.json");
const NOT_FOUND: &str = include_str!("fixtures/kubernetes/status-404-not-found.json");
const FORBIDDEN: &str = include_str!("fixtures/kubernetes/status-403-forbidden.json");

const SCALE_PATH: &str = "/apis/apps/v1/namespaces/sluice/statefulsets/sluice-worker/scale";

/// What the client sent.
#[derive(Debug)]
struct Sent {
    method: http::Method,
    path: String,
    query: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// What the mock answers, in order.
enum Reply {
    Api(StatusCode, &'static str),
    Transport(&'static str),
}

/// A client over a mock transport, and the log of the requests it sent.
fn mock_client(replies: Vec<Reply>) -> (kube::Client, Arc<Mutex<Vec<Sent>>>) {
    let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&sent);
    let service = tower::service_fn(move |request: Request<Body>| {
        let replies = Arc::clone(&replies);
        let log = Arc::clone(&log);
        async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .expect("the request body is readable")
                .to_bytes()
                .to_vec();
            log.lock().expect("log lock").push(Sent {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                content_type: parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| v.to_str().expect("ASCII content type").to_owned()),
                body,
            });
            let reply = replies
                .lock()
                .expect("replies lock")
                .pop_front()
                .expect("the test expected no further request");
            match reply {
                Reply::Api(status, json) => Ok(Response::builder()
                    .status(status)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Body::from(json.as_bytes().to_vec()))
                    .expect("a valid response")),
                Reply::Transport(message) => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    message,
                )),
            }
        }
    });
    (kube::Client::new(service, "sluice"), sent)
}

fn fleet(replies: Vec<Reply>, statefulset: &str) -> (KubernetesFleet, Arc<Mutex<Vec<Sent>>>) {
    let (client, sent) = mock_client(replies);
    (KubernetesFleet::new(client, "sluice", statefulset), sent)
}

#[tokio::test]
async fn workers_reads_spec_replicas_from_the_scale_subresource() {
    let (fleet, sent) = fleet(vec![Reply::Api(StatusCode::OK, SCALE_GET)], "sluice-worker");

    assert_eq!(fleet.workers().await.expect("the GET succeeds"), 3);

    let sent = sent.lock().expect("log lock");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, http::Method::GET);
    assert_eq!(sent[0].path, SCALE_PATH);
    assert!(sent[0].body.is_empty());
}

#[tokio::test]
async fn scale_merge_patches_the_replicas() {
    let (fleet, sent) = fleet(
        vec![Reply::Api(StatusCode::OK, SCALE_PATCH)],
        "sluice-worker",
    );

    fleet.scale(5).await.expect("the PATCH succeeds");

    let sent = sent.lock().expect("log lock");
    assert_eq!(sent.len(), 1);
    let patch = &sent[0];
    assert_eq!(patch.method, http::Method::PATCH);
    assert_eq!(patch.path, SCALE_PATH);
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    let body: serde_json::Value =
        serde_json::from_slice(&patch.body).expect("the patch body is JSON");
    assert_eq!(body, serde_json::json!({ "spec": { "replicas": 5 } }));
    assert!(
        patch
            .query
            .as_deref()
            .is_some_and(|q| q.contains("fieldManager=sluice-scheduler")),
        "{:?}",
        patch.query
    );
}

#[tokio::test]
async fn a_missing_statefulset_is_refused_naming_it() {
    let (fleet, _) = fleet(
        vec![Reply::Api(StatusCode::NOT_FOUND, NOT_FOUND)],
        "sluice-workers",
    );

    let err = fleet.workers().await.expect_err("the GET fails");

    let FleetError::Refused { action, message } = &err else {
        panic!("expected Refused, got {err:?}");
    };
    assert!(action.contains("sluice/sluice-workers"), "{action}");
    assert!(message.starts_with("404 NotFound: "), "{message}");
    assert!(
        message.contains("statefulsets.apps \"sluice-workers\" not found"),
        "{message}"
    );
    assert!(message.contains("SLUICE_FLEET_STATEFULSET"), "{message}");
    let text = err.to_string();
    assert!(text.contains("StatefulSet sluice/sluice-workers"), "{text}");
}

#[tokio::test]
async fn a_forbidden_patch_is_refused_pointing_at_the_rbac() {
    let (fleet, sent) = fleet(
        vec![Reply::Api(StatusCode::FORBIDDEN, FORBIDDEN)],
        "sluice-worker",
    );

    let err = fleet.scale(2).await.expect_err("the PATCH fails");

    let FleetError::Refused { action, message } = &err else {
        panic!("expected Refused, got {err:?}");
    };
    assert!(
        action.contains("StatefulSet sluice/sluice-worker to 2 replicas"),
        "{action}"
    );
    assert!(message.starts_with("403 Forbidden: "), "{message}");
    assert!(
        message.contains("cannot patch resource \"statefulsets/scale\""),
        "{message}"
    );
    assert!(
        message.contains("statefulsets/scale for sluice-worker in namespace sluice"),
        "{message}"
    );
    assert_eq!(sent.lock().expect("log lock")[0].path, SCALE_PATH);
}

#[tokio::test]
async fn a_transport_failure_is_unreachable_naming_the_statefulset() {
    let (fleet, _) = fleet(
        vec![Reply::Transport("connection refused by 10.96.0.1:443")],
        "sluice-worker",
    );

    let err = fleet.workers().await.expect_err("the transport fails");

    let FleetError::Unreachable { action, message } = &err else {
        panic!("expected Unreachable, got {err:?}");
    };
    assert!(
        action.contains("StatefulSet sluice/sluice-worker"),
        "{action}"
    );
    assert!(
        message.contains("connection refused by 10.96.0.1:443"),
        "{message}"
    );
}

#[tokio::test]
async fn hostnames_are_the_statefulset_pod_names() {
    let (fleet, _) = fleet(Vec::new(), "sluice-worker");

    assert_eq!(fleet.kind(), "kubernetes");
    assert_eq!(fleet.hostname(0), "sluice-worker-0");
    assert_eq!(fleet.hostname(12), "sluice-worker-12");
}
