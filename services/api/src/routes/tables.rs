//! Reading ClickHouse through a destination's credentials: its databases,
//! tables and columns for the wizard, and a pipe's error table and newest
//! rows for the pipe's page. Read-only; names from requests only ever appear
//! quoted.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sluice_clickhouse::ddl::{error_table_name, qualified, quote_ident, quote_literal};
use sluice_clickhouse::{ChType, Endpoint, Sink, SinkError, TableColumn};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ReadErrors;
use crate::auth::Viewer;
use crate::extract::{ApiPath, ApiQuery, IdPath};
use crate::problem::{ApiResult, Problem};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_databases))
        .routes(routes!(destination_types))
        .routes(routes!(list_tables))
        .routes(routes!(describe_table))
        .routes(routes!(pipe_errors))
        .routes(routes!(pipe_rows))
}

const MAX_ROWS: u32 = 100;
/// How long a request of the API waits for ClickHouse: a person is waiting.
const API_CLICKHOUSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
const MAX_ERRORS: u32 = 200;

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseList {
    pub databases: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TableSummary {
    pub name: String,
    pub engine: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TableList {
    pub tables: Vec<TableSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableColumnView {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: String,
    /// `DEFAULT`, `MATERIALIZED` or `ALIAS`; the pipe cannot write
    /// MATERIALIZED and ALIAS columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_kind: Option<String>,
}

impl From<TableColumn> for TableColumnView {
    fn from(c: TableColumn) -> Self {
        TableColumnView {
            name: c.name,
            column_type: c.column_type,
            default_kind: Some(c.default_type).filter(|k| !k.is_empty()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TableDescription {
    pub name: String,
    pub engine: String,
    pub columns: Vec<TableColumnView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipeErrorRecord {
    pub at: String,
    pub error_code: String,
    pub error: String,
    /// The message as received (cut at 64 KiB, see `rawTruncated`).
    pub raw_message: String,
    pub raw_truncated: bool,
    /// Kafka partition, or -1 for Kinesis.
    pub partition: i64,
    /// Kafka offset, or -1 for Kinesis.
    pub offset: i64,
    pub key: String,
    /// The topic, or the stream and shard.
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PipeErrorList {
    pub errors: Vec<PipeErrorRecord>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PipeRows {
    pub columns: Vec<TableColumnView>,
    /// One object per row, by column name, as ClickHouse's JSON output
    /// writes values (64-bit integers as strings).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LimitParams {
    /// At most this many, newest first.
    pub limit: Option<u32>,
}

pub(crate) fn unreachable(error: SinkError) -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "destination-unreachable",
        "The destination cannot be read",
        error.to_string(),
    )
}

fn limit(given: Option<u32>, default: u32, max: u32) -> ApiResult<u32> {
    let limit = given.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::invalid_parameter(format!(
            "`limit` must be between 1 and {max}"
        )))
    }
}

fn parse_id(raw: &str) -> ApiResult<Uuid> {
    raw.parse()
        .map_err(|_| Problem::invalid_parameter(format!("`{raw}` is not an id (a UUID)")))
}

/// A client of the destination with its stored password, and its database.
pub(crate) async fn destination_sink(state: &AppState, id: Uuid) -> ApiResult<(Sink, String)> {
    let record = state
        .store
        .destination(id)
        .await?
        .ok_or_else(|| Problem::not_found("destination"))?;
    sluice_runtime::egress::check_url(&state.egress, &record.spec.url)
        .await
        .map_err(|e| Problem::egress_denied(None, e))?;
    let mut spec = record.spec.clone();
    record.secrets(&state.store)?.fill(spec.secret_slots());
    let sink = Sink::with_timeout(
        &Endpoint::of_destination(&spec, state.egress.clone()),
        API_CLICKHOUSE_TIMEOUT,
    )
    .map_err(unreachable)?;
    Ok((sink, spec.database))
}

async fn json_rows<T: serde::de::DeserializeOwned>(
    sink: &Sink,
    sql: &str,
) -> Result<Vec<T>, SinkError> {
    let bytes = sink.fetch_text(sql, "JSONEachRow").await?;
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice(line).map_err(|e| {
                SinkError::Protocol(format!("an answer line is not the expected JSON: {e}"))
            })
        })
        .collect()
}

async fn engine_of(sink: &Sink, database: &str, table: &str) -> ApiResult<Option<String>> {
    let found: Vec<TableSummary> = json_rows(
        sink,
        &format!(
            "SELECT name, engine FROM system.tables WHERE database = {} AND name = {}",
            quote_literal(database),
            quote_literal(table)
        ),
    )
    .await
    .map_err(unreachable)?;
    Ok(found.into_iter().next().map(|t| t.engine))
}

async fn columns_of(sink: &Sink, database: &str, table: &str) -> ApiResult<Vec<TableColumnView>> {
    let columns = sink
        .describe(database, table)
        .await
        .map_err(unreachable)?
        .ok_or_else(|| Problem::not_found("table"))?;
    Ok(columns.into_iter().map(TableColumnView::from).collect())
}

/// The type families the destination's server knows. Servers too old for
/// `system.data_type_families` know none of the modern ones either.
pub(crate) async fn type_families(
    state: &AppState,
    id: Uuid,
) -> ApiResult<std::collections::HashSet<String>> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
    }
    let (sink, _) = destination_sink(state, id).await?;
    match json_rows::<Row>(&sink, "SELECT name FROM system.data_type_families").await {
        Ok(rows) => Ok(rows.into_iter().map(|r| r.name).collect()),
        Err(SinkError::Server { .. }) => Ok(Default::default()),
        Err(e) => Err(unreachable(e)),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerTypes {
    /// The server's `version()`.
    pub version: String,
    /// The type families it has (`system.data_type_families`, aliases
    /// included), sorted: a column type is accepted for this destination
    /// only when every family in it is here.
    pub families: Vec<String>,
}

/// The ClickHouse types the destination's server has (the wizard offers
/// only these; creating a pipe refuses the others).
#[utoipa::path(get, path = "/v1/destinations/{id}/types", tag = "destinations",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ServerTypes),
        (status = 502, description = "ClickHouse cannot be read", body = Problem, content_type = "application/problem+json"),
        ReadErrors))]
async fn destination_types(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Json<ServerTypes>> {
    let mut families: Vec<String> = type_families(&state, id).await?.into_iter().collect();
    families.sort();
    let (sink, _) = destination_sink(&state, id).await?;
    let version = sink.version().await.map_err(unreachable)?;
    Ok(Json(ServerTypes { version, families }))
}

/// The databases the destination's user can see.
#[utoipa::path(get, path = "/v1/destinations/{id}/databases", tag = "destinations",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DatabaseList),
        (status = 502, description = "ClickHouse cannot be read", body = Problem, content_type = "application/problem+json"),
        ReadErrors))]
