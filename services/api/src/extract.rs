//! Extractors that turn every malformed request into a problem+json answer
//! (axum's own rejections are plain text) and give field paths for body
//! errors.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{header, request::Parts};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sluice_model::FieldError;
use utoipa::IntoParams;

use crate::problem::Problem;
use crate::AppState;

/// A JSON body: checked for content type and size, parsed with the path of
/// the first offending field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let bytes = read_json_body(req, state.max_body_bytes).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

async fn read_json_body(req: Request, limit: usize) -> Result<axum::body::Bytes, Problem> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !(essence == "application/json" || essence.ends_with("+json")) {
        return Err(Problem::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            format!(
                "send the body as application/json (got {:?})",
                if content_type.is_empty() {
                    "nothing"
                } else {
                    content_type
                }
            ),
        ));
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            Problem::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Body too large",
                format!("the request body exceeds {limit} bytes"),
            )
        })
}

/// Syntax errors (bad JSON, invalid UTF-8, too deep, trailing data) are 400;
/// well-formed JSON of the wrong shape (types, missing or unknown fields,
/// unknown enum values) is 422 with the field's JSON Pointer. Parsing to a
/// `Value` first keeps the two apart.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Eof => {
                Problem::malformed(format!("the body is not complete JSON: {e}"))
            }
            _ => Problem::malformed(format!("the body is not valid JSON: {e}")),
        })?;
    serde_path_to_error::deserialize(value).map_err(|error| {
        let pointer = pointer_of(error.path());
        Problem::validation(vec![FieldError {
            pointer,
            detail: error.into_inner().to_string(),
        }])
    })
}

/// Reads a JSON object for a merge patch (RFC 7396).
pub fn parse_object(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, Problem> {
    match parse_json::<serde_json::Value>(bytes)? {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(Problem::validation(vec![FieldError {
            pointer: String::new(),
            detail: "must be a JSON object".into(),
        }])),
    }
}

/// A merge-patch body, as raw JSON object.
pub struct PatchBody(pub serde_json::Map<String, serde_json::Value>);

impl FromRequest<AppState> for PatchBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let bytes = read_json_body(req, state.max_body_bytes).await?;
        parse_object(&bytes).map(PatchBody)
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => pointer.push_str(variant),
            Segment::Unknown => pointer.push('?'),
        }
    }
    if pointer == "/?" {
        pointer.clear();
    }
    pointer
}

/// A path parameter that must be a UUID.
pub struct IdPath(pub uuid::Uuid);

impl FromRequestParts<AppState> for IdPath {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Problem::invalid_parameter(e.body_text()))?;
        raw.parse()
            .map(IdPath)
            .map_err(|_| Problem::invalid_parameter(format!("`{raw}` is not an id (a UUID)")))
    }
}

/// Several path parameters (names, ids), with a problem+json 400 when one
/// does not parse (invalid percent-encoding, say).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|e| Problem::invalid_parameter(e.body_text()))
    }
}

/// Query parameters, with unknown ones refused.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or("");
        parse_query(query).map(ApiQuery)
    }
}

fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, Problem> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| Problem::invalid_parameter("the query string is malformed"))?,
    )
    .map(|q| q.0)
    .map_err(|e| Problem::invalid_parameter(e.body_text()))
}

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, Problem> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(n) => Err(Problem::invalid_parameter(format!(
                "limit must be between 1 and {MAX_PAGE} (got {n})"
            ))),
        }
    }

    /// Cursors are opaque to clients: base64url of the last item's key.
    pub fn cursor<C: std::str::FromStr>(&self) -> Result<Option<C>, Problem> {
        let Some(raw) = &self.cursor else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| Problem::invalid_parameter("cursor is not one this API returned"))
    }
}

pub fn encode_cursor(key: impl ToString) -> String {
    URL_SAFE_NO_PAD.encode(key.to_string())
}

/// `If-Match: "<version>"` for optimistic concurrency; absent means the
/// write applies to whatever is current.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        text.strip_prefix("W/")
            .unwrap_or(text)
            .trim_matches('"')
            .parse()
            .map(|v| IfMatch(Some(v)))
            .map_err(|_| {
                Problem::invalid_parameter(format!(
                    "If-Match must be an ETag this API returned, such as \"3\" (got {text:?})"
                ))
            })
    }
}

pub fn etag(version: i64) -> [(header::HeaderName, String); 1] {
    [(header::ETAG, format!("\"{version}\""))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        a: Vec<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u8,
    }

    #[test]
    fn body_errors_carry_pointers_and_statuses() {
        let p = parse_json::<Shape>(br#"{"a":[{"n":1},{"n":"x"}]}"#).unwrap_err();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors[0].pointer, "/a/1/n");
        let p = parse_json::<Shape>(br#"{"a":[],"b":1}"#).unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.errors[0].detail.contains("unknown field `b`"));
        let p = parse_json::<Shape>(br#"{"a":["#).unwrap_err();
        assert_eq!(p.status, 400);
        let p = parse_json::<Shape>(b"{\"a\":[]} trailing").unwrap_err();
        assert_eq!(p.status, 400);
        let p = parse_json::<Shape>(b"{\"a\xff\":[]}").unwrap_err();
        assert_eq!(p.status, 400);
        let deep = "[".repeat(10_000);
        let p = parse_json::<serde_json::Value>(deep.as_bytes()).unwrap_err();
        assert_eq!(p.status, 400);
    }
}
