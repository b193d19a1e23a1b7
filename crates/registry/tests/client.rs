//! The client against the test registry (test scaffolding in
//! `sluice-testkit`: the documented REST subset, basic auth), one that is
//! down, and one that is not there.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sluice_formats::{RegisteredSchema, SchemaSource};
use sluice_model::format::Pinned;
use sluice_registry::{Registry, RegistryConfig, RegistryError};
use sluice_testkit::registry::TestRegistry;

const ORDER_V1: &str =
    r#"{"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]}"#;
const ORDER_V2: &str = r#"{"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}, {"name": "note", "type": ["null", "string"], "default": null}]}"#;
const COMMON: &str = "syntax = \"proto3\";\npackage common;\nmessage Money { int64 cents = 1; }\n";
const ORDER_PROTO: &str = "syntax = \"proto3\";\npackage shop;\nimport \"common.proto\";\nimport \"google/protobuf/timestamp.proto\";\nmessage Order { int64 id = 1; common.Money total = 2; google.protobuf.Timestamp at = 3; }\n";

async fn register(registry: &TestRegistry, subject: &str, body: serde_json::Value) -> u32 {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/subjects/{subject}/versions", registry.url))
        .basic_auth("reader", Some("s3cret"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["id"].as_u64().unwrap() as u32
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
    let served = TestRegistry::start(Some(("reader", "s3cret"))).await;
    let v1 = register(&served, "orders-value", json!({"schema": ORDER_V1})).await;
    let v2 = register(&served, "orders-value", json!({"schema": ORDER_V2})).await;
    let registry = Arc::new(Registry::new(config(&served.url)).unwrap());
    registry.schema_by_id(v1).await.expect("v1");
    registry.schema_by_id(v1).await.expect("v1 again");
    // The decoder's synchronous path, from inside the runtime.
    let from_decoder = registry.clone();
    tokio::task::spawn(async move { from_decoder.schema(v1).map(|_| ()) })
        .await
        .unwrap()
        .expect("v1 through SchemaSource");
    assert_eq!(
        served.state.schema_reads.load(Ordering::SeqCst),
        1,
        "one request per id"
    );

    match registry.schema_by_id(99).await {
        Err(RegistryError::NotFound { what, body }) => {
            assert_eq!(what, "schema id 99");
            assert!(body.contains("Schema not found"), "{body}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let unknown = registry.clone();
    let error = tokio::task::spawn(async move { unknown.schema(99).map(|_| ()) })
        .await
        .unwrap()
        .unwrap_err();
    assert!(!error.transient, "an unknown id is the record's problem");

    // Subject versions pin a schema: by number, or the latest.
    let pinned = |version| Pinned::Subject {
        subject: "orders-value".into(),
        version,
    };
    let (id, _) = registry.pinned(&pinned(Some(1))).await.unwrap().unwrap();
    assert_eq!(id, v1);
    let (id, _) = registry.pinned(&pinned(None)).await.unwrap().unwrap();
    assert_eq!(id, v2);
    assert!(matches!(
        registry.pinned(&pinned(Some(7))).await,
        Err(RegistryError::NotFound { .. })
    ));
    assert!(registry.pinned(&Pinned::Nothing).await.unwrap().is_none());

    let bad = register(&served, "bad-value", json!({"schema": "{not avro"})).await;
    assert!(matches!(
        registry.schema_by_id(bad).await,
        Err(RegistryError::Invalid { .. })
    ));
    let json_schema = register(
        &served,
        "json-value",
        json!({"schema": "{}", "schemaType": "JSON"}),
    )
    .await;
    match registry.schema_by_id(json_schema).await {
        Err(RegistryError::Invalid { reason, .. }) => assert!(reason.contains("JSON"), "{reason}"),
        other => panic!("{:?}", other.map(|_| ())),
    }

    // Wrong credentials fail every record alike: the pipe waits.
    let mut wrong = config(&served.url);
    wrong.password = Some("nope".into());
    let refused = Registry::new(wrong).unwrap();
    match refused.schema_by_id(v1).await {
        Err(RegistryError::Unreachable { reason, .. }) => {
            assert!(reason.contains("401"), "{reason}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// A Protobuf schema's imports are references to other subjects; the
/// client fetches them and compiles the file with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_schemas_come_with_their_references() {
    let served = TestRegistry::start(Some(("reader", "s3cret"))).await;
    register(
        &served,
        "common.proto",
        json!({"schema": COMMON, "schemaType": "PROTOBUF"}),
    )
    .await;
    let id = register(
        &served,
        "orders-value",
        json!({"schema": ORDER_PROTO, "schemaType": "PROTOBUF",
               "references": [{"name": "common.proto", "subject": "common.proto", "version": 1}]}),
    )
    .await;
    let registry = Registry::new(config(&served.url)).unwrap();
    let schema = registry
        .schema_by_id(id)
        .await
        .expect("the Protobuf schema");
    let RegisteredSchema::Protobuf(proto) = schema.as_ref() else {
        panic!("not read as Protobuf");
    };
    let order = proto.message_at(&[0]).expect("the first message");
    assert_eq!(order.full_name(), "shop.Order");
    assert_eq!(
        order
            .get_field_by_name("total")
            .unwrap()
            .kind()
            .as_message()
            .unwrap()
            .full_name(),
        "common.Money"
    );

    let missing = register(
        &served,
        "broken-value",
        json!({"schema": ORDER_PROTO, "schemaType": "PROTOBUF",
               "references": [{"name": "common.proto", "subject": "nowhere", "version": 1}]}),
    )
    .await;
    match registry.schema_by_id(missing).await {
        Err(RegistryError::NotFound { what, .. }) => assert!(what.contains("nowhere"), "{what}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// A registry that answers 503 (down behind its load balancer) or not at
/// all is a transient error: retried, then the decoder's record error is
/// SCHEMA_UNAVAILABLE, never an error row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_is_a_retryable_error() {
    let served = TestRegistry::start(None).await;
    let id = register(&served, "orders-value", json!({"schema": ORDER_V1})).await;
    served.state.down.store(true, Ordering::SeqCst);
    let registry = Arc::new(Registry::new(RegistryConfig::new(&served.url)).unwrap());
    let down = registry.clone();
    let error = tokio::task::spawn(async move { down.schema(id).map(|_| ()) })
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.transient, "{error}");
    assert!(error.message.contains("503"), "{error}");
    served.state.down.store(false, Ordering::SeqCst);
    registry
        .schema_by_id(id)
        .await
        .expect("read once it is back");

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

#[tokio::test]
async fn the_egress_policy_is_checked_before_dialling() {
    let mut denied = RegistryConfig::new("http://127.0.0.1:1");
    denied.egress = Some(Arc::new(
        sluice_model::EgressPolicy::new("", "127.0.0.0/8").unwrap(),
    ));
    match Registry::new(denied) {
        Err(RegistryError::Config(reason)) => assert!(reason.contains("127.0.0.1"), "{reason}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}
