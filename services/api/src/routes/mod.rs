pub mod destinations;
pub mod keys;
pub mod pipes;
pub mod sources;
pub mod system;
pub mod tables;
pub mod workers;

use utoipa::IntoResponses;

use crate::problem::Problem;

/// Errors any authenticated read can answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// A malformed path or query parameter.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No API key, an unknown or revoked one, or a wrong secret.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The key's role does not allow this request.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such resource.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
}

/// Errors any authenticated write can answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// Malformed JSON, invalid UTF-8, or a malformed parameter or header.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The request does not apply in the resource's current state.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// `If-Match` names an older version.
    #[response(status = 412, content_type = "application/problem+json")]
    PreconditionFailed(Problem),
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Field errors (with JSON Pointers) or a change to an immutable field.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
}
