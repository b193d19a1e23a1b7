//! Pipes: definitions, lifecycle commands, scaling, settings, status, events.
//!
//! Editing: any pipe but one being deleted can be edited, Failed ones
//! included. Name and description changes apply at once. Any other change
//! (credentials, mappings, scaling, settings) is a new *generation*: live
//! replicas restart on it, committing only what ClickHouse acknowledged;
//! a stopped pipe uses it at its next start. Immutable fields (see
//! `PipeSpec::immutable_changes`) are refused with `immutable-field`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sluice_clickhouse::{ChType, SinkError};
use sluice_model::secret::secrets_to_resend;
use sluice_model::{Command, PipeSettings, PipeSpec, PipeState, Scaling, SecretBag, Transition};
use sluice_store::{NewEvent, PipeRecord, PipeUpdate};
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ReadErrors, WriteErrors};
use crate::auth::{Developer, Viewer};
use crate::extract::{etag, ApiJson, ApiQuery, IdPath, IfMatch, PageParams, PatchBody};
use crate::merge::apply_patch;
use crate::problem::{ApiResult, Problem};
use crate::views::{
    ActivityList, MetricHistory, Paginated, Pipe, PipeEvent, PipeMetrics, PipeStatus,
    ReplicaMetrics, ReplicaPlacement, SchedulingDecision, StateChange, StateCommand,
};
use crate::AppState;

const WRITE_RETRIES: usize = 5;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pipes, create_pipe))
        .routes(routes!(get_pipe, patch_pipe, delete_pipe))
        .routes(routes!(change_state))
        .routes(routes!(patch_scaling))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(get_status))
        .routes(routes!(list_events))
        .routes(routes!(get_schema))
        .routes(routes!(get_metrics))
        .routes(routes!(get_metric_history))
        .routes(routes!(list_activity))
}

async fn load(state: &AppState, id: Uuid) -> ApiResult<PipeRecord> {
    state
        .store
        .pipe(id)
        .await?
        .ok_or_else(|| Problem::not_found("pipe"))
}

fn pipe_response(status: StatusCode, record: PipeRecord) -> Response {
    (status, etag(record.version), Json(Pipe::from(record))).into_response()
}

/// List pipes, oldest first.
#[utoipa::path(get, path = "/v1/pipes", tag = "pipes", params(PageParams),
    responses((status = 200, body = Paginated<Pipe>), ReadErrors))]
async fn list_pipes(
    _: Viewer,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<Json<Paginated<Pipe>>> {
    let records = state
        .store
        .list_pipes(page.limit()?, page.cursor::<Uuid>()?)
        .await?;
    Ok(Json(Paginated::from_page(records)))
}

/// Create a pipe. It is created Stopped; start it with `PATCH /v1/pipes/{id}/state`.
/// With `exactlyOnce`, the destination is asked whether it takes insert
/// deduplication tokens: 422 on `/exactlyOnce` when it does not, 502 when
/// it cannot be reached.
#[utoipa::path(post, path = "/v1/pipes", tag = "pipes", request_body = PipeSpec,
    responses((status = 201, body = Pipe, headers(("ETag" = String))), WriteErrors,
        (status = 502, description = "exactlyOnce: the destination cannot be reached", body = Problem, content_type = "application/problem+json")))]
async fn create_pipe(
    _: Developer,
    State(state): State<AppState>,
    ApiJson(mut spec): ApiJson<PipeSpec>,
) -> ApiResult<Response> {
    let id = Uuid::now_v7();
    spec.fill_defaults(id);
    spec.validate().map_err(Problem::validation)?;
    super::sources::source_egress(&state, &spec.source).await?;
    if state
        .store
        .destination(spec.destination.destination_id)
        .await?
        .is_none()
    {
        return Err(Problem::validation(vec![sluice_model::FieldError {
            pointer: "/destination/destinationId".into(),
            detail: "no destination with this id; create one with POST /v1/destinations".into(),
        }]));
    }
    check_against_destination(&state, &spec).await?;
    let record = state
        .store
        .insert_pipe(
            id,
            spec,
            PipeState::Stopped,
            NewEvent::info("created", "pipe created (Stopped)"),
        )
        .instrument(tracing::info_span!("create_pipe", pipe_id = %id))
        .await?;
    tracing::info!(pipe_id = %id, "pipe created");
    Ok(pipe_response(StatusCode::CREATED, record))
}

