//! `POST /v1/destinations/{id}/check`: connects to ClickHouse as a pipe
//! would and reports the server version or exactly what went wrong.

use std::time::{Duration, Instant};

use sluice_clickhouse::{Endpoint, Sink, SinkError};
use sluice_model::{DestinationSpec, Secret};

use crate::views::DestinationCheck;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ERROR_CHARS: usize = 2000;

pub async fn check_clickhouse(
    spec: &DestinationSpec,
    password: Option<&Secret>,
    egress: std::sync::Arc<sluice_model::EgressPolicy>,
) -> DestinationCheck {
    let started = Instant::now();
    let outcome = query_version(spec, egress).await;
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

/// The same client a pipe writes with (`Endpoint::of_destination`): what
/// passes here, CA certificate included, is what the workers will use.
async fn query_version(
    spec: &DestinationSpec,
    egress: std::sync::Arc<sluice_model::EgressPolicy>,
) -> Result<String, String> {
    let sink = Sink::with_timeout(&Endpoint::of_destination(spec, egress), TIMEOUT)
        .map_err(|e| e.to_string())?;
    match sink.version().await {
        Ok(version)
            if !version.is_empty()
                && version.len() <= 64
                && !version.contains(char::is_whitespace) =>
        {
            Ok(version)
        }
        Ok(_) => Err(format!(
            "the server at {} answered, but not with a ClickHouse version; is this ClickHouse's HTTP interface?",
            spec.url
        )),
        Err(SinkError::Unreachable(cause)) => Err(format!("cannot reach {}: {cause}", spec.url)),
        Err(SinkError::Server { code: 0, message }) => Err(format!(
            "the server at {} answered with an error that is not ClickHouse's; is this ClickHouse's HTTP interface? {message}",
            spec.url
        )),
        Err(SinkError::Server { message, .. }) => Err(format!("ClickHouse refused: {message}")),
        Err(e @ SinkError::Protocol(_)) => Err(e.to_string()),
    }
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
