//! The API against a real Postgres (one database per test) and, for the
//! destination check, a real ClickHouse. Every request goes over HTTP to a
//! server on a loopback port.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sluice_api::{app, bootstrap_admin_key, AppState, MintedKey};
use sluice_model::{Command, PipeState, Transition};
use sluice_store::{Cipher, PipeUpdate, Store};
use sluice_testkit::{clickhouse_url, TestDatabase};
use uuid::Uuid;

const MAX_BODY: usize = 256 * 1024;

/// Everything the API logs during the tests, at TRACE, to look for secrets.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter("trace,sqlx=trace,hyper=info,h2=info,reqwest=debug")
            .with_writer(move || CaptureWriter(sink.clone()))
            .with_ansi(false)
            .init();
        buffer
    })
    .clone()
}

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct TestApi {
    base: String,
    http: reqwest::Client,
    admin: String,
    store: Store,
    /// A ClickHouse database of the test's own, the destinations' default;
    /// it holds `visits`, an existing table.
    database: String,
}

/// Runs a statement on the test ClickHouse; a refusal fails the test.
async fn clickhouse(sql: &str) {
    let response = reqwest::Client::new()
        .post(clickhouse_url())
        .body(sql.to_owned())
        .send()
        .await
        .expect("the test ClickHouse answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{sql}: {text}");
}

struct Reply {
    status: StatusCode,
    content_type: String,
    etag: Option<String>,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn is_problem(&self) -> bool {
        self.content_type == "application/problem+json"
            && self.json()["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://sluice.dev/problems/"))
            && self.json()["status"] == self.status.as_u16()
            && self.json()["detail"].is_string()
    }
}

impl TestApi {
    async fn start() -> Self {
        Self::start_with(|state| state).await
    }

    async fn start_with(configure: impl FnOnce(AppState) -> AppState) -> Self {
        captured_logs();
        let db = TestDatabase::create().await;
        let store = Store::from_pool(db.pool().await, Cipher::from_key(&[42; 32]));
        store.migrate().await.expect("migrations apply");
        let admin = MintedKey::generate();
        bootstrap_admin_key(&store, Some(&admin.token()))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = app(configure(AppState::new(store.clone(), MAX_BODY)));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        let database = format!("api_{}", Uuid::new_v4().simple());
        clickhouse(&format!("CREATE DATABASE {database}")).await;
        clickhouse(&format!(
            "CREATE TABLE {database}.visits (id UInt64, at DateTime) ENGINE = MergeTree ORDER BY id"
        ))
        .await;
        TestApi {
            base,
            http: reqwest::Client::new(),
            admin: admin.token(),
            store,
            database,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let content_type = header("content-type").unwrap_or_default();
        let etag = header("etag");
        let text = response.text().await.unwrap();
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "500: {text}");
        Reply {
            status,
            content_type,
            etag,
            text,
        }
    }

    fn request(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
    }