/// What the destination can tell before the pipe exists, rather than the
/// pipe failing on start:
/// - every column type is one the server has (`system.data_type_families`);
/// - an existing table exists and the destination's user may insert into
///   it (an empty insert), so a pipe can only name a table it could write
///   to, and `GET /v1/pipes/{id}/rows` can only ever read that one;
/// - exactly-once needs a server that takes insert deduplication tokens.
///
/// A managed-table pipe without exactly-once is still created when the
/// server cannot be reached (the worker checks again at start); the other
/// checks need the answer, so an unreachable server is a 502.
async fn check_against_destination(state: &AppState, spec: &PipeSpec) -> ApiResult<()> {
    use super::tables::{destination_sink, unreachable};
    use sluice_clickhouse::ddl::qualified;
    use sluice_model::FieldError;

    let destination = &spec.destination;
    let must_answer = spec.exactly_once || !destination.managed_table;
    let (sink, default_database) = destination_sink(state, destination.destination_id).await?;
    let families = match sink.type_families().await {
        Ok(families) => families,
        Err(e) if must_answer => return Err(unreachable(e)),
        Err(e) => {
            tracing::info!(error = %e, "destination not reachable at create; its types are checked at start");
            return Ok(());
        }
    };
    let version = sink.version().await.map_err(unreachable)?;
    let mut errors = Vec::new();
    for (i, column) in destination.columns.iter().enumerate() {
        // The model validated the spelling; this is the server's side.
        let Ok(ty) = ChType::parse(&column.column_type) else {
            continue;
        };
        if let Some(family) = ty.first_missing_family(&families) {
            errors.push(FieldError {
                pointer: format!("/destination/columns/{i}/type"),
                detail: format!(
                    "column `{}`: `{}` needs {family}, which the destination's ClickHouse {version} does not have",
                    column.name, column.column_type
                ),
            });
        }
    }
    if !destination.managed_table {
        let database = destination.database.clone().unwrap_or(default_database);
        let table = qualified(&database, &destination.table);
        match sink.describe(&database, &destination.table).await {
            Ok(Some(_)) => {
                if let Err(e) = sink.can_insert(&database, &destination.table).await {
                    if !matches!(e, SinkError::Server { .. }) {
                        return Err(unreachable(e));
                    }
                    errors.push(FieldError {
                        pointer: "/destination/table".into(),
                        detail: format!(
                            "the destination's user cannot insert into {table}: {e}"
                        ),
                    });
                }
            }
            Ok(None) => errors.push(FieldError {
                pointer: "/destination/table".into(),
                detail: format!(
                    "{table} does not exist on the destination (ClickHouse {version}); create it, or set managedTable"
                ),
            }),
            Err(e @ SinkError::Server { .. }) => errors.push(FieldError {
                pointer: "/destination/table".into(),
                detail: format!("{table} cannot be read on the destination: {e}"),
            }),
            Err(e) => return Err(unreachable(e)),
        }
    }
    if spec.exactly_once
        && !sink
            .has_setting("insert_deduplication_token")
            .await
            .map_err(unreachable)?
    {
        errors.push(FieldError {
            pointer: "/exactlyOnce".into(),
            detail: format!(
                "the destination's ClickHouse {version} has no insert deduplication tokens (they came in 22.2); exactly-once needs them"
            ),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Problem::validation(errors))
    }
}

#[utoipa::path(get, path = "/v1/pipes/{id}", tag = "pipes", params(("id" = Uuid, Path)),
    responses((status = 200, body = Pipe, headers(("ETag" = String))), ReadErrors))]
async fn get_pipe(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    Ok(pipe_response(StatusCode::OK, load(&state, id).await?))
}

