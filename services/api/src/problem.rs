//! RFC 9457 problem details: every error the API returns has this shape,
//! with a stable `type` clients can switch on.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sluice_model::{FieldError, PipeState};
use sluice_store::StoreError;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";
const TYPE_BASE: &str = "https://sluice.dev/problems/";

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A stable URI naming the kind of problem, e.g.
    /// `https://sluice.dev/problems/validation-failed`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Field errors, each addressed by a JSON Pointer into the request body.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For invalid state transitions: the pipe's current state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_state: Option<PipeState>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: format!("{TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            current_state: None,
        }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [only] => format!("{}: {}", display_pointer(&only.pointer), only.detail),
            many => format!("the request has {} invalid fields", many.len()),
        };
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "Validation failed",
                detail,
            )
        }
    }

    pub fn immutable(errors: Vec<FieldError>) -> Self {
        let fields: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        let detail = format!(
            "{} cannot change on an existing pipe; create a new pipe instead",
            fields.join(", ")
        );
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "immutable-field",
                "Immutable field",
                detail,
            )
        }
    }

    /// An edit moved a secret's endpoint (or identity) without sending the
    /// secret again.
    pub fn secret_required(errors: Vec<FieldError>) -> Self {
        let fields: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        let detail = format!(
            "{} must be sent again: a stored secret is only ever sent to the endpoint it was given for",
            fields.join(", ")
        );
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "secret-required",
                "Secret required",
                detail,
            )
        }
    }

    /// A connection the egress policy forbids; `pointer` names the field of
    /// the request that gave the address, when one did.
    pub fn egress_denied(pointer: Option<&str>, denied: sluice_model::EgressDenied) -> Self {
        let detail = denied.to_string();
        Self {
            errors: pointer
                .map(|pointer| FieldError {
                    pointer: pointer.to_owned(),
                    detail: detail.clone(),
                })
                .into_iter()
                .collect(),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "egress-denied",
                "Address not allowed",
                detail,
            )
        }
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            detail,
        )
    }

    pub fn invalid_parameter(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid parameter",
            detail,
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no {what} with this id"),
        )
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn invalid_transition(state: PipeState, detail: impl Into<String>) -> Self {
        Self {
            current_state: Some(state),
            ..Self::new(
                StatusCode::CONFLICT,
                "invalid-state-transition",
                "Invalid state transition",
                detail,
            )
        }
    }

    pub fn precondition_failed(current_version: i64) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Precondition failed",
            format!(
                "If-Match does not match the current version (ETag \"{current_version}\"); read the resource again and retry"
            ),
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "Internal error",
            "the server failed to handle the request; the details are in its log",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "body"
    } else {
        pointer
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, axum::Json(&self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        // Bearer only: a Basic challenge makes browsers hold the web UI's
        // sign-in request and show their own password dialog. Clients that
        // send Basic credentials (as the reference API takes them) need no
        // challenge to do so.
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="sluice""#),
            );
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(detail) => Problem::conflict(detail),
            other => {
                tracing::error!(error = %other, "store error");
                Problem::internal()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, Problem>;