async fn list_databases(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
) -> ApiResult<Json<DatabaseList>> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
    }
    let (sink, _) = destination_sink(&state, id).await?;
    let rows: Vec<Row> = json_rows(&sink, "SELECT name FROM system.databases ORDER BY name")
        .await
        .map_err(unreachable)?;
    Ok(Json(DatabaseList {
        databases: rows
            .into_iter()
            .map(|r| r.name)
            .filter(|name| name != "system")
            .collect(),
    }))
}

/// The tables of one database, with their engines.
#[utoipa::path(get, path = "/v1/destinations/{id}/databases/{database}/tables", tag = "destinations",
    params(("id" = Uuid, Path), ("database" = String, Path)),
    responses((status = 200, body = TableList),
        (status = 502, description = "ClickHouse cannot be read", body = Problem, content_type = "application/problem+json"),
        ReadErrors))]
async fn list_tables(
    _: Viewer,
    State(state): State<AppState>,
    ApiPath((id, database)): ApiPath<(String, String)>,
) -> ApiResult<Json<TableList>> {
    let (sink, _) = destination_sink(&state, parse_id(&id)?).await?;
    let tables = json_rows(
        &sink,
        &format!(
            "SELECT name, engine FROM system.tables WHERE database = {} AND NOT is_temporary ORDER BY name",
            quote_literal(&database)
        ),
    )
    .await
    .map_err(unreachable)?;
    Ok(Json(TableList { tables }))
}

/// A table's engine and columns.
#[utoipa::path(get, path = "/v1/destinations/{id}/databases/{database}/tables/{table}", tag = "destinations",
    params(("id" = Uuid, Path), ("database" = String, Path), ("table" = String, Path)),
    responses((status = 200, body = TableDescription),
        (status = 502, description = "ClickHouse cannot be read", body = Problem, content_type = "application/problem+json"),
        ReadErrors))]
async fn describe_table(
    _: Viewer,
    State(state): State<AppState>,
    ApiPath((id, database, table)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<TableDescription>> {
    let (sink, _) = destination_sink(&state, parse_id(&id)?).await?;
    let engine = engine_of(&sink, &database, &table)
        .await?
        .ok_or_else(|| Problem::not_found("table"))?;
    let columns = columns_of(&sink, &database, &table).await?;
    Ok(Json(TableDescription {
        name: table,
        engine,
        columns,
    }))
}

/// The pipe's destination client and its (database, table).
async fn pipe_table(state: &AppState, id: Uuid) -> ApiResult<(Sink, String, String)> {
    let pipe = state
        .store
        .pipe(id)
        .await?
        .ok_or_else(|| Problem::not_found("pipe"))?;
    let destination = &pipe.spec.destination;
    let (sink, default_database) = destination_sink(state, destination.destination_id).await?;
    let database = destination.database.clone().unwrap_or(default_database);
    Ok((sink, database, destination.table.clone()))
}

/// The pipe's newest records that could not become rows, from the error
/// table beside its destination table (`<table>_sluice_errors`), with the
/// raw message as received.
#[utoipa::path(get, path = "/v1/pipes/{id}/errors", tag = "pipes",
    params(("id" = Uuid, Path), LimitParams),
    responses((status = 200, body = PipeErrorList),
        (status = 502, description = "ClickHouse cannot be read", body = Problem, content_type = "application/problem+json"),
        ReadErrors))]