/// Edit a pipe with a JSON merge patch (RFC 7396) of its definition.
///
/// Send only what changes; `null` removes an optional field. Secrets are
/// kept unless new ones are sent, except that changing where they go or
/// whose they are (Kafka `brokers`, `authentication` or
/// `credentials.username`; Kinesis `region`, `endpoint`,
/// `accessKey.accessKeyId` or `iamRole`) needs them again (422
/// `secret-required`). Immutable fields may be sent unchanged.
#[utoipa::path(patch, path = "/v1/pipes/{id}", tag = "pipes",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being edited")),
    request_body(content = PipeSpec, content_type = "application/merge-patch+json",
        description = "Any subset of the pipe definition."),
    responses((status = 200, body = Pipe, headers(("ETag" = String))), WriteErrors))]
async fn patch_pipe(
    _: Developer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    PatchBody(patch): PatchBody,
) -> ApiResult<Response> {
    let record = edit(&state, id, if_match, "definition updated", |current| {
        apply_patch(current, &patch)
    })
    .await?;
    Ok(pipe_response(StatusCode::OK, record))
}

/// Delete a pipe. A Stopped pipe is removed at once (204); any other is
/// stopped first and removed when its replicas are gone (202, state Deleting).
#[utoipa::path(delete, path = "/v1/pipes/{id}", tag = "pipes",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 202, body = Pipe), (status = 204, description = "Removed"), WriteErrors))]
async fn delete_pipe(
    _: Developer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
) -> ApiResult<Response> {
    match command(&state, id, if_match, Command::Delete).await? {
        Some(record) => Ok(pipe_response(StatusCode::ACCEPTED, record)),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Start or stop a pipe.
///
/// Start applies to Stopped and Failed pipes; stop to Provisioning, Running,
/// Degraded and Failed ones. Otherwise 409 names the current state.
#[utoipa::path(patch, path = "/v1/pipes/{id}/state", tag = "pipes",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = StateChange,
    responses((status = 200, body = Pipe), WriteErrors))]
async fn change_state(
    _: Developer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    ApiJson(change): ApiJson<StateChange>,
) -> ApiResult<Response> {
    let command_ = match change.command {
        StateCommand::Start => Command::Start,
        StateCommand::Stop => Command::Stop,
    };
    let record = command(&state, id, if_match, command_)
        .await?
        .ok_or_else(Problem::internal)?;
    Ok(pipe_response(StatusCode::OK, record))
}

/// Change replicas, replica size or autoscaling bounds (a merge patch of
/// the pipe's `scaling`).
#[utoipa::path(patch, path = "/v1/pipes/{id}/scaling", tag = "pipes",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Scaling, content_type = "application/merge-patch+json"),
    responses((status = 200, body = Pipe), WriteErrors))]
async fn patch_scaling(
    _: Developer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    PatchBody(patch): PatchBody,
) -> ApiResult<Response> {
    let record = edit(&state, id, if_match, "scaling changed", |current| {
        let scaling =
            apply_patch(&current.scaling, &patch).map_err(|p| prefix_pointers(p, "/scaling"))?;
        Ok(PipeSpec {
            scaling,
            ..current.clone()
        })
    })
    .await?;
    Ok(pipe_response(StatusCode::OK, record))
}

#[utoipa::path(get, path = "/v1/pipes/{id}/settings", tag = "pipes", params(("id" = Uuid, Path)),
    responses((status = 200, body = PipeSettings), ReadErrors))]
async fn get_settings(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let record = load(&state, id).await?;
    Ok((etag(record.version), Json(record.spec.settings)).into_response())
}

/// Replace the settings; keys left out return to their defaults.
#[utoipa::path(put, path = "/v1/pipes/{id}/settings", tag = "pipes",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body = PipeSettings,
    responses((status = 200, body = PipeSettings), WriteErrors))]
async fn put_settings(
    _: Developer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
    IfMatch(if_match): IfMatch,
    ApiJson(settings): ApiJson<PipeSettings>,
) -> ApiResult<Response> {
    let mut check = sluice_model::Validation::new();
    settings.validate(&mut check, "");
    check.finish().map_err(Problem::validation)?;
    let record = edit(&state, id, if_match, "settings changed", |current| {
        Ok(PipeSpec {
            settings: settings.clone(),
            ..current.clone()
        })
    })
    .await?;
    Ok((etag(record.version), Json(record.spec.settings)).into_response())
}

