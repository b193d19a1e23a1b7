//! The Sluice API as the provider uses it: JSON bodies shaped as the OpenAPI
//! document describes them (a test checks every field the provider sends
//! against `openapi/openapi.json`), problem+json errors kept whole so a
//! diagnostic can point at the attribute concerned.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the Sluice API at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// An RFC 9457 answer; `errors` are (JSON Pointer, detail).
    #[error("{title} (HTTP {status}): {detail}{}", fields(.errors))]
    Problem {
        status: u16,
        title: String,
        detail: String,
        errors: Vec<(String, String)>,
    },
}

fn fields(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(pointer, detail)| format!("\n  {pointer}: {detail}"))
        .collect()
}

#[derive(Clone)]
pub struct Client {
    endpoint: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(endpoint: &str, key_id: &str, key_secret: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!(
                "terraform-provider-sluice/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| ClientError::Unreachable {
                endpoint: endpoint.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Client {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            token: format!("{key_id}.{key_secret}"),
            http,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&Value, &str)>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.endpoint))
            .bearer_auth(&self.token);
        if let Some((body, content_type)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.to_string());
        }
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason: chain(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok((status, json));
        }
        Err(problem(status, &json, &text))
    }

    /// `None` for 404: the resource is gone (deleted outside Terraform).
    pub async fn get(&self, path: &str) -> Result<Option<Value>, ClientError> {
        match self.send(Method::GET, path, None).await {
            Ok((_, body)) => Ok(Some(body)),
            Err(ClientError::Problem { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        Ok(self
            .send(Method::POST, path, Some((body, "application/json")))
            .await?
            .1)
    }

    pub async fn merge_patch(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        Ok(self
            .send(
                Method::PATCH,
                path,
                Some((body, "application/merge-patch+json")),
            )
            .await?
            .1)
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        Ok(self
            .send(Method::PATCH, path, Some((body, "application/json")))
            .await?
            .1)
    }

    /// Deleting what is already gone succeeds.
    pub async fn delete(&self, path: &str) -> Result<StatusCode, ClientError> {
        match self.send(Method::DELETE, path, None).await {
            Ok((status, _)) => Ok(status),
            Err(ClientError::Problem { status: 404, .. }) => Ok(StatusCode::NOT_FOUND),
            Err(e) => Err(e),
        }
    }
}

fn problem(status: StatusCode, json: &Value, text: &str) -> ClientError {
    let string = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
    let errors = json
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e.get("pointer")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        e.get("detail")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ClientError::Problem {
        status: status.as_u16(),
        title: string("title").unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("Request failed")
                .to_owned()
        }),
        detail: string("detail").unwrap_or_else(|| text.trim().chars().take(500).collect()),
        errors,
    }
}

/// reqwest's own message is "error sending request"; the causes say
/// "connection refused" or "certificate unknown".
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_keep_their_field_errors() {
        let json = serde_json::json!({
            "type": "https://sluice.dev/problems/validation-failed",
            "title": "Validation failed",
            "status": 422,
            "detail": "the request has 2 invalid fields",
            "errors": [{"pointer": "/name", "detail": "must not be empty"}]
        });
        let error = problem(StatusCode::UNPROCESSABLE_ENTITY, &json, "");
        assert_eq!(
            error.to_string(),
            "Validation failed (HTTP 422): the request has 2 invalid fields\n  /name: must not be empty"
        );
    }

    #[test]
    fn a_plain_text_answer_is_still_explained() {
        let error = problem(StatusCode::BAD_GATEWAY, &Value::Null, "upstream down\n");
        assert_eq!(error.to_string(), "Bad Gateway (HTTP 502): upstream down");
    }
}