async fn pipe_errors(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiQuery(params): ApiQuery<LimitParams>,
) -> ApiResult<Json<PipeErrorList>> {
    #[derive(Deserialize)]
    struct Row {
        at: String,
        error_code: String,
        error: String,
        raw_message: String,
        raw_truncated: serde_json::Value,
        partition: serde_json::Value,
        offset: serde_json::Value,
        key: String,
        source: String,
    }
    let limit = limit(params.limit, 20, MAX_ERRORS)?;
    let (sink, database, table) = pipe_table(&state, id).await?;
    let sql = format!(
        "SELECT at, error_code, error, raw_message, raw_truncated, partition, offset, key, source
         FROM {} WHERE pipe_id = {} ORDER BY at DESC LIMIT {limit}",
        qualified(&database, &error_table_name(&table)),
        quote_literal(&id.to_string())
    );
    let rows: Vec<Row> = match json_rows(&sink, &sql).await {
        Ok(rows) => rows,
        // No error table yet: the pipe has not started, or has had no error
        // and its table was made by someone else.
        Err(SinkError::Server { code: 60, .. }) => Vec::new(),
        Err(e) => return Err(unreachable(e)),
    };
    Ok(Json(PipeErrorList {
        errors: rows
            .into_iter()
            .map(|r| PipeErrorRecord {
                at: r.at,
                error_code: r.error_code,
                error: r.error,
                raw_message: r.raw_message,
                raw_truncated: json_int(&r.raw_truncated) != 0,
                partition: json_int(&r.partition),
                offset: json_int(&r.offset),
                key: r.key,
                source: r.source,
            })
            .collect(),
    }))
}

/// ClickHouse writes 64-bit integers as JSON strings, smaller ones as
/// numbers.
fn json_int(value: &serde_json::Value) -> i64 {
    match value {
        serde_json::Value::Number(n) => n.as_i64().unwrap_or_default(),
        serde_json::Value::String(s) => s.parse().unwrap_or_default(),
        _ => 0,
    }
}

/// The newest rows of the pipe's destination table: by its first date-time
/// column when it has one (otherwise in the order ClickHouse reads them).
#[utoipa::path(get, path = "/v1/pipes/{id}/rows", tag = "pipes",
    params(("id" = Uuid, Path), LimitParams),
    responses((status = 200, body = PipeRows),
        (status = 502, description = "ClickHouse cannot be read", body = Problem, content_type = "application/problem+json"),
        ReadErrors))]
async fn pipe_rows(
    _: Viewer,
    State(state): State<AppState>,
    IdPath(id): IdPath,
    ApiQuery(params): ApiQuery<LimitParams>,
) -> ApiResult<Json<PipeRows>> {
    let limit = limit(params.limit, 10, MAX_ROWS)?;
    let (sink, database, table) = pipe_table(&state, id).await?;
    let columns = match sink.describe(&database, &table).await {
        Ok(Some(columns)) => columns,
        // The managed table is created when the pipe first starts.
        Ok(None) => {
            return Ok(Json(PipeRows {
                columns: Vec::new(),
                rows: Vec::new(),
            }))
        }
        Err(e) => return Err(unreachable(e)),
    };
    let newest_first = columns
        .iter()
        .find(|c| {
            ChType::parse(&c.column_type).is_ok_and(|t| {
                matches!(t.value_type(), ChType::DateTime(_) | ChType::DateTime64(..))
            })
        })
        .map(|c| format!(" ORDER BY {} DESC", quote_ident(&c.name)))
        .unwrap_or_default();
    let rows = json_rows(
        &sink,
        &format!(
            "SELECT * FROM {}{newest_first} LIMIT {limit}",
            qualified(&database, &table)
        ),
    )
    .await
    .map_err(unreachable)?;
    Ok(Json(PipeRows {
        // `SELECT *` leaves out MATERIALIZED and ALIAS columns.
        columns: columns
            .into_iter()
            .filter(|c| !matches!(c.default_type.as_str(), "MATERIALIZED" | "ALIAS"))
            .map(TableColumnView::from)
            .collect(),
        rows,
    }))
}