/// Desired and observed state, replica counts and the last error.
#[utoipa::path(get, path = "/v1/pipes/{id}/status", tag = "pipes", params(("id" = Uuid, Path)),
    responses((status = 200, body = PipeStatus), ReadErrors))]
async fn get_status(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Json<PipeStatus>> {
    let mut status: PipeStatus = load(&state, id).await?.into();
    status.placements = state
        .store
        .replica_reports(id)
        .await?
        .into_iter()
        .map(|r| ReplicaPlacement {
            replica: r.replica,
            worker_id: r.worker_id,
            status: r.status,
        })
        .collect();
    status.last_scheduling_decision = state
        .store
        .latest_pipe_event(id, &["replica_placed", "autoscaled"])
        .await?
        .map(|e| SchedulingDecision {
            message: e.message,
            at: e.at,
        });
    Ok(Json(status))
}

/// System events of a pipe, newest first.
#[utoipa::path(get, path = "/v1/pipes/{id}/events", tag = "pipes",
    params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Paginated<PipeEvent>), ReadErrors))]
async fn list_events(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<Json<Paginated<PipeEvent>>> {
    load(&state, id).await?;
    let events = state
        .store
        .pipe_events(id, page.limit()?, page.cursor::<i64>()?)
        .await?;
    Ok(Json(Paginated::from_page(events)))
}

/// Counters of the pipe's data plane (fetched, sent, errors), its consumer
/// lag and each live replica's CPU and memory.
/// The writer schemas the pipe's messages named (AvroConfluent, Protobuf
/// through a registry), each with the columns its fields map to, and the
/// columns schema evolution added to the table.
#[utoipa::path(get, path = "/v1/pipes/{id}/schema", tag = "pipes", params(("id" = Uuid, Path)),
    responses((status = 200, body = crate::views::PipeSchemas), ReadErrors))]
