//! The checked-in OpenAPI document must be what the code generates.
//! Regenerate with `make openapi`.

use std::path::PathBuf;

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/openapi.json")
}

#[test]
fn checked_in_openapi_matches_the_code() {
    let generated = sluice_api::openapi_json();
    let path = checked_in_path();
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is out of date with the code; run `make openapi` and commit the result",
        path.display()
    );
}

#[test]
fn every_endpoint_is_documented_with_errors() {
    let doc: serde_json::Value = serde_json::from_str(&sluice_api::openapi_json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let expected = [
        ("/v1/destinations", &["get", "post"][..]),
        ("/v1/destinations/{id}", &["get", "patch", "delete"]),
        ("/v1/destinations/{id}/check", &["post"]),
        ("/v1/pipes", &["get", "post"]),
        ("/v1/pipes/{id}", &["get", "patch", "delete"]),
        ("/v1/pipes/{id}/state", &["patch"]),
        ("/v1/pipes/{id}/scaling", &["patch"]),
        ("/v1/pipes/{id}/settings", &["get", "put"]),
        ("/v1/pipes/{id}/status", &["get"]),
        ("/v1/pipes/{id}/events", &["get"]),
        ("/v1/pipes/{id}/metrics", &["get"]),
        ("/v1/keys", &["get", "post"]),
        ("/v1/keys/{id}", &["delete"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
    ];
    for (path, methods) in expected {
        for method in methods {
            let operation = &doc["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} is not documented");
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} has no success response"
            );
            if path.starts_with("/v1/") {
                for status in ["401", "403", "500"] {
                    let problem = &responses[status]["content"]["application/problem+json"];
                    assert!(
                        problem.is_object(),
                        "{method} {path} lacks a {status} problem response"
                    );
                }
                if *method != "get" && *method != "delete" && !path.ends_with("/check") {
                    let body = &operation["requestBody"]["content"];
                    assert!(
                        body.is_object(),
                        "{method} {path} has no request body schema"
                    );
                    assert!(responses.contains_key("422"), "{method} {path} lacks 422");
                }
            }
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "PipeSpec",
        "Pipe",
        "PipeStatus",
        "Problem",
        "DestinationSpec",
        "Scaling",
        "PipeSettings",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
}