    async fn call_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(&self.admin.clone(), method, path, body).await
    }

    async fn create_key(&self, role: &str) -> String {
        let reply = self
            .call(
                Method::POST,
                "/v1/keys",
                Some(json!({"name": format!("{role} key"), "role": role})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["token"].as_str().unwrap().to_owned()
    }

    async fn create_destination(&self, password: &str) -> String {
        let reply = self
            .call(
                Method::POST,
                "/v1/destinations",
                Some(json!({"name": "local ch", "url": clickhouse_url(), "password": password, "database": self.database})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["id"].as_str().unwrap().to_owned()
    }

    async fn create_pipe(&self, body: Value) -> Value {
        let reply = self.call(Method::POST, "/v1/pipes", Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()
    }

    /// Puts a pipe into any state, as the data plane would.
    async fn force_state(&self, id: &str, state: PipeState) {
        let id: Uuid = id.parse().unwrap();
        let record = self.store.pipe(id).await.unwrap().unwrap();
        self.store
            .update_pipe(
                id,
                record.version,
                PipeUpdate {
                    spec: None,
                    state,
                    bump_generation: false,
                    reset_autoscaled_replicas: false,
                    event: sluice_store::NewEvent::info("test", "forced by the test"),
                },
            )
            .await
            .unwrap()
            .unwrap();
    }
}

fn kafka_pipe(destination: &str) -> Value {
    json!({
        "name": "orders",
        "description": "orders from the shop",
        "source": {"kafka": {
            "brokers": "127.0.0.1:9092",
            "topics": ["orders"],
            "authentication": "SCRAM-SHA-256",
            "credentials": {"username": "shop", "password": "kafka-pw-7f3a9c"}
        }},
        "destination": {
            "destinationId": destination,
            "table": "orders",
            "managedTable": true,
            "tableDefinition": {"engine": "MergeTree", "sortingKey": ["id"]},
            "columns": [{"name": "id", "type": "UInt64"}, {"name": "total", "type": "Decimal(18, 2)"}]
        },
        "fieldMappings": [{"sourceField": "order.id", "destinationField": "id"}]
    })
}

fn kinesis_pipe(destination: &str) -> Value {
    json!({
        "name": "clicks",
        "source": {"kinesis": {
            "streamName": "clicks",
            "region": "us-east-1",
            "endpoint": "http://127.0.0.1:4568",
            "iteratorType": "AT_TIMESTAMP",
            "timestamp": "2026-01-01T00:00:00Z",
            "useEnhancedFanOut": true,
            "accessKey": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretKey": "kinesis-secret-91b2e"}
        }},
        "destination": {
            "destinationId": destination,
            "table": "clicks",
            "managedTable": true,
            "tableDefinition": {"sortingKey": ["id"]},
            "columns": [{"name": "id", "type": "UInt64"}]
        },
        "scaling": {"replicas": 2, "replicaSize": "M", "autoscaling": {"minReplicas": 1, "maxReplicas": 4}}
    })
}

#[tokio::test]
async fn health_readiness_metrics_and_docs_need_no_key() {
    let api = TestApi::start().await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/openapi.json",
        "/docs/",
    ] {
        let reply = api.send(api.http.get(format!("{}{path}", api.base))).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
    }
    let metrics = api
        .send(api.http.get(format!("{}/metrics", api.base)))
        .await;
    assert!(metrics.text.contains("sluice_pipes"), "{}", metrics.text);
    let spec = api
        .send(api.http.get(format!("{}/v1/openapi.json", api.base)))
        .await;
    assert_eq!(spec.json()["openapi"], "3.1.0");
}

#[tokio::test]
async fn authentication_and_roles() {
    let api = TestApi::start().await;
    let url = format!("{}/v1/pipes", api.base);

    let none = api.send(api.http.get(&url)).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.is_problem());

    let unknown = MintedKey::generate().token();
    let reply = api.call_as(&unknown, Method::GET, "/v1/pipes", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let (admin_id, _) = api.admin.split_once('.').unwrap();
    let wrong_secret = format!("{admin_id}.{}", MintedKey::generate().secret);
    let reply = api
        .call_as(&wrong_secret, Method::GET, "/v1/pipes", None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    for garbage in [
        "Bearer",
        "Bearer nodot",
        "Basic !!!",
        "Basic Zm9v",
        "Digest x",
        "Bearer a.b",
    ] {
        let reply = api
            .send(api.http.get(&url).header("authorization", garbage))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{garbage}");
        assert!(reply.is_problem());
    }

    // Basic auth, as the reference API takes it.
    let (id, secret) = api.admin.split_once('.').unwrap();
    let reply = api
        .send(api.http.get(&url).basic_auth(id, Some(secret)))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    let viewer = api.create_key("viewer").await;
    let developer = api.create_key("developer").await;
    assert_eq!(
        api.call_as(&viewer, Method::GET, "/v1/pipes", None)
            .await
            .status,
        StatusCode::OK
    );
    let write = api
        .call_as(
            &viewer,
            Method::POST,
            "/v1/destinations",
            Some(json!({"name": "x", "url": "http://h"})),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert!(write.is_problem());
    let reply = api
        .call_as(
            &developer,
            Method::POST,
            "/v1/destinations",
            Some(json!({"name": "x", "url": "http://h"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        api.call_as(&developer, Method::GET, "/v1/keys", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.call_as(&viewer, Method::GET, "/v1/keys", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Revocation.
    let keys = api.call(Method::GET, "/v1/keys", None).await.json();
    assert_eq!(keys["data"].as_array().unwrap().len(), 3);
    assert!(keys.to_string().find("secret").is_none(), "{keys}");
    let (viewer_id, _) = viewer.split_once('.').unwrap();
    let revoked = api
        .call(Method::DELETE, &format!("/v1/keys/{viewer_id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.json()["revokedAt"].is_string());
    let reply = api.call_as(&viewer, Method::GET, "/v1/pipes", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.json()["detail"].as_str().unwrap().contains("revoked"));
    let missing = api
        .call(Method::DELETE, "/v1/keys/sk00000000000000000000", None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The last admin key cannot be revoked; with a second one it can.
    let last = api
        .call(Method::DELETE, &format!("/v1/keys/{admin_id}"), None)
        .await;
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert!(last.is_problem());
    let second_admin = api.create_key("admin").await;
    let reply = api
        .call_as(
            &second_admin,
            Method::DELETE,
            &format!("/v1/keys/{admin_id}"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        api.call(Method::GET, "/v1/pipes", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn destinations_crud_and_concurrency() {
    let api = TestApi::start().await;
    let id = api.create_destination("").await;
    let path = format!("/v1/destinations/{id}");

    let got = api.call(Method::GET, &path, None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.etag.as_deref(), Some("\"1\""));
    assert_eq!(got.json()["username"], "default");
    assert_eq!(got.json()["database"], api.database.as_str());

    // Pagination across three destinations.
    api.create_destination("p2").await;
    api.create_destination("p3").await;
    let first = api
        .call(Method::GET, "/v1/destinations?limit=2", None)
        .await
        .json();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = api
        .call(
            Method::GET,
            &format!("/v1/destinations?limit=2&cursor={cursor}"),
            None,
        )
        .await
        .json();
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert!(second.get("nextCursor").is_none());

    // A merge patch; If-Match guards against lost updates.
    let renamed = api
        .call(Method::PATCH, &path, Some(json!({"name": "renamed"})))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.json()["version"], 2);
    assert_eq!(renamed.json()["hasPassword"], true);
    let stale = api
        .send(
            api.request(Method::PATCH, &path, &api.admin)
                .header("if-match", "\"1\"")
                .json(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert!(stale.is_problem());
    let fresh = api
        .send(
            api.request(Method::PATCH, &path, &api.admin)
                .header("if-match", "\"2\"")
                .json(&json!({"database": "other"})),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    let unchanged = api
        .call(Method::PATCH, &path, Some(json!({"database": "other"})))
        .await;
    assert_eq!(
        unchanged.json()["version"],
        3,
        "a no-op patch keeps the version"
    );
    let invalid = api
        .call(Method::PATCH, &path, Some(json!({"url": "ftp://x"})))
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.json()["errors"][0]["pointer"], "/url");

    // In use by a pipe: refused, naming the pipe.
    api.create_pipe(kafka_pipe(&id)).await;
    let in_use = api.call(Method::DELETE, &path, None).await;
    assert_eq!(in_use.status, StatusCode::CONFLICT);
    assert!(in_use.json()["detail"].as_str().unwrap().contains("orders"));

    let other = api.create_destination("").await;
    let other_path = format!("/v1/destinations/{other}");
    assert_eq!(
        api.call(Method::DELETE, &other_path, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.call(Method::GET, &other_path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.call(Method::DELETE, &other_path, None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn destination_check_reports_version_or_the_exact_failure() {
    let api = TestApi::start().await;
    let good = api.create_destination("").await;
    let reply = api
        .call(
            Method::POST,
            &format!("/v1/destinations/{good}/check"),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let check = reply.json();
    assert_eq!(check["ok"], true, "{check}");
    assert!(check["serverVersion"]
        .as_str()
        .unwrap()
        .chars()
        .next()
        .unwrap()
        .is_ascii_digit());

    let wrong_password = api.create_destination("not-the-password-5d1e").await;
    let check = api
        .call(
            Method::POST,
            &format!("/v1/destinations/{wrong_password}/check"),
            None,
        )
        .await
        .json();
    assert_eq!(check["ok"], false);
    let error = check["error"].as_str().unwrap();
    assert!(error.contains("Code: "), "{error}");
    assert!(!error.contains("not-the-password-5d1e"));

    let patched = api
        .call(
            Method::PATCH,
            &format!("/v1/destinations/{good}"),
            Some(json!({"database": "no_such_db"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    let check = api
        .call(
            Method::POST,
            &format!("/v1/destinations/{good}/check"),
            None,
        )
        .await
        .json();
    assert_eq!(check["ok"], false);
    assert!(
        check["error"].as_str().unwrap().contains("no_such_db"),
        "{check}"
    );

    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let reply = api
        .call(
            Method::POST,
            "/v1/destinations",
            Some(json!({"name": "nowhere", "url": format!("http://127.0.0.1:{port}")})),
        )
        .await;
    let nowhere = reply.json()["id"].as_str().unwrap().to_owned();
    let check = api
        .call(
            Method::POST,
            &format!("/v1/destinations/{nowhere}/check"),
            None,
        )
        .await
        .json();
    assert_eq!(check["ok"], false);
    assert!(
        check["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{check}"
    );
}

#[tokio::test]
async fn pipes_crud_edits_scaling_settings_status_and_events() {
    let api = TestApi::start().await;
    let destination = api.create_destination("").await;
    let pipe = api.create_pipe(kafka_pipe(&destination)).await;
    let id = pipe["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/pipes/{id}");
    assert_eq!(pipe["state"], "Stopped");
    assert_eq!(
        pipe["source"]["kafka"]["consumerGroup"],
        format!("sluice-{id}")
    );
    assert_eq!(
        pipe["source"]["kafka"]["credentials"],
        json!({"username": "shop"})
    );
    assert_eq!(pipe["settings"]["streaming_max_insert_wait_ms"], 5000);
    assert_eq!(pipe["settings"]["max_insert_rows"], 100000);
    assert_eq!(pipe["scaling"], json!({"replicas": 1, "replicaSize": "XS"}));

    let kinesis = api.create_pipe(kinesis_pipe(&destination)).await;
    assert_eq!(
        kinesis["source"]["kinesis"]["accessKey"],
        json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE"})
    );
    let list = api
        .call(Method::GET, "/v1/pipes?limit=1", None)
        .await
        .json();
    assert_eq!(list["data"][0]["id"], id.as_str());
    let next = list["nextCursor"].as_str().unwrap();
    let list = api
        .call(Method::GET, &format!("/v1/pipes?cursor={next}"), None)
        .await
        .json();
    assert_eq!(list["data"][0]["id"], kinesis["id"]);

    // Renaming is not a data-path change; rotating the password is.
    let renamed = api
        .call(
            Method::PATCH,
            &path,
            Some(json!({"name": "orders v2", "description": null})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.json()["name"], "orders v2");
    assert_eq!(renamed.json()["description"], "");
    assert_eq!(renamed.json()["generation"], 1);
    let rotated = api
        .call(
            Method::PATCH,
            &path,
            Some(json!({"source": {"kafka": {"credentials": {"password": "rotated-pw-0c4d"}}}})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_eq!(rotated.json()["generation"], 2);
    assert_eq!(
        rotated.json()["source"]["kafka"]["credentials"]["username"],
        "shop"
    );
    let resent = api.call(Method::PATCH, &path, Some(renamed.json())).await;
    assert_eq!(
        resent.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "read-only fields are not part of the spec"
    );
    let same_immutables = api
        .call(
            Method::PATCH,
            &path,
            Some(json!({"source": {"kafka": {"topics": ["orders"], "brokers": "127.0.0.1:9092"}}})),
        )
        .await;
    assert_eq!(same_immutables.status, StatusCode::OK);
    assert_eq!(
        same_immutables.json()["version"],
        rotated.json()["version"],
        "no-op"
    );

    // Immutable fields.
    for (patch, pointer) in [
        (
            json!({"source": {"kafka": {"topics": ["other"]}}}),
            "/source/kafka/topics",
        ),
        (
            json!({"source": {"kafka": {"brokers": "10.0.0.1:9092"}}}),
            "/source/kafka/brokers",
        ),
        (
            json!({"source": {"kafka": {"consumerGroup": "mine"}}}),
            "/source/kafka/consumerGroup",
        ),
        (
            json!({"source": {"kafka": {"offset": {"strategy": "from_latest"}}}}),
            "/source/kafka/offset",
        ),
        (
            json!({"destination": {"table": "elsewhere"}}),
            "/destination/table",
        ),
        (
            json!({"destination": {"columns": [{"name": "id", "type": "UInt64"}]}}),
            "/destination/columns",
        ),
        (
            json!({"source": {"kafka": null, "kinesis": kinesis_pipe(&destination)["source"]["kinesis"]}}),
            "/source",
        ),
    ] {
        let reply = api.call(Method::PATCH, &path, Some(patch.clone())).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{patch}: {}",
            reply.text
        );
        assert!(reply.is_problem());
        assert_eq!(
            reply.json()["type"],
            "https://sluice.dev/problems/immutable-field",
            "{patch}"
        );
        assert_eq!(reply.json()["errors"][0]["pointer"], pointer);
        assert!(reply.json()["detail"]
            .as_str()
            .unwrap()
            .contains("new pipe"));
    }

    // Scaling.
    let scaled = api
        .call(
            Method::PATCH,
            &format!("{path}/scaling"),
            Some(json!({"replicas": 3, "replicaSize": "L"})),
        )
        .await;
    assert_eq!(scaled.status, StatusCode::OK, "{}", scaled.text);
    assert_eq!(
        scaled.json()["scaling"],
        json!({"replicas": 3, "replicaSize": "L"})
    );
    let auto = api
        .call(
            Method::PATCH,
            &format!("{path}/scaling"),
            Some(json!({"autoscaling": {"minReplicas": 2, "maxReplicas": 6}})),
        )
        .await;
    assert_eq!(auto.json()["scaling"]["autoscaling"]["maxReplicas"], 6);
    let bad = api
        .call(
            Method::PATCH,
            &format!("{path}/scaling"),
            Some(json!({"autoscaling": {"minReplicas": 5, "maxReplicas": 6}})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["errors"][0]["pointer"], "/scaling/replicas");
    let bad = api
        .call(
            Method::PATCH,
            &format!("{path}/scaling"),
            Some(json!({"replicaSize": "XXL"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["errors"][0]["pointer"], "/scaling/replicaSize");

    // Settings.
    let settings = api
        .call(Method::GET, &format!("{path}/settings"), None)
        .await;
    assert_eq!(
        settings.json(),
        json!({"streaming_max_insert_wait_ms": 5000, "max_insert_rows": 100000, "clickhouse_timeout_seconds": 120})
    );
    let put = api
        .call(
            Method::PUT,
            &format!("{path}/settings"),
            Some(json!({"streaming_max_insert_wait_ms": 1500})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(
        put.json(),
        json!({"streaming_max_insert_wait_ms": 1500, "max_insert_rows": 100000, "clickhouse_timeout_seconds": 120})
    );
    for body in [
        json!({"streaming_max_insert_wait_ms": 499}),
        json!({"streaming_max_insert_wait_ms": 60001}),
        json!({"clickhouse_timeout_seconds": 0}),
        json!({"batch": 1}),
    ] {
        let reply = api
            .call(Method::PUT, &format!("{path}/settings"), Some(body.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(reply.is_problem());
    }

    // Status and events.
    let status = api
        .call(Method::GET, &format!("{path}/status"), None)
        .await
        .json();
    assert_eq!(status["state"], "Stopped");
    assert_eq!(status["desiredState"], "stopped");
    assert_eq!(status["replicas"], json!({"desired": 0, "ready": 0}));
    api.call(
        Method::PATCH,
        &format!("{path}/state"),
        Some(json!({"command": "start"})),
    )
    .await;
    let status = api
        .call(Method::GET, &format!("{path}/status"), None)
        .await
        .json();
    assert_eq!(status["state"], "Provisioning");
    assert_eq!(status["desiredState"], "running");
    assert_eq!(status["replicas"]["desired"], 3);
    let events = api
        .call(Method::GET, &format!("{path}/events"), None)
        .await
        .json();
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.first(),
        Some(&"state_changed"),
        "newest first: {kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"created"));
    let page = api
        .call(Method::GET, &format!("{path}/events?limit=2"), None)
        .await
        .json();
    let next = page["nextCursor"].as_str().unwrap();
    let rest = api
        .call(
            Method::GET,
            &format!("{path}/events?cursor={next}&limit=200"),
            None,
        )
        .await
        .json();
    assert_eq!(
        page["data"].as_array().unwrap().len() + rest["data"].as_array().unwrap().len(),
        kinds.len()
    );

    // Delete: live pipes pass through Deleting, stopped ones go at once.
    let deleting = api.call(Method::DELETE, &path, None).await;
    assert_eq!(deleting.status, StatusCode::ACCEPTED);
    assert_eq!(deleting.json()["state"], "Deleting");
    let edit = api
        .call(Method::PATCH, &path, Some(json!({"name": "late"})))
        .await;
    assert_eq!(edit.status, StatusCode::CONFLICT);
    assert_eq!(edit.json()["currentState"], "Deleting");
    let kinesis_path = format!("/v1/pipes/{}", kinesis["id"].as_str().unwrap());
    assert_eq!(
        api.call(Method::DELETE, &kinesis_path, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.call(Method::GET, &kinesis_path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.call(Method::GET, &format!("{kinesis_path}/events"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// Every command in every state, through the API, against the state
/// machine's own answer.
#[tokio::test]
async fn every_state_transition_through_the_api() {
    let api = TestApi::start().await;
    let destination = api.create_destination("").await;
    for from in PipeState::ALL {
        for command in [Command::Start, Command::Stop, Command::Delete] {
            let id = api.create_pipe(kafka_pipe(&destination)).await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            api.force_state(&id, from).await;
            let path = format!("/v1/pipes/{id}");
            let reply = match command {
                Command::Start => {
                    api.call(
                        Method::PATCH,
                        &format!("{path}/state"),
                        Some(json!({"command": "start"})),
                    )
                    .await
                }
                Command::Stop => {
                    api.call(
                        Method::PATCH,
                        &format!("{path}/state"),
                        Some(json!({"command": "stop"})),
                    )
                    .await
                }
                Command::Delete => api.call(Method::DELETE, &path, None).await,
            };
            let case = format!("{command:?} from {from:?}");
            match from.apply(command) {
                Ok(Transition::To(to)) => {
                    let expected = if command == Command::Delete {
                        StatusCode::ACCEPTED
                    } else {
                        StatusCode::OK
                    };
                    assert_eq!(reply.status, expected, "{case}: {}", reply.text);
                    assert_eq!(reply.json()["state"], to.as_str(), "{case}");
                    let status = api
                        .call(Method::GET, &format!("{path}/status"), None)
                        .await
                        .json();
                    assert_eq!(status["state"], to.as_str(), "{case}");
                }
                Ok(Transition::Remove) => {
                    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{case}");
                    assert_eq!(
                        api.call(Method::GET, &path, None).await.status,
                        StatusCode::NOT_FOUND
                    );
                }
                Err(_) => {
                    assert_eq!(reply.status, StatusCode::CONFLICT, "{case}: {}", reply.text);
                    assert!(reply.is_problem());
                    assert_eq!(reply.json()["currentState"], from.as_str(), "{case}");
                    assert!(reply.json()["detail"]
                        .as_str()
                        .unwrap()
                        .contains(from.as_str()));
                }
            }
        }
    }
}

#[tokio::test]
async fn a_failed_pipe_can_be_edited_stopped_started_and_deleted() {
    let api = TestApi::start().await;
    let destination = api.create_destination("").await;
    for last in ["stop", "start", "delete"] {
        let id = api.create_pipe(kafka_pipe(&destination)).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/v1/pipes/{id}");
        api.force_state(&id, PipeState::Failed).await;
        let edit = api
            .call(
                Method::PATCH,
                &path,
                Some(json!({"fieldMappings": [], "source": {"kafka": {"readCommitted": true}}})),
            )
            .await;
        assert_eq!(edit.status, StatusCode::OK, "{}", edit.text);
        assert_eq!(edit.json()["state"], "Failed");
        let reply = match last {
            "delete" => api.call(Method::DELETE, &path, None).await,
            command => {
                api.call(
                    Method::PATCH,
                    &format!("{path}/state"),
                    Some(json!({"command": command})),
                )
                .await
            }
        };
        assert!(reply.status.is_success(), "{last}: {}", reply.text);
    }
}

#[tokio::test]
async fn if_match_on_pipes() {
    let api = TestApi::start().await;
    let destination = api.create_destination("").await;
    let pipe = api.create_pipe(kafka_pipe(&destination)).await;
    let path = format!("/v1/pipes/{}", pipe["id"].as_str().unwrap());
    let got = api.call(Method::GET, &path, None).await;
    let etag = got.etag.clone().unwrap();
    let ok = api
        .send(
            api.request(Method::PATCH, &path, &api.admin)
                .header("if-match", &etag)
                .json(&json!({"name": "a"})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let stale = api
        .send(
            api.request(Method::PATCH, &path, &api.admin)
                .header("if-match", &etag)
                .json(&json!({"name": "b"})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let stale = api
        .send(
            api.request(Method::PATCH, &format!("{path}/state"), &api.admin)
                .header("if-match", &etag)
                .json(&json!({"command": "start"})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
}

/// Malformed requests, each answered with a 4xx problem+json and never a 500.
#[tokio::test]
async fn malformed_requests_get_problem_details() {
    let api = TestApi::start().await;
    let destination = api.create_destination("").await;
    let pipe = api.create_pipe(kafka_pipe(&destination)).await;
    let pipe_path = format!("/v1/pipes/{}", pipe["id"].as_str().unwrap());
    let valid = kafka_pipe(&destination);
    let with = |pointer: &str, value: Value| {
        let mut body = valid.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match body
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("{pointer}"))
        {
            Value::Object(object) => {
                object.insert(key.to_owned(), value);
            }
            Value::Array(array) => array[key.parse::<usize>().unwrap()] = value,
            _ => panic!("{pointer}"),
        }
        body
    };
    let without = |parent: &str, field: &str| {
        let mut body = valid.clone();
        body.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(field);
        body
    };
    let topics: Vec<String> = (0..20_000).map(|i| format!("t{i}")).collect();
    let deep = format!("{}1{}", r#"{"a":"#.repeat(5000), "}".repeat(5000));

    type Case = (&'static str, Method, String, Vec<u8>, &'static str, u16);
    let json_case = |name, path: &str, body: Value, status| -> Case {
        (
            name,
            Method::POST,
            path.to_owned(),
            serde_json::to_vec(&body).unwrap(),
            "application/json",
            status,
        )
    };
    let cases: Vec<Case> = vec![
        (
            "not json",
            Method::POST,
            "/v1/pipes".into(),
            b"name=orders".to_vec(),
            "application/json",
            400,
        ),
        (
            "truncated json",
            Method::POST,
            "/v1/pipes".into(),
            b"{\"name\": \"or".to_vec(),
            "application/json",
            400,
        ),
        (
            "invalid utf-8",
            Method::POST,
            "/v1/pipes".into(),
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
            "application/json",
            400,
        ),
        (
            "empty body",
            Method::POST,
            "/v1/pipes".into(),
            Vec::new(),
            "application/json",
            400,
        ),
        (
            "trailing garbage",
            Method::POST,
            "/v1/pipes".into(),
            [serde_json::to_vec(&valid).unwrap(), b" {}".to_vec()].concat(),
            "application/json",
            400,
        ),
        (
            "deeply nested",
            Method::PATCH,
            pipe_path.clone(),
            deep.into_bytes(),
            "application/json",
            400,
        ),
        (
            "text/plain",
            Method::POST,
            "/v1/pipes".into(),
            serde_json::to_vec(&valid).unwrap(),
            "text/plain",
            415,
        ),
        (
            "no content type",
            Method::POST,
            "/v1/pipes".into(),
            serde_json::to_vec(&valid).unwrap(),
            "",
            415,
        ),
        (
            "oversize body",
            Method::POST,
            "/v1/pipes".into(),
            vec![b' '; MAX_BODY + 1],
            "application/json",
            413,
        ),
        json_case("array body", "/v1/pipes", json!([valid.clone()]), 422),
        json_case(
            "name is a number",
            "/v1/pipes",
            with("/name", json!(42)),
            422,
        ),
        json_case("name is null", "/v1/pipes", with("/name", Value::Null), 422),
        json_case("missing name", "/v1/pipes", without("", "name"), 422),
        json_case("missing source", "/v1/pipes", without("", "source"), 422),
        json_case(
            "missing destination table",
            "/v1/pipes",
            without("/destination", "table"),
            422,
        ),
        json_case(
            "unknown top-level field",
            "/v1/pipes",
            with("/sauce", json!(1)),
            422,
        ),
        json_case(
            "unknown nested field",
            "/v1/pipes",
            with("/source/kafka/credentials/pasword", json!("x")),
            422,
        ),
        json_case(
            "unknown source kind",
            "/v1/pipes",
            with("/source", json!({"pulsar": {}})),
            422,
        ),
        json_case(
            "two source kinds",
            "/v1/pipes",
            with(
                "/source",
                json!({"kafka": valid["source"]["kafka"].clone(), "kinesis": {}}),
            ),
            422,
        ),
        json_case(
            "unknown authentication",
            "/v1/pipes",
            with("/source/kafka/authentication", json!("KERBEROS")),
            422,
        ),
        json_case(
            "unknown offset strategy",
            "/v1/pipes",
            with(
                "/source/kafka/offset",
                json!({"strategy": "from_yesterday"}),
            ),
            422,
        ),
        json_case(
            "unknown engine",
            "/v1/pipes",
            with("/destination/tableDefinition/engine", json!("InnoDB")),
            422,
        ),
        json_case(
            "replicas 0",
            "/v1/pipes",
            with("/scaling", json!({"replicas": 0})),
            422,
        ),
        json_case(
            "replicas 11",
            "/v1/pipes",
            with("/scaling", json!({"replicas": 11})),
            422,
        ),
        json_case(
            "replicas negative",
            "/v1/pipes",
            with("/scaling", json!({"replicas": -1})),
            422,
        ),
        json_case(
            "replicas huge",
            "/v1/pipes",
            with("/scaling", json!({"replicas": 1e300})),
            422,
        ),
        json_case(
            "replicas as string",
            "/v1/pipes",
            with("/scaling", json!({"replicas": "3"})),
            422,
        ),
        json_case(
            "unknown replica size",
            "/v1/pipes",
            with("/scaling", json!({"replicaSize": "XXL"})),
            422,
        ),
        json_case(
            "insert wait too short",
            "/v1/pipes",
            with("/settings", json!({"streaming_max_insert_wait_ms": 100})),
            422,
        ),
        json_case(
            "unknown setting",
            "/v1/pipes",
            with("/settings", json!({"max_insert_rowz": 5})),
            422,
        ),
        json_case(
            "sql in name",
            "/v1/pipes",
            with("/name", json!("x'); DROP TABLE pipes; --")),
            422,
        ),
        json_case(
            "shell in name",
            "/v1/pipes",
            with("/name", json!("$(rm -rf /) `id` | tee")),
            422,
        ),
        json_case(
            "sql in table",
            "/v1/pipes",
            with("/destination/table", json!("t; DROP TABLE x")),
            422,
        ),
        json_case(
            "sql in column type",
            "/v1/pipes",
            with(
                "/destination/columns/0/type",
                json!("UInt64) ENGINE=Log; --"),
            ),
            422,
        ),
        json_case(
            "huge topic list",
            "/v1/pipes",
            with("/source/kafka/topics", json!(topics)),
            422,
        ),
        json_case(
            "bad broker",
            "/v1/pipes",
            with("/source/kafka/brokers", json!("kafka:notaport")),
            422,
        ),
        json_case(
            "missing sasl password",
            "/v1/pipes",
            with("/source/kafka/credentials", json!({"username": "u"})),
            422,
        ),
        json_case(
            "unknown destination",
            "/v1/pipes",
            with("/destination/destinationId", json!(Uuid::now_v7())),
            422,
        ),
        json_case(
            "destination id not a uuid",
            "/v1/pipes",
            with("/destination/destinationId", json!("42")),
            422,
        ),
        json_case(
            "timestamp not a date",
            "/v1/pipes",
            with(
                "/source/kafka/offset",
                json!({"strategy": "from_timestamp", "timestamp": "yesterday"}),
            ),
            422,
        ),
        json_case(
            "destination ftp url",
            "/v1/destinations",
            json!({"name": "x", "url": "ftp://h"}),
            422,
        ),
        json_case(
            "destination url with credentials",
            "/v1/destinations",
            json!({"name": "x", "url": "https://u:p@h"}),
            422,
        ),
        json_case(
            "destination password not a string",
            "/v1/destinations",
            json!({"name": "x", "url": "http://h", "password": 1}),
            422,
        ),
        json_case(
            "key with unknown role",
            "/v1/keys",
            json!({"name": "k", "role": "root"}),
            422,
        ),
        json_case(
            "key with shell name",
            "/v1/keys",
            json!({"name": "k;reboot", "role": "viewer"}),
            422,
        ),
        (
            "unknown state command",
            Method::PATCH,
            format!("{pipe_path}/state"),
            br#"{"command":"pause"}"#.to_vec(),
            "application/json",
            422,
        ),
        (
            "missing state command",
            Method::PATCH,
            format!("{pipe_path}/state"),
            b"{}".to_vec(),
            "application/json",
            422,
        ),
        (
            "patch with array",
            Method::PATCH,
            pipe_path.clone(),
            b"[]".to_vec(),
            "application/json",
            422,
        ),
        (
            "patch with unknown field",
            Method::PATCH,
            pipe_path.clone(),
            br#"{"colour":"red"}"#.to_vec(),
            "application/merge-patch+json",
            422,
        ),
        (
            "patch with wrong type",
            Method::PATCH,
            pipe_path.clone(),
            br#"{"fieldMappings":"all"}"#.to_vec(),
            "application/json",
            422,
        ),
        (
            "scaling patch out of range",
            Method::PATCH,
            format!("{pipe_path}/scaling"),
            br#"{"replicas":100}"#.to_vec(),
            "application/json",
            422,
        ),
        (
            "settings as array",
            Method::PUT,
            format!("{pipe_path}/settings"),
            b"[1,2]".to_vec(),
            "application/json",
            422,
        ),
        (
            "bad uuid in path",
            Method::GET,
            "/v1/pipes/not-a-uuid".into(),
            Vec::new(),
            "",
            400,
        ),
        (
            "sql in path",
            Method::GET,
            "/v1/pipes/1%27%20OR%201=1".into(),
            Vec::new(),
            "",
            400,
        ),
        (
            "bad cursor",
            Method::GET,
            "/v1/pipes?cursor=%%%".into(),
            Vec::new(),
            "",
            400,
        ),
        (
            "forged cursor",
            Method::GET,
            "/v1/pipes?cursor=bm90LWEtdXVpZA".into(),
            Vec::new(),
            "",
            400,
        ),
        (
            "limit zero",
            Method::GET,
            "/v1/pipes?limit=0".into(),
            Vec::new(),
            "",
            400,
        ),
        (
            "limit not a number",
            Method::GET,
            "/v1/pipes?limit=ten".into(),
            Vec::new(),
            "",
            400,
        ),
        (
            "unknown query parameter",
            Method::GET,
            "/v1/pipes?state=Running".into(),
            Vec::new(),
            "",
            400,
        ),
        (
            "unknown route",
            Method::GET,
            "/v1/pipelines".into(),
            Vec::new(),
            "",
            404,
        ),
        (
            "wrong method",
            Method::PUT,
            "/v1/pipes".into(),
            b"{}".to_vec(),
            "application/json",
            405,
        ),
        (
            "unknown pipe",
            Method::GET,
            format!("/v1/pipes/{}", Uuid::now_v7()),
            Vec::new(),
            "",
            404,
        ),
    ];
    assert!(cases.len() >= 25);
    for (name, method, path, body, content_type, status) in cases {
        let mut request = api.request(method, &path, &api.admin).body(body);
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let reply = api.send(request).await;
        assert_eq!(reply.status.as_u16(), status, "{name}: {}", reply.text);
        assert!(
            reply.is_problem(),
            "{name}: not a problem document: {} {}",
            reply.content_type,
            reply.text
        );
    }

    let reply = api
        .send(
            api.request(Method::PATCH, &pipe_path, &api.admin)
                .header("if-match", "garbage")
                .json(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.is_problem());

    // Field errors carry JSON Pointers into the body.
    let reply = api
        .call(
            Method::POST,
            "/v1/pipes",
            Some(with("/scaling", json!({"replicas": "3"}))),
        )
        .await;
    assert_eq!(reply.json()["errors"][0]["pointer"], "/scaling/replicas");
    // Nothing malformed got stored.
    let list = api.call(Method::GET, "/v1/pipes", None).await.json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

/// Secrets go in and never come out: not in any response, not in any log
/// line, not in clear in the database.
#[tokio::test]
async fn secrets_never_leave() {
    let api = TestApi::start().await;
    let destination_password = "dest-pw-3b8e1f";
    let destination = api.create_destination(destination_password).await;
    let kafka = api.create_pipe(kafka_pipe(&destination)).await;
    let kinesis = api.create_pipe(kinesis_pipe(&destination)).await;
    let mut mtls = kafka_pipe(&destination);
    mtls["source"]["kafka"]["authentication"] = json!("MUTUAL_TLS");
    mtls["source"]["kafka"]["credentials"] = json!({
        "certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "privateKey": "-----BEGIN PRIVATE KEY-----\nprivate-key-body-a7c2\n-----END PRIVATE KEY-----\n"
    });
    let mtls = api.create_pipe(mtls).await;
    let secrets = [
        destination_password,
        "kafka-pw-7f3a9c",
        "kinesis-secret-91b2e",
        "private-key-body-a7c2",
        "rotated-pw-55aa",
    ];

    let mut bodies = Vec::new();
    let patch = api
        .call(
            Method::PATCH,
            &format!("/v1/pipes/{}", kafka["id"].as_str().unwrap()),
            Some(json!({"source": {"kafka": {"credentials": {"password": "rotated-pw-55aa"}}}})),
        )
        .await;
    bodies.push(patch.text);
    let bad = api
        .call(Method::POST, "/v1/pipes", Some(json!({"name": "x", "source": {"kafka": {"credentials": {"password": "kafka-pw-7f3a9c"}}}})))
        .await;
    bodies.push(bad.text);
    for pipe in [&kafka, &kinesis, &mtls] {
        let path = format!("/v1/pipes/{}", pipe["id"].as_str().unwrap());
        for suffix in ["", "/status", "/settings", "/events"] {
            bodies.push(
                api.call(Method::GET, &format!("{path}{suffix}"), None)
                    .await
                    .text,
            );
        }
        bodies.push(
            api.call(
                Method::PATCH,
                &format!("{path}/scaling"),
                Some(json!({"replicas": 2})),
            )
            .await
            .text,
        );
        bodies.push(
            api.call(
                Method::PATCH,
                &format!("{path}/state"),
                Some(json!({"command": "start"})),
            )
            .await
            .text,
        );
    }
    let destination_path = format!("/v1/destinations/{destination}");
    bodies.push(api.call(Method::GET, &destination_path, None).await.text);
    bodies.push(api.call(Method::GET, "/v1/destinations", None).await.text);
    bodies.push(api.call(Method::GET, "/v1/pipes", None).await.text);
    bodies.push(
        api.call(Method::POST, &format!("{destination_path}/check"), None)
            .await
            .text,
    );
    bodies.push(
        api.call(
            Method::PATCH,
            &destination_path,
            Some(json!({"name": "renamed"})),
        )
        .await
        .text,
    );
    bodies.push(
        api.send(api.http.get(format!("{}/metrics", api.base)))
            .await
            .text,
    );

    for body in &bodies {
        for secret in secrets {
            assert!(
                !body.contains(secret),
                "a response contains {secret}: {body}"
            );
        }
    }
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(logs.contains("pipe created"), "logs are captured");
    for secret in secrets {
        assert!(!logs.contains(secret), "the log contains {secret}");
    }
    let stored: Vec<(String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT spec::text, secrets FROM pipes UNION ALL SELECT spec::text, secrets FROM destinations",
    )
    .fetch_all(api.store.pool())
    .await
    .unwrap();
    for (spec, sealed) in stored {
        let sealed = String::from_utf8_lossy(&sealed.unwrap_or_default()).into_owned();
        for secret in secrets {
            assert!(
                !spec.contains(secret) && !sealed.contains(secret),
                "{secret} stored in clear"
            );
        }
    }
    // The rotated password replaced the old one, sealed.
    let record = api
        .store
        .pipe(kafka["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let bag = record.secrets(&api.store).unwrap();
    let opened: Vec<(&str, &str)> = bag.iter().map(|(k, v)| (k, v.expose())).collect();
    assert_eq!(
        opened,
        [("source.kafka.credentials.password", "rotated-pw-55aa")]
    );
}

#[tokio::test]
async fn the_first_admin_key_is_created_once() {
    let db = TestDatabase::create().await;
    let store = Store::from_pool(db.pool().await, Cipher::from_key(&[7; 32]));
    store.migrate().await.unwrap();
    let first = bootstrap_admin_key(&store, None)
        .await
        .unwrap()
        .expect("an empty database gets a key");
    assert!(
        bootstrap_admin_key(&store, None).await.unwrap().is_none(),
        "only once"
    );
    let record = store.api_key(&first.id).await.unwrap().unwrap();
    assert_eq!(record.role, sluice_store::Role::Admin);
    assert_ne!(
        record.secret_hash,
        first.secret.as_bytes(),
        "only a hash is stored"
    );
    assert!(bootstrap_admin_key(&store, Some("not-a-key"))
        .await
        .is_err());
}

#[tokio::test]
async fn workers_are_listed_and_drained_by_an_admin() {
    let api = TestApi::start().await;
    let worker = uuid::Uuid::now_v7();
    api.store
        .heartbeat_worker(worker, "node-1", 2000, 8192)
        .await
        .unwrap();
    let viewer = api.create_key("viewer").await;
    let reply = api.call_as(&viewer, Method::GET, "/v1/workers", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let listed: Value = serde_json::from_str(&reply.text).unwrap();
    let me = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == worker.to_string())
        .expect("the worker is listed");
    assert_eq!(me["millicpu"], 2000);
    assert_eq!(me["usedMillicpu"], 0);
    assert_eq!(me["draining"], false);
    assert_eq!(me["replicas"], json!([]));

    let path = format!("/v1/workers/{worker}/drain");
    let developer = api.create_key("developer").await;
    let reply = api.call_as(&developer, Method::POST, &path, None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    let reply = api.call(Method::POST, &path, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let drained: Value = serde_json::from_str(&reply.text).unwrap();
    assert_eq!(drained["draining"], true);
    let unknown = format!("/v1/workers/{}/drain", uuid::Uuid::now_v7());
    let reply = api.call(Method::POST, &unknown, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    assert_eq!(reply.content_type, "application/problem+json");
    let reply = api
        .call(Method::POST, "/v1/workers/not-a-uuid/drain", None)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
}

/// The corpus of hostile key expressions (shared with the parser's own
/// tests): each is refused at create with a 422 on the field and the
/// character where it goes wrong; no pipe is stored, so nothing of it can
/// reach ClickHouse.
#[tokio::test]
async fn hostile_key_expressions_are_refused_with_a_pointer() {
    let api = TestApi::start().await;
    let destination = api.create_destination("pw").await;
    let corpus: Vec<String> = serde_json::from_str(include_str!(
        "../../../crates/clickhouse-types/src/expr/hostile.json"
    ))
    .unwrap();
    assert!(corpus.len() >= 40);
    for (field, expression) in corpus
        .iter()
        .flat_map(|e| [("partitionBy", e), ("primaryKey", e)])
    {
        let mut pipe = kafka_pipe(&destination);
        pipe["destination"]["tableDefinition"][field] = json!(expression);
        let reply = api.call(Method::POST, "/v1/pipes", Some(pipe)).await;
        assert_eq!(reply.status, 422, "{field} {expression:?}: {}", reply.text);
        let problem = reply.json();
        assert_eq!(
            problem["type"], "https://sluice.dev/problems/validation-failed",
            "{}",
            reply.text
        );
        let pointer = format!("/destination/tableDefinition/{field}");
        let error = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["pointer"] == pointer.as_str())
            .unwrap_or_else(|| panic!("no error on {pointer} for {expression:?}: {}", reply.text));
        let detail = error["detail"].as_str().unwrap();
        assert!(
            detail.contains("at character") || detail.contains("is empty"),
            "{expression:?}: {detail}"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM pipes")
        .fetch_one(api.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "no refused pipe was stored");

    // A misspelled type and a key over an undeclared column, both pointed at.
    let mut pipe = kafka_pipe(&destination);
    pipe["destination"]["columns"][1]["type"] = json!("Strng");
    pipe["destination"]["tableDefinition"]["partitionBy"] = json!("toYYYYMM(created)");
    let reply = api.call(Method::POST, "/v1/pipes", Some(pipe)).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    let errors = reply.json()["errors"].clone();
    assert!(
        errors
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["pointer"] == "/destination/columns/1/type"
                && e["detail"]
                    .as_str()
                    .unwrap()
                    .contains("`Strng` is not a ClickHouse type")),
        "{errors}"
    );
    assert!(
        errors.as_array().unwrap().iter().any(|e| e["pointer"]
            == "/destination/tableDefinition/partitionBy"
            && e["detail"]
                .as_str()
                .unwrap()
                .contains("`created` is not one of the table's columns")),
        "{errors}"
    );

    // What users write is accepted and stored as written.
    let mut pipe = kafka_pipe(&destination);
    pipe["destination"]["tableDefinition"]["partitionBy"] = json!("intDiv(id, 1000000)");
    let created = api.create_pipe(pipe).await;
    assert_eq!(
        created["destination"]["tableDefinition"]["partitionBy"],
        "intDiv(id, 1000000)"
    );
}

/// A stored secret is only ever sent to the endpoint it was given for:
/// moving a destination or a source elsewhere without sending the secret
/// again is refused, and the refused URL is never contacted.
#[tokio::test]
async fn secrets_stay_bound_to_their_endpoint() {
    let api = TestApi::start().await;
    let destination = api.create_destination("dest-pw").await;
    let path = format!("/v1/destinations/{destination}");
    // Where the password would have gone.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_url = format!("http://{}", trap.local_addr().unwrap());

    for patch in [
        json!({"url": trap_url}),
        json!({"username": "someone-else"}),
    ] {
        let reply = api.call(Method::PATCH, &path, Some(patch.clone())).await;
        assert_eq!(reply.status, 422, "{patch}: {}", reply.text);
        let problem = reply.json();
        assert_eq!(
            problem["type"],
            "https://sluice.dev/problems/secret-required"
        );
        assert_eq!(
            problem["errors"][0]["pointer"], "/password",
            "{}",
            reply.text
        );
    }
    let check = api.call(Method::POST, &format!("{path}/check"), None).await;
    assert_eq!(check.status, 200, "{}", check.text);
    assert!(
        matches!(trap.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the refused URL was contacted"
    );
    assert_eq!(
        api.call(Method::GET, &path, None).await.json()["url"],
        clickhouse_url(),
        "the destination did not move"
    );
    // With the password sent again the move is an ordinary edit; renaming
    // needs nothing.
    let moved = api
        .call(
            Method::PATCH,
            &path,
            Some(json!({"url": trap_url, "password": "new-pw"})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let renamed = api
        .call(Method::PATCH, &path, Some(json!({"name": "renamed"})))
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let back = api
        .call(
            Method::PATCH,
            &path,
            Some(json!({"url": clickhouse_url(), "password": ""})),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.text);

    let kafka = api.create_pipe(kafka_pipe(&destination)).await;
    let kafka_path = format!("/v1/pipes/{}", kafka["id"].as_str().unwrap());
    // (Brokers are immutable on a pipe; the mechanism and user are not.)
    for patch in [
        json!({"source": {"kafka": {"authentication": "SCRAM-SHA-512"}}}),
        json!({"source": {"kafka": {"credentials": {"username": "other"}}}}),
    ] {
        let reply = api
            .call(Method::PATCH, &kafka_path, Some(patch.clone()))
            .await;
        assert_eq!(reply.status, 422, "{patch}: {}", reply.text);
        assert_eq!(
            reply.json()["errors"][0]["pointer"],
            "/source/kafka/credentials/password",
            "{}",
            reply.text
        );
    }
    let moved = api
        .call(
            Method::PATCH,
            &kafka_path,
            Some(json!({"source": {"kafka": {"authentication": "SCRAM-SHA-512", "credentials": {"password": "p2"}}}})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);

    let kinesis = api.create_pipe(kinesis_pipe(&destination)).await;
    let kinesis_path = format!("/v1/pipes/{}", kinesis["id"].as_str().unwrap());
    for patch in [
        json!({"source": {"kinesis": {"endpoint": trap_url}}}),
        json!({"source": {"kinesis": {"accessKey": {"accessKeyId": "AKIAOTHEREXAMPLE0000"}}}}),
    ] {
        let reply = api
            .call(Method::PATCH, &kinesis_path, Some(patch.clone()))
            .await;
        assert_eq!(reply.status, 422, "{patch}: {}", reply.text);
        assert_eq!(
            reply.json()["errors"][0]["pointer"],
            "/source/kinesis/accessKey/secretKey",
            "{}",
            reply.text
        );
    }

    // A schema registry's password only goes to the registry it was
    // given for, as the same user.
    let mut registry_pipe = kafka_pipe(&destination);
    registry_pipe["source"]["kafka"]["format"] = json!("AvroConfluent");
    registry_pipe["source"]["kafka"]["schemaRegistry"] = json!({
        "url": "http://127.0.0.1:8081", "authentication": "PLAIN",
        "credentials": {"username": "reader", "password": "registry-secret"}});
    let created = api.create_pipe(registry_pipe).await;
    assert!(
        !created.to_string().contains("registry-secret"),
        "{created}"
    );
    let registry_path = format!("/v1/pipes/{}", created["id"].as_str().unwrap());
    for patch in [
        json!({"source": {"kafka": {"schemaRegistry": {"url": trap_url}}}}),
        json!({"source": {"kafka": {"schemaRegistry": {"credentials": {"username": "other"}}}}}),
    ] {
        let reply = api
            .call(Method::PATCH, &registry_path, Some(patch.clone()))
            .await;
        assert_eq!(reply.status, 422, "{patch}: {}", reply.text);
        assert_eq!(
            reply.json()["errors"][0]["pointer"],
            "/source/kafka/schemaRegistry/credentials/password",
            "{}",
            reply.text
        );
    }
    let moved = api
        .call(
            Method::PATCH,
            &registry_path,
            Some(
                json!({"source": {"kafka": {"schemaRegistry": {"url": trap_url,
                "credentials": {"password": "registry-secret-2"}}}}}),
            ),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
}

/// Before an existing-table pipe exists, the destination is asked: the
/// table must be there and the destination's user must be able to insert
/// into it, so a pipe cannot name (and `/rows` cannot read) a table it
/// would not write. Column types the server lacks are refused with the
/// server's version.
#[tokio::test]
async fn pipes_are_checked_against_their_destination_at_create() {
    let api = TestApi::start().await;
    // The test server's user has no password.
    let destination = api.create_destination("").await;
    let existing = |database: Option<&str>, table: &str| {
        let mut pipe = json!({
            "name": "visits",
            "source": {"kafka": {"brokers": "127.0.0.1:9092", "topics": ["visits"]}},
            "destination": {"destinationId": destination, "table": table}
        });
        if let Some(database) = database {
            pipe["destination"]["database"] = json!(database);
        }
        pipe
    };
    api.create_pipe(existing(None, "visits")).await;

    for (database, table, expected) in [
        (None, "nope", "does not exist on the destination"),
        // Readable, and not a table a pipe could write.
        (
            Some("system"),
            "tables",
            "cannot insert into `system`.`tables`",
        ),
        (Some("system"), "one", "cannot insert into `system`.`one`"),
    ] {
        let reply = api
            .call(Method::POST, "/v1/pipes", Some(existing(database, table)))
            .await;
        assert_eq!(reply.status, 422, "{table}: {}", reply.text);
        let problem = reply.json();
        assert_eq!(
            problem["errors"][0]["pointer"], "/destination/table",
            "{}",
            reply.text
        );
        let detail = problem["errors"][0]["detail"].as_str().unwrap();
        assert!(detail.contains(expected), "{table}: {detail}");
    }

    // A type the server lacks (18.16 has no DateTime64), named with the
    // column and the server's version.
    let mut pipe = kafka_pipe(&destination);
    pipe["destination"]["columns"] = json!([
        {"name": "id", "type": "UInt64"},
        {"name": "at", "type": "Nullable(DateTime64(3))"}
    ]);
    let reply = api.call(Method::POST, "/v1/pipes", Some(pipe)).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    let error = &reply.json()["errors"][0];
    assert_eq!(error["pointer"], "/destination/columns/1/type");
    let detail = error["detail"].as_str().unwrap();
    assert!(
        detail.contains("column `at`") && detail.contains("DateTime64") && detail.contains("18.16"),
        "{detail}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM pipes")
        .fetch_one(api.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the pipe that passed was stored");
}

/// The egress policy: metadata and link-local addresses are refused by
/// default, and an address on SLUICE_EGRESS_DENY is never connected to —
/// not by a destination, a destination check, a source probe or a pipe.
#[tokio::test]
async fn denied_addresses_are_refused_before_any_connection() {
    // A listener on a loopback address the policy denies: if anything
    // connected, it would show here.
    let trap = std::net::TcpListener::bind("127.0.0.3:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let port = trap.local_addr().unwrap().port();
    let api = TestApi::start_with(|state| {
        state.with_egress(sluice_model::EgressPolicy::new("", "127.0.0.3, *.blocked.test").unwrap())
    })
    .await;
    let egress_denied = |reply: &Reply, pointer: &str| {
        assert_eq!(reply.status, 422, "{}", reply.text);
        let problem = reply.json();
        assert_eq!(
            problem["type"], "https://sluice.dev/problems/egress-denied",
            "{}",
            reply.text
        );
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{}", reply.text);
    };

    for url in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fe80::1]:8123".to_owned(),
        "http://metadata.google.internal/".to_owned(),
        format!("http://127.0.0.3:{port}"),
        "http://ch.blocked.test:8123".to_owned(),
    ] {
        let reply = api
            .call(
                Method::POST,
                "/v1/destinations",
                Some(json!({"name": "x", "url": url})),
            )
            .await;
        egress_denied(&reply, "/url");
    }
    let destination = api.create_destination("").await;
    let moved = api
        .call(
            Method::PATCH,
            &format!("/v1/destinations/{destination}"),
            Some(json!({"url": format!("http://127.0.0.3:{port}"), "password": ""})),
        )
        .await;
    egress_denied(&moved, "/url");

    let brokers = format!("127.0.0.3:{port}");
    for path in [
        "/v1/sources/check",
        "/v1/sources/topics",
        "/v1/sources/sample",
    ] {
        let reply = api
            .call(
                Method::POST,
                path,
                Some(json!({"source": {"kafka": {"brokers": brokers, "topics": ["t"]}}})),
            )
            .await;
        egress_denied(&reply, "/source/kafka/brokers");
    }
    let reply = api
        .call(
            Method::POST,
            "/v1/sources/streams",
            Some(json!({"source": {"kinesis": {
                "streamName": "s",
                "region": "us-east-1",
                "endpoint": "http://169.254.169.254",
                "accessKey": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretKey": "s"}
            }}})),
        )
        .await;
    egress_denied(&reply, "/source/kinesis/endpoint");
    let mut pipe = kafka_pipe(&destination);
    pipe["source"]["kafka"]["brokers"] = json!(brokers);
    let reply = api.call(Method::POST, "/v1/pipes", Some(pipe)).await;
    egress_denied(&reply, "/source/kafka/brokers");

    // Probes validate their input as pipes do.
    let reply = api
        .call(
            Method::POST,
            "/v1/sources/check",
            Some(json!({"source": {"kafka": {"brokers": "no port here", "topics": []}}})),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(
        reply.json()["errors"][0]["pointer"],
        "/source/kafka/brokers",
        "{}",
        reply.text
    );

    assert!(
        matches!(trap.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a denied address was connected to"
    );
}

/// A browser is never asked for a password by the API (no Basic
/// challenge), every response carries the framing, script and referrer
/// rules, and `/metrics` can be made to need a key.
#[tokio::test]
async fn browser_hardening_and_a_metrics_key() {
    let api = TestApi::start().await;
    let anonymous = api
        .send(api.http.get(format!("{}/v1/pipes", api.base)))
        .await;
    assert_eq!(anonymous.status, 401);
    let response = api
        .http
        .get(format!("{}/v1/pipes", api.base))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("www-authenticate"), r#"Bearer realm="sluice""#);
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(header("content-security-policy").contains("script-src 'self'"));
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-content-type-options"), "nosniff");
    // Basic credentials still work without a challenge.
    let basic = api
        .send(
            api.http
                .get(format!("{}/v1/pipes", api.base))
                .basic_auth("nobody", Some("wrong")),
        )
        .await;
    assert_eq!(basic.status, 401);

    let open = api
        .send(api.http.get(format!("{}/metrics", api.base)))
        .await;
    assert_eq!(open.status, 200, "metrics are open by default");
    let closed = TestApi::start_with(|mut state| {
        state.metrics_require_key = true;
        state
    })
    .await;
    let refused = closed
        .send(closed.http.get(format!("{}/metrics", closed.base)))
        .await;
    assert_eq!(refused.status, 401);
    let viewer = closed.create_key("viewer").await;
    let allowed = closed
        .send(
            closed
                .http
                .get(format!("{}/metrics", closed.base))
                .bearer_auth(viewer),
        )
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
}