async fn get_schema(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Json<crate::views::PipeSchemas>> {
    let record = load(&state, id).await?;
    let schemas = state.store.pipe_schemas(id).await?;
    let added = state.store.pipe_added_columns(id).await?;
    Ok(Json(crate::views::PipeSchemas {
        schema_evolution: record.spec.schema_evolution,
        schemas: schemas
            .into_iter()
            .map(|s| crate::views::SeenWriterSchema {
                schema_id: s.schema_id,
                kind: s.kind,
                message_type: Some(s.message_type).filter(|m| !m.is_empty()),
                first_seen: s.first_seen,
                columns: s.columns,
            })
            .collect(),
        added_columns: added
            .into_iter()
            .map(|c| crate::views::AddedTableColumn {
                name: c.name,
                column_type: c.column_type,
                source_field: c.source_field,
                schema_id: c.schema_id,
                statement: c.statement,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/pipes/{id}/metrics", tag = "pipes", params(("id" = Uuid, Path)),
    responses((status = 200, body = PipeMetrics), ReadErrors))]
async fn get_metrics(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Json<PipeMetrics>> {
    load(&state, id).await?;
    let (c, updated_at) = state.store.pipe_counters(id).await?;
    let replicas: Vec<ReplicaMetrics> = state
        .store
        .replica_reports(id)
        .await?
        .into_iter()
        .map(ReplicaMetrics::from)
        .collect();
    // A sum over replicas is only a lag when every replica knows its own.
    let lag_messages = replicas
        .iter()
        .map(|r| r.lag_messages)
        .sum::<Option<i64>>()
        .filter(|_| !replicas.is_empty());
    // Shards are read in parallel: the pipe is as far behind as its
    // furthest-behind replica, once every replica knows.
    let lag_millis = replicas
        .iter()
        .map(|r| r.lag_millis)
        .try_fold(0i64, |max, l| l.map(|l| max.max(l)))
        .filter(|_| !replicas.is_empty());
    Ok(Json(PipeMetrics {
        fetched_events: c.fetched_events,
        fetched_bytes: c.fetched_bytes,
        sent_rows: c.sent_rows,
        sent_bytes: c.sent_bytes,
        errors: c.errors,
        lag_messages,
        lag_millis,
        replicas,
        updated_at,
    }))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct HistoryParams {
    /// How far back, 1 to 1440 minutes; 60 when absent.
    minutes: Option<u32>,
}

/// The pipe's counters and lag in ten-second buckets over the last
/// `minutes`, for charts.
#[utoipa::path(get, path = "/v1/pipes/{id}/metrics/history", tag = "pipes",
    params(("id" = Uuid, Path), HistoryParams),
    responses((status = 200, body = MetricHistory), ReadErrors))]
async fn get_metric_history(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> ApiResult<Json<MetricHistory>> {
    let minutes = params.minutes.unwrap_or(60);
    if !(1..=1440).contains(&minutes) {
        return Err(Problem::invalid_parameter(
            "`minutes` must be between 1 and 1440",
        ));
    }
    load(&state, id).await?;
    let points = state
        .store
        .metric_history(id, std::time::Duration::from_secs(u64::from(minutes) * 60))
        .await?;
    Ok(Json(MetricHistory {
        bucket_seconds: sluice_store::METRIC_BUCKET_SECONDS,
        points: points.into_iter().map(Into::into).collect(),
    }))
}

/// What every pipe is doing now, for a list: rows and bytes per second over
/// the last minute, errors in the last hour, lag. Pipes without a report in
/// the last hour are absent.
#[utoipa::path(get, path = "/v1/pipes/activity", tag = "pipes",
    responses((status = 200, body = ActivityList), ReadErrors))]
async fn list_activity(_: Viewer, State(state): State<AppState>) -> ApiResult<Json<ActivityList>> {
    let activity = state.store.pipe_activity().await?;
    Ok(Json(ActivityList {
        data: activity.into_iter().map(Into::into).collect(),
    }))
}

fn prefix_pointers(mut problem: Problem, prefix: &str) -> Problem {
    for error in &mut problem.errors {
        error.pointer = format!("{prefix}{}", error.pointer);
    }
    problem
}

async fn precondition_failed(state: &AppState, id: Uuid) -> Problem {
    match state.store.pipe(id).await {
        Ok(Some(current)) => Problem::precondition_failed(current.version),
        Ok(None) => Problem::not_found("pipe"),
        Err(e) => e.into(),
    }
}

/// Applies an edit of the definition with optimistic concurrency: with
/// `If-Match` a concurrent change is a 412, without it the edit is retried
/// on the fresh version. An edit that changes nothing changes nothing
/// (no new version, no event), so repeated applies stay quiet.
async fn edit(
    state: &AppState,
    id: Uuid,
    if_match: Option<i64>,
    what: &str,
    apply: impl Fn(&PipeSpec) -> ApiResult<PipeSpec>,
) -> ApiResult<PipeRecord> {
    for _ in 0..WRITE_RETRIES {
        let record = load(state, id).await?;
        if if_match.is_some_and(|v| v != record.version) {
            return Err(Problem::precondition_failed(record.version));
        }
        if !record.state.is_editable() {
            return Err(Problem::invalid_transition(
                record.state,
                format!(
                    "the pipe is {}; it can no longer be edited",
                    record.state.as_str()
                ),
            ));
        }
        let mut edited = apply(&record.spec)?;
        edited.fill_defaults(id);
        let immutable = record.spec.immutable_changes(&edited);
        if !immutable.is_empty() {
            return Err(Problem::immutable(immutable));
        }
        let stored_secrets = record.secrets(&state.store)?;
        let missing = secrets_to_resend(
            &record.spec.secret_binding(),
            &edited.secret_binding(),
            edited.secret_slots(),
            &stored_secrets,
        );
        if !missing.is_empty() {
            return Err(Problem::secret_required(missing));
        }
        stored_secrets.fill(edited.secret_slots());
        edited.validate().map_err(Problem::validation)?;
        super::sources::source_egress(state, &edited.source).await?;

        let mut without_secrets = edited.clone();
        let new_secrets = SecretBag::take_from(without_secrets.secret_slots());
        let data_path_changed =
            new_secrets != stored_secrets || !same_data_path(&record.spec, &without_secrets);
        if !data_path_changed && without_secrets == record.spec {
            return Ok(record);
        }
        let message = if data_path_changed {
            format!(
                "{what}; generation {} (running replicas restart on it)",
                record.generation + 1
            )
        } else {
            what.to_owned()
        };
        let reset_autoscaled_replicas = edited.scaling.replicas != record.spec.scaling.replicas
            || edited.scaling.autoscaling.is_none();
        let update = PipeUpdate {
            spec: Some(edited),
            state: record.state,
            bump_generation: data_path_changed,
            reset_autoscaled_replicas,
            event: NewEvent::info("updated", message),
        };
        match state.store.update_pipe(id, record.version, update).await? {
            Some(updated) => {
                tracing::info!(pipe_id = %id, version = updated.version, "pipe updated");
                return Ok(updated);
            }
            None if if_match.is_some() => return Err(precondition_failed(state, id).await),
            None => continue,
        }
    }
    Err(Problem::conflict(
        "the pipe kept changing while this request applied; retry",
    ))
}

/// Whether two definitions read and write the same way. The replica count
/// and the autoscaling bounds are left out: scaling starts or stops
/// replicas above the count and leaves the others running, with no
/// restart and no rebalance of their partitions.
fn same_data_path(a: &PipeSpec, b: &PipeSpec) -> bool {
    let strip = |spec: &PipeSpec| PipeSpec {
        name: String::new(),
        description: String::new(),
        scaling: sluice_model::Scaling {
            replicas: 1,
            autoscaling: None,
            ..spec.scaling
        },
        ..spec.clone()
    };
    strip(a) == strip(b)
}

/// Applies a lifecycle command through the state machine. `None` when the
/// pipe was removed.
async fn command(
    state: &AppState,
    id: Uuid,
    if_match: Option<i64>,
    command: Command,
) -> ApiResult<Option<PipeRecord>> {
    for _ in 0..WRITE_RETRIES {
        let record = load(state, id).await?;
        if if_match.is_some_and(|v| v != record.version) {
            return Err(Problem::precondition_failed(record.version));
        }
        let from = record.state;
        let transition = from.apply(command).map_err(|e| {
            let applies_to = match e.command {
                Command::Start => "a Stopped or Failed pipe",
                Command::Stop => "a Provisioning, Running, Degraded or Failed pipe",
                Command::Delete => "any pipe",
            };
            Problem::invalid_transition(
                from,
                format!(
                    "the pipe is {}; {} applies only to {applies_to}",
                    from.as_str(),
                    command_name(command)
                ),
            )
        })?;
        match transition {
            Transition::To(to) => {
                if from == PipeState::Failed && to == PipeState::Provisioning {
                    state.store.release_failed_replicas(id).await?;
                }
                let update = PipeUpdate {
                    spec: None,
                    state: to,
                    bump_generation: false,
                    reset_autoscaled_replicas: false,
                    event: NewEvent::info(
                        "state_changed",
                        format!(
                            "{} requested: {} → {}",
                            command_name(command),
                            from.as_str(),
                            to.as_str()
                        ),
                    ),
                };
                match state.store.update_pipe(id, record.version, update).await? {
                    Some(updated) => {
                        tracing::info!(pipe_id = %id, from = from.as_str(), to = to.as_str(), "pipe state changed");
                        return Ok(Some(updated));
                    }
                    None if if_match.is_some() => return Err(precondition_failed(state, id).await),
                    None => continue,
                }
            }
            Transition::Remove => {
                sluice_runtime::release_source_resources(&state.store, &record).await;
                if state.store.delete_pipe(id, record.version).await? {
                    tracing::info!(pipe_id = %id, "pipe deleted");
                    return Ok(None);
                }
                if if_match.is_some() {
                    return Err(precondition_failed(state, id).await);
                }
            }
        }
    }
    Err(Problem::conflict(
        "the pipe kept changing while this request applied; retry",
    ))
}

fn command_name(command: Command) -> &'static str {
    match command {
        Command::Start => "start",
        Command::Stop => "stop",
        Command::Delete => "delete",
    }
}
