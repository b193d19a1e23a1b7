//! Transport security against the real servers: ClickHouse 18.16 over its
//! HTTPS port, and Kafka (tansu) over TLS with SCRAM users, each with a
//! certificate from the test stack's own CA (scripts/stack.sh,
//! `make_test_ca`). tansu 0.6 offers SCRAM-SHA-256 and SCRAM-SHA-512 (it
//! answers PLAIN with NoSharedMechanism) and no client certificates, so
//! PLAIN and mutual TLS are not exercised here.

use std::time::Duration;

use serde_json::json;
use sluice_e2e::{
    create_topic, create_topic_on, eventually, produce, producer, producer_for, ClickHouse,
    OwnBroker, Services,
};

fn https_url() -> String {
    std::env::var("SLUICE_TEST_CLICKHOUSE_HTTPS_URL")
        .expect("SLUICE_TEST_CLICKHOUSE_HTTPS_URL is not set: run the tests with `make test`")
}

fn test_ca() -> String {
    let dir = std::env::var("SLUICE_TEST_TLS_DIR")
        .expect("SLUICE_TEST_TLS_DIR is not set: run the tests with `make test`");
    std::fs::read_to_string(format!("{dir}/ca.crt")).expect("the test CA")
}

/// With the CA certificate, the check, table browsing, a pipe's rows and
/// its error rows all go over HTTPS; without it, the check and the pipe
/// name the certificate problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_over_https_with_a_private_ca() {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let create = |ca: Option<String>| {
        let mut destination = json!({
            "name": if ca.is_some() { "https with CA" } else { "https without CA" },
            "url": https_url(),
            "database": clickhouse.database,
        });
        if let Some(ca) = ca {
            destination["caCertificate"] = json!(ca);
        }
        destination
    };
    let (status, trusted) = services
        .call(
            reqwest::Method::POST,
            "/v1/destinations",
            Some(create(Some(test_ca()))),
        )
        .await;
    assert_eq!(status, 201, "{trusted}");
    let trusted = trusted["id"].as_str().unwrap().to_owned();
    let (status, untrusted) = services
        .call(
            reqwest::Method::POST,
            "/v1/destinations",
            Some(create(None)),
        )
        .await;
    assert_eq!(status, 201, "{untrusted}");
    let untrusted = untrusted["id"].as_str().unwrap().to_owned();

    let (_, check) = services
        .call(
            reqwest::Method::POST,
            &format!("/v1/destinations/{trusted}/check"),
            None,
        )
        .await;
    assert_eq!(check["ok"], true, "{check}");
    assert!(
        check["serverVersion"]
            .as_str()
            .unwrap()
            .starts_with("18.16"),
        "{check}"
    );
    let (_, check) = services
        .call(
            reqwest::Method::POST,
            &format!("/v1/destinations/{untrusted}/check"),
            None,
        )
        .await;
    assert_eq!(check["ok"], false, "{check}");
    let error = check["error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("certificate"), "{error}");

    let (status, databases) = services
        .call(
            reqwest::Method::GET,
            &format!("/v1/destinations/{trusted}/databases"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{databases}");
    assert!(databases["databases"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d == clickhouse.database.as_str()));

    let topic = format!("https-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 1).await;
    let mut messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..500)
        .map(|i| {
            (
                None,
                json!({"id": i, "payload": "over TLS"})
                    .to_string()
                    .into_bytes(),
            )
        })
        .collect();
    messages.push((None, b"not json".to_vec()));
    produce(&producer(), &topic, &messages);
    let pipe = |destination: &str, table: &str| {
        json!({
            "name": format!("https {table}"),
            "source": {"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": [topic], "offset": {"strategy": "from_beginning"}}},
            "destination": {
                "destinationId": destination,
                "table": table,
                "managedTable": true,
                "tableDefinition": {"sortingKey": ["id"]},
                "columns": [{"name": "id", "type": "UInt64"}, {"name": "payload", "type": "String"}]
            },
            "settings": {"streaming_max_insert_wait_ms": 500}
        })
    };
    let good = services.create_and_start(pipe(&trusted, "events")).await;
    eventually("every row over HTTPS", Duration::from_secs(90), || async {
        clickhouse.landed("events").await == (500, 500)
    })
    .await;
    eventually(
        "the error row over HTTPS",
        Duration::from_secs(30),
        || async { clickhouse.count("events_sluice_errors").await == 1 },
    )
    .await;
    eventually(
        "the pipe to be Running",
        Duration::from_secs(30),
        || async { services.status(&good).await["state"] == "Running" },
    )
    .await;

    let bad = services.create_and_start(pipe(&untrusted, "refused")).await;
    let reason = || async {
        services.status(&bad).await["lastError"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
    };
    eventually(
        "the pipe to name the certificate",
        Duration::from_secs(60),
        || async { reason().await.contains("certificate") },
    )
    .await;
    assert_eq!(
        clickhouse.count("refused").await,
        0,
        "nothing reached the table"
    );
}

fn numbered(range: std::ops::Range<usize>) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    range
        .map(|i| {
            (
                Some(i.to_string().into_bytes()),
                json!({"id": i, "payload": "secured"})
                    .to_string()
                    .into_bytes(),
            )
        })
        .collect()
}

/// Kafka over TLS, with and without SCRAM users: the right credentials and
/// the CA land every row, through *Test connection* and through a pipe; a
/// wrong password and an untrusted certificate are refused with the reason,
/// and such a pipe turns Failed saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_over_tls_with_scram_users() {
    let topic = format!("secured-{}", uuid::Uuid::new_v4().simple());
    let mut sasl = OwnBroker::start().await;
    create_topic_on(&sasl.brokers, &topic, 2).await;
    produce(&producer_for(&sasl.brokers), &topic, &numbered(0..300));
    sasl.create_user("user256", "pw-256-c1", "scram256");
    sasl.create_user("user512", "pw-512-c2", "scram512");
    // Restarted on the same storage: the users and messages survive.
    sasl.restart(true, true).await;
    let mut tls_only = OwnBroker::start().await;
    create_topic_on(&tls_only.brokers, &topic, 1).await;
    produce(&producer_for(&tls_only.brokers), &topic, &numbered(0..300));
    tls_only.restart(true, false).await;

    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let destination = services.create_destination(&clickhouse).await;
    let ca = test_ca();
    let source = |brokers: &str, auth: Option<(&str, &str, &str)>, trusted: bool| {
        let mut kafka = json!({"brokers": brokers, "topics": [topic], "offset": {"strategy": "from_beginning"}});
        if let Some((mechanism, user, password)) = auth {
            kafka["authentication"] = json!(mechanism);
            kafka["credentials"] = json!({"username": user, "password": password});
        }
        if trusted {
            kafka["caCertificate"] = json!(ca);
        }
        json!({"kafka": kafka})
    };
    let check = |source: serde_json::Value| {
        let services = &services;
        async move {
            let (status, body) = services
                .call(
                    reqwest::Method::POST,
                    "/v1/sources/check",
                    Some(json!({"source": source})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let sha256 = Some(("SCRAM-SHA-256", "user256", "pw-256-c1"));
    let sha512 = Some(("SCRAM-SHA-512", "user512", "pw-512-c2"));
    let wrong = Some(("SCRAM-SHA-256", "user256", "not-the-password"));

    for good in [
        source(&sasl.brokers, sha256, true),
        source(&sasl.brokers, sha512, true),
        source(&tls_only.brokers, None, true),
    ] {
        let result = check(good.clone()).await;
        assert_eq!(result["ok"], true, "{good}: {result}");
    }
    let refused = check(source(&sasl.brokers, wrong, true)).await;
    assert_eq!(refused["ok"], false, "{refused}");
    let reason = refused["error"].as_str().unwrap().to_lowercase();
    assert!(reason.contains("auth"), "{reason}");
    // TLS is on whenever SASL is: without the CA the certificate fails.
    let untrusted = check(source(&sasl.brokers, sha256, false)).await;
    assert_eq!(untrusted["ok"], false, "{untrusted}");
    let reason = untrusted["error"].as_str().unwrap().to_lowercase();
    assert!(
        reason.contains("certificate") || reason.contains("ssl"),
        "{reason}"
    );

    let pipe = |name: &str, source: serde_json::Value| {
        json!({
            "name": name,
            "source": source,
            "destination": {
                "destinationId": destination,
                "table": name,
                "managedTable": true,
                "tableDefinition": {"sortingKey": ["id"]},
                "columns": [{"name": "id", "type": "UInt64"}, {"name": "payload", "type": "String"}]
            },
            "settings": {"streaming_max_insert_wait_ms": 500}
        })
    };
    services
        .create_and_start(pipe("scram256", source(&sasl.brokers, sha256, true)))
        .await;
    services
        .create_and_start(pipe("scram512", source(&sasl.brokers, sha512, true)))
        .await;
    services
        .create_and_start(pipe("tls_only", source(&tls_only.brokers, None, true)))
        .await;
    for table in ["scram256", "scram512", "tls_only"] {
        eventually(
            &format!("every row of {table}"),
            Duration::from_secs(120),
            || async { clickhouse.landed(table).await == (300, 300) },
        )
        .await;
    }

    for (name, source, expected) in [
        ("wrong_password", source(&sasl.brokers, wrong, true), "auth"),
        (
            "untrusted",
            source(&sasl.brokers, sha256, false),
            "certificate",
        ),
    ] {
        let id = services.create_and_start(pipe(name, source)).await;
        eventually(
            &format!("{name} to fail"),
            Duration::from_secs(90),
            || async { services.status(&id).await["state"] == "Failed" },
        )
        .await;
        let status = services.status(&id).await;
        let reason = status["lastError"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(reason.contains(expected), "{name}: {status}");
        assert_eq!(clickhouse.count(name).await, 0, "{name}: nothing landed");
    }
}
