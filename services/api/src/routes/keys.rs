//! API keys (admin only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sluice_model::Validation;
use sluice_store::NewApiKey;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ReadErrors, WriteErrors};
use crate::auth::{Admin, MintedKey, Viewer};
use crate::extract::{ApiJson, ApiQuery, PageParams};
use crate::problem::{ApiResult, Problem};
use crate::views::{ApiKey, CreateApiKey, CreatedApiKey, Paginated, Session};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(get_session))
}

/// The key making the request, with its role: what a client may show.
#[utoipa::path(get, path = "/v1/session", tag = "keys",
    responses((status = 200, body = Session), ReadErrors))]
async fn get_session(
    Viewer(caller): Viewer,
    State(state): State<AppState>,
) -> ApiResult<Json<Session>> {
    let key = state
        .store
        .api_key(&caller.key_id)
        .await?
        .ok_or_else(|| Problem::unauthorized("the key no longer exists"))?;
    Ok(Json(Session {
        key_id: key.id,
        name: key.name,
        role: key.role.into(),
    }))
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(PageParams),
    responses((status = 200, body = Paginated<ApiKey>), ReadErrors))]
async fn list_keys(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<Json<Paginated<ApiKey>>> {
    let keys = state
        .store
        .list_api_keys(page.limit()?, page.cursor::<String>()?.as_deref())
        .await?;
    Ok(Json(Paginated::from_page(keys)))
}

/// Create a key. Its secret is in this response only.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), WriteErrors))]
async fn create_key(
    Admin(caller): Admin,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let mut v = Validation::new();
    sluice_model::validate::check_display_name(&mut v, "/name", &request.name);
    v.finish().map_err(Problem::validation)?;
    let minted = MintedKey::generate();
    let record = state
        .store
        .insert_api_key(NewApiKey {
            id: &minted.id,
            name: &request.name,
            role: request.role.into(),
            secret_hash: &minted.hash(),
        })
        .await?;
    tracing::info!(key_id = %record.id, created_by = %caller.key_id, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: record.into(),
            token: minted.token(),
            basic: minted.basic(),
            secret: minted.secret,
        }),
    ))
}

/// Revoke a key. The last active admin key cannot be revoked (409).
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKey), WriteErrors))]
async fn revoke_key(
    Admin(caller): Admin,
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Json<ApiKey>> {
    let record = state
        .store
        .revoke_api_key(&id)
        .await?
        .ok_or_else(|| Problem::not_found("API key"))?;
    tracing::info!(key_id = %id, revoked_by = %caller.key_id, "API key revoked");
    Ok(Json(record.into()))
}
