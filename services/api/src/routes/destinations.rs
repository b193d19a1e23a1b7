//! ClickHouse destinations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sluice_model::secret::secrets_to_resend;
use sluice_model::{DestinationPatch, DestinationSpec, SecretBag};
use sluice_runtime::egress;
use sluice_store::DestinationRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ReadErrors, WriteErrors};
use crate::auth::{Developer, Viewer};
use crate::check::check_clickhouse;
use crate::extract::{etag, ApiJson, ApiQuery, IdPath, IfMatch, PageParams, PatchBody};
use crate::merge::apply_patch;
use crate::problem::{ApiResult, Problem};
use crate::views::{Destination, DestinationCheck, Paginated};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_destinations, create_destination))
        .routes(routes!(
            get_destination,
            patch_destination,
            delete_destination
        ))
        .routes(routes!(check_destination))
}

async fn load(state: &AppState, id: Uuid) -> ApiResult<DestinationRecord> {
    state
        .store
        .destination(id)
        .await?
        .ok_or_else(|| Problem::not_found("destination"))
}

fn destination_response(status: StatusCode, record: DestinationRecord) -> Response {
    (
        status,
        etag(record.version),
        Json(Destination::from(record)),
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/destinations", tag = "destinations", params(PageParams),
    responses((status = 200, body = Paginated<Destination>), ReadErrors))]
async fn list_destinations(
    _: Viewer,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<Json<Paginated<Destination>>> {
    let records = state
        .store
        .list_destinations(page.limit()?, page.cursor::<Uuid>()?)
        .await?;
    Ok(Json(Paginated::from_page(records)))
}

#[utoipa::path(post, path = "/v1/destinations", tag = "destinations", request_body = DestinationSpec,
    responses((status = 201, body = Destination, headers(("ETag" = String))), WriteErrors))]
async fn create_destination(
    _: Developer,
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<DestinationSpec>,
) -> ApiResult<Response> {
    spec.validate().map_err(Problem::validation)?;
    egress::check_url(&state.egress, &spec.url)
        .await
        .map_err(|e| Problem::egress_denied(Some("/url"), e))?;
    let id = Uuid::now_v7();
    let record = state.store.insert_destination(id, spec).await?;
    tracing::info!(destination_id = %id, "destination created");
    Ok(destination_response(StatusCode::CREATED, record))
}

#[utoipa::path(get, path = "/v1/destinations/{id}", tag = "destinations", params(("id" = Uuid, Path)),
    responses((status = 200, body = Destination, headers(("ETag" = String))), ReadErrors))]
async fn get_destination(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    Ok(destination_response(
        StatusCode::OK,
        load(&state, id).await?,
    ))
}

/// Edit a destination with a JSON merge patch; the password is kept unless
/// a new one is sent, except that changing `url` or `username` needs the
/// password again (422 `secret-required`: a stored password is only ever
/// sent to the server it was given for). Pipes pick the change up at their
/// next generation.
#[utoipa::path(patch, path = "/v1/destinations/{id}", tag = "destinations",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = DestinationPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, body = Destination), WriteErrors))]
async fn patch_destination(
    _: Developer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    PatchBody(patch): PatchBody,
) -> ApiResult<Response> {
    for _ in 0..5 {
        let record = load(&state, id).await?;
        if if_match.is_some_and(|v| v != record.version) {
            return Err(Problem::precondition_failed(record.version));
        }
        let mut edited = apply_patch(&record.spec, &patch)?;
        edited.validate().map_err(Problem::validation)?;
        let stored = record.secrets(&state.store)?;
        let missing = secrets_to_resend(
            &record.spec.secret_binding(),
            &edited.secret_binding(),
            edited.secret_slots(),
            &stored,
        );
        if !missing.is_empty() {
            return Err(Problem::secret_required(missing));
        }
        stored.fill(edited.secret_slots());
        egress::check_url(&state.egress, &edited.url)
            .await
            .map_err(|e| Problem::egress_denied(Some("/url"), e))?;
        let mut without_secrets = edited.clone();
        let secrets = SecretBag::take_from(without_secrets.secret_slots());
        if secrets == stored && without_secrets == record.spec {
            return Ok(destination_response(StatusCode::OK, record));
        }
        match state
            .store
            .update_destination(id, record.version, edited)
            .await?
        {
            Some(updated) => return Ok(destination_response(StatusCode::OK, updated)),
            None if if_match.is_some() => {
                let current = load(&state, id).await?;
                return Err(Problem::precondition_failed(current.version));
            }
            None => continue,
        }
    }
    Err(Problem::conflict(
        "the destination kept changing while this request applied; retry",
    ))
}

/// Delete a destination no pipe uses (409 names the pipes that do).
#[utoipa::path(delete, path = "/v1/destinations/{id}", tag = "destinations", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), WriteErrors))]
async fn delete_destination(
    _: Developer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    if state.store.delete_destination(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("destination"))
    }
}

/// Connect to the destination and report the server version, or the exact
/// failure (connection, TLS, authentication, unknown database).
#[utoipa::path(post, path = "/v1/destinations/{id}/check", tag = "destinations", params(("id" = Uuid, Path)),
    responses((status = 200, body = DestinationCheck), WriteErrors))]
async fn check_destination(
    _: Developer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Json<DestinationCheck>> {
    let record = load(&state, id).await?;
    egress::check_url(&state.egress, &record.spec.url)
        .await
        .map_err(|e| Problem::egress_denied(None, e))?;
    let mut spec = record.spec.clone();
    record.secrets(&state.store)?.fill(spec.secret_slots());
    let result = check_clickhouse(&spec, spec.password.as_ref(), state.egress.clone()).await;
    tracing::info!(destination_id = %id, ok = result.ok, "destination checked");
    Ok(Json(result))
}
