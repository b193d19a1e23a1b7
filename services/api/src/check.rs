//! `POST /v1/destinations/{id}/check`: connects to ClickHouse as a pipe
//! would and reports the server version or exactly what went wrong.

use std::time::{Duration, Instant};

use sluice_model::{DestinationSpec, Secret};

use crate::views::DestinationCheck;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ERROR_CHARS: usize = 2000;

pub async fn check_clickhouse(
    spec: &DestinationSpec,
    password: Option<&Secret>,
) -> DestinationCheck {
    let started = Instant::now();
    let outcome = query_version(spec, password).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(version) => DestinationCheck {
            ok: true,
            server_version: Some(version),
            error: None,
            latency_ms,
        },
        Err(error) => DestinationCheck {
            ok: false,
            server_version: None,
            error: Some(truncate(error, password)),
            latency_ms,
        },
    }
}

async fn query_version(
    spec: &DestinationSpec,
    password: Option<&Secret>,
) -> Result<String, String> {
    let mut client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT / 2)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = &spec.ca_certificate {
        let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| format!("the CA certificate cannot be read: {}", chain(&e)))?;
        for certificate in certificates {
            client = client.add_root_certificate(certificate);
        }
    }
    let client = client
        .build()
        .map_err(|e| format!("cannot set up an HTTP client: {}", chain(&e)))?;
    let response = client
        .get(&spec.url)
        .query(&[
            ("query", "SELECT version()"),
            ("database", spec.database.as_str()),
        ])
        .basic_auth(&spec.username, password.map(Secret::expose))
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {}", spec.url, chain(&e)))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("reading the answer failed: {}", chain(&e)))?;
    if status.is_success() {
        let version = body.trim();
        if version.is_empty() || version.len() > 64 || version.contains(char::is_whitespace) {
            return Err(format!(
                "the server at {} answered HTTP {status} but not with a ClickHouse version; is this ClickHouse's HTTP interface?",
                spec.url
            ));
        }
        Ok(version.to_owned())
    } else {
        Err(format!(
            "ClickHouse answered HTTP {status}: {}",
            body.trim()
        ))
    }
}

/// reqwest's top-level messages are vague ("error sending request"); the
/// cause chain holds the useful part (connection refused, certificate
/// unknown, ...).
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Bounds the message and, defensively, blanks the password should a server
/// ever echo it back.
fn truncate(mut message: String, password: Option<&Secret>) -> String {
    if let Some(secret) = password.map(Secret::expose).filter(|s| s.len() >= 4) {
        message = message.replace(secret, "***");
    }
    if message.chars().count() > MAX_ERROR_CHARS {
        message = message.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
    }
    message
}
