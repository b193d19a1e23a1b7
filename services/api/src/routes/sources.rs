//! Looking at a source before a pipe reads it: the web wizard's *Test
//! connection*, topic and stream pickers, and live sample, plus schema
//! discovery from sampled messages. Nothing here is stored.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_clickhouse::ChType;
use sluice_formats::{fit_to_server, RowPlan};
use sluice_kafka::probe::{self as kafka_probe, ProbeError};
use sluice_model::{FieldError, Format, KafkaSource, KinesisSource, Source};
use sluice_registry::pipe::FormatError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::WriteErrors;
use crate::auth::{Developer, Viewer};
use crate::extract::ApiJson;
use crate::problem::{ApiResult, Problem};
use crate::AppState;
use sluice_runtime::egress;

/// Longest the API waits on a source for one request.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_SAMPLE: u32 = 100;
const MAX_SAMPLES_FOR_DISCOVERY: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check_source))
        .routes(routes!(list_topics))
        .routes(routes!(list_streams))
        .routes(routes!(sample_source))
        .routes(routes!(discover_schema))
}

/// A source as in a pipe (`topics` and `streamName` may be empty where the
/// request does not need them).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceRequest {
    pub source: Source,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SampleRequest {
    /// Kafka: the first of `topics` is sampled; Kinesis: `streamName`.
    pub source: Source,
    /// How many messages, newest first.
    #[serde(default = "default_sample")]
    #[schema(minimum = 1, maximum = 100, default = 10)]
    pub limit: u32,
}

fn default_sample() -> u32 {
    10
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceCheck {
    pub ok: bool,
    pub latency_ms: u64,
    /// What went wrong, in the client library's words (connection refused,
    /// authentication failed, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was found, e.g. `1 broker, 4 topics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicList {
    pub topics: Vec<Topic>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Topic {
    pub name: String,
    pub partitions: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamList {
    pub streams: Vec<Stream>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stream {
    pub name: String,
    /// `ACTIVE`, `CREATING`, ...; absent when not described (beyond the
    /// first 50 streams).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Open shards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceSample {
    pub messages: Vec<SampleMessage>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SampleMessage {
    /// The message as UTF-8 text (invalid bytes replaced), or base64 when
    /// `valueEncoding` is `base64`.
    pub value: String,
    /// `utf8` or `base64` (for binary messages).
    pub value_encoding: &'static str,
    /// Kafka key, or Kinesis partition key, as UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    /// Kafka: the message timestamp; Kinesis: the approximate arrival.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// Avro and Protobuf: the message read with the source's format, as
    /// the JSON its columns are filled from.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub decoded: Option<serde_json::Value>,
    /// The registry id of the schema the message names (AvroConfluent,
    /// and Protobuf through a registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<u32>,
    /// Why the message cannot be read with the source's format: the
    /// pipe would put it in the error table with this reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_error: Option<String>,
}

impl SampleMessage {
    fn new(value: Vec<u8>) -> Self {
        let (value, value_encoding) = match String::from_utf8(value) {
            Ok(text) => (text, "utf8"),
            Err(e) => (STANDARD.encode(e.into_bytes()), "base64"),
        };
        SampleMessage {
            value,
            value_encoding,
            key: None,
            partition: None,
            offset: None,
            shard_id: None,
            sequence_number: None,
            timestamp: None,
            decoded: None,
            schema_id: None,
            decode_error: None,
        }
    }
}

fn format_problem(source: &Source, error: FormatError) -> Problem {
    match error {
        FormatError::Transient(detail) => unreachable(format!("the schema registry: {detail}")),
        FormatError::Permanent(detail) => {
            let pointer = match source {
                Source::Kafka(_) => "/source/kafka/format",
                Source::Kinesis(_) => "/source/kinesis/format",
            };
            field_error(pointer, &detail)
        }
    }
}

/// Reads each sampled message with the source's format (Avro, Protobuf);
/// JSON messages are shown as they are.
async fn decode_samples(
    state: &AppState,
    source: &Source,
    raw: Vec<Vec<u8>>,
    messages: &mut [SampleMessage],
) -> ApiResult<()> {
    if source.format_fields().format == Format::JSONEachRow {
        return Ok(());
    }
    let decoder = sluice_registry::pipe::decoder(
        source,
        RowPlan::new(Vec::new(), &[]),
        Some(state.egress.clone()),
        false,
    )
    .await
    .map_err(|e| format_problem(source, e))?
    .decoder;
    // A schema not cached yet is fetched as the message is read, which
    // blocks: off the async threads.
    let decoded = tokio::task::spawn_blocking(move || {
        raw.iter()
            .map(|payload| decoder.read(payload))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "decoding a sample panicked");
        Problem::internal()
    })?;
    for (message, outcome) in messages.iter_mut().zip(decoded) {
        match outcome {
            Ok((schema_id, json)) => {
                message.schema_id = schema_id;
                message.decoded = sonic_rs::to_string(&json)
                    .ok()
                    .and_then(|text| serde_json::from_str(&text).ok());
            }
            Err(e) => message.decode_error = Some(e.to_string()),
        }
    }
    Ok(())
}

fn field_error(pointer: &str, detail: &str) -> Problem {
    Problem::validation(vec![FieldError {
        pointer: pointer.to_owned(),
        detail: detail.to_owned(),
    }])
}

fn unreachable(detail: String) -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "source-unreachable",
        "The source cannot be reached",
        detail,
    )
}

/// A probe connects where a pipe would, so its source is validated as a
/// pipe's is (less the topic or stream, for probes that list them) and its
/// addresses go through the egress policy before anything connects.
async fn admit(state: &AppState, source: &Source, needs_target: bool) -> ApiResult<()> {
    if let Err(errors) = source.validate() {
        let errors: Vec<FieldError> = errors
            .into_iter()
            .filter(|e| {
                needs_target
                    || !(e.pointer.starts_with("/source/kafka/topics")
                        || e.pointer == "/source/kinesis/streamName")
            })
            .collect();
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
    }
    source_egress(state, source).await
}

/// The source's addresses through the egress policy.
pub(crate) async fn source_egress(state: &AppState, source: &Source) -> ApiResult<()> {
    let denied = match source {
        Source::Kafka(kafka) => egress::check_brokers(&state.egress, &kafka.brokers)
            .await
            .map_err(|e| ("/source/kafka/brokers", e)),
        Source::Kinesis(kinesis) => match &kinesis.endpoint {
            Some(endpoint) => egress::check_url(&state.egress, endpoint)
                .await
                .map_err(|e| ("/source/kinesis/endpoint", e)),
            None => Ok(()),
        },
    };
    denied.map_err(|(pointer, e)| Problem::egress_denied(Some(pointer), e))?;
    if let Some(registry) = source.format_fields().schema_registry {
        let pointer = match source {
            Source::Kafka(_) => "/source/kafka/schemaRegistry/url",
            Source::Kinesis(_) => "/source/kinesis/schemaRegistry/url",
        };
        egress::check_url(&state.egress, &registry.url)
            .await
            .map_err(|e| Problem::egress_denied(Some(pointer), e))?;
    }
    Ok(())
}

fn require_brokers(kafka: &KafkaSource) -> ApiResult<()> {
    if kafka.brokers.trim().is_empty() {
        return Err(field_error(
            "/source/kafka/brokers",
            "give at least one broker as host:port",
        ));
    }
    Ok(())
}

fn require_region(kinesis: &KinesisSource) -> ApiResult<()> {
    if kinesis.region.trim().is_empty() {
        return Err(field_error(
            "/source/kinesis/region",
            "give the stream's AWS region, e.g. us-east-1",
        ));
    }
    Ok(())
}

/// Runs a blocking Kafka probe off the async threads.
async fn kafka<T: Send + 'static>(
    kafka: &KafkaSource,
    probe: impl FnOnce(&KafkaSource) -> Result<T, ProbeError> + Send + 'static,
) -> ApiResult<Result<T, ProbeError>> {
    require_brokers(kafka)?;
    let source = kafka.clone();
    let outcome = tokio::task::spawn_blocking(move || probe(&source))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a Kafka probe panicked");
            Problem::internal()
        })?;
    match outcome {
        Err(ProbeError::Config(e)) => Err(field_error("/source/kafka/credentials", &e.0)),
        other => Ok(other),
    }
}

async fn kinesis_client(kinesis: &KinesisSource) -> ApiResult<sluice_kinesis::Client> {
    require_region(kinesis)?;
    sluice_kinesis::client(kinesis, "sluice-api-probe")
        .await
        .map_err(|e| field_error("/source/kinesis/accessKey", &e.0))
}

/// Runs a Kinesis call with the API's deadline.
async fn within_deadline<T>(
    call: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(SOURCE_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {} seconds",
                SOURCE_TIMEOUT.as_secs()
            ))
        })
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Connect and authenticate to the source as a pipe would, and report what
/// was found or exactly what went wrong. A source that cannot be reached is
/// an answer (`ok: false`), not an error.
#[utoipa::path(post, path = "/v1/sources/check", tag = "sources", request_body = SourceRequest,
    responses((status = 200, body = SourceCheck), WriteErrors))]
async fn check_source(
    _: Developer,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SourceRequest>,
) -> ApiResult<Json<SourceCheck>> {
    admit(&state, &request.source, false).await?;
    let started = Instant::now();
    let outcome = match &request.source {
        Source::Kafka(source) => kafka(source, |s| kafka_probe::check(s, SOURCE_TIMEOUT))
            .await?
            .map(|info| {
                format!(
                    "{}, {}",
                    plural(info.brokers, "broker"),
                    plural(info.topics, "topic")
                )
            })
            .map_err(|e| e.to_string()),
        Source::Kinesis(source) => {
            let client = kinesis_client(source).await?;
            within_deadline(sluice_kinesis::probe::check(&client))
                .await
                .map(|streams| plural(streams, "stream"))
                .map_err(|e| {
                    format!(
                        "Kinesis in {} {}: {e}",
                        source.region,
                        source
                            .endpoint
                            .as_deref()
                            .map_or(String::new(), |e| format!("at {e}"))
                    )
                })
        }
    };
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(ok = outcome.is_ok(), latency_ms, "source checked");
    Ok(Json(match outcome {
        Ok(details) => SourceCheck {
            ok: true,
            latency_ms,
            error: None,
            details: Some(details),
        },
        Err(error) => SourceCheck {
            ok: false,
            latency_ms,
            error: Some(error),
            details: None,
        },
    }))
}

/// The Kafka cluster's topics (internal `__` topics left out), by name.
#[utoipa::path(post, path = "/v1/sources/topics", tag = "sources", request_body = SourceRequest,
    responses((status = 200, body = TopicList),
        (status = 502, description = "The brokers cannot be reached", body = Problem, content_type = "application/problem+json"),
        WriteErrors))]
async fn list_topics(
    _: Developer,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SourceRequest>,
) -> ApiResult<Json<TopicList>> {
    admit(&state, &request.source, false).await?;
    let Source::Kafka(source) = &request.source else {
        return Err(field_error(
            "/source",
            "topics are listed for a Kafka source",
        ));
    };
    let topics = kafka(source, |s| kafka_probe::list_topics(s, SOURCE_TIMEOUT))
        .await?
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(Json(TopicList {
        topics: topics
            .into_iter()
            .map(|t| Topic {
                name: t.name,
                partitions: t.partitions,
            })
            .collect(),
    }))
}

/// The Kinesis streams the credentials can see, by name.
#[utoipa::path(post, path = "/v1/sources/streams", tag = "sources", request_body = SourceRequest,
    responses((status = 200, body = StreamList),
        (status = 502, description = "Kinesis cannot be reached", body = Problem, content_type = "application/problem+json"),
        WriteErrors))]
async fn list_streams(
    _: Developer,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SourceRequest>,
) -> ApiResult<Json<StreamList>> {
    admit(&state, &request.source, false).await?;
    let Source::Kinesis(source) = &request.source else {
        return Err(field_error(
            "/source",
            "streams are listed for a Kinesis source",
        ));
    };
    let client = kinesis_client(source).await?;
    let streams = within_deadline(sluice_kinesis::probe::list_streams(&client))
        .await
        .map_err(unreachable)?;
    Ok(Json(StreamList {
        streams: streams
            .into_iter()
            .map(|s| Stream {
                name: s.name,
                status: s.status,
                shards: s.open_shards,
            })
            .collect(),
    }))
}

/// Up to `limit` messages of the topic or stream, newest first. Kafka: the
/// newest of every partition. Kinesis: the oldest records still in the
/// stream's first shards (what a pipe starting at TRIM_HORIZON reads first),
/// as Kinesis has no way to read the last N.
#[utoipa::path(post, path = "/v1/sources/sample", tag = "sources", request_body = SampleRequest,
    responses((status = 200, body = SourceSample),
        (status = 502, description = "The source cannot be reached", body = Problem, content_type = "application/problem+json"),
        WriteErrors))]
async fn sample_source(
    _: Developer,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SampleRequest>,
) -> ApiResult<Json<SourceSample>> {
    admit(&state, &request.source, true).await?;
    if !(1..=MAX_SAMPLE).contains(&request.limit) {
        return Err(field_error(
            "/limit",
            &format!("must be between 1 and {MAX_SAMPLE}"),
        ));
    }
    let limit = request.limit as usize;
    let messages = match &request.source {
        Source::Kafka(source) => {
            let Some(topic) = source.topics.first().cloned() else {
                return Err(field_error(
                    "/source/kafka/topics",
                    "name the topic to sample",
                ));
            };
            let sampled = kafka(source, move |s| {
                kafka_probe::sample(s, &topic, limit, SOURCE_TIMEOUT)
            })
            .await?;
            let sampled = match sampled {
                Err(e @ ProbeError::NoSuchTopic(_)) => {
                    return Err(field_error("/source/kafka/topics/0", &e.to_string()))
                }
                other => other.map_err(|e| unreachable(e.to_string()))?,
            };
            sampled
                .into_iter()
                .map(|m| {
                    (
                        m.value.clone(),
                        SampleMessage {
                            key: m.key.map(|k| String::from_utf8_lossy(&k).into_owned()),
                            partition: Some(m.partition),
                            offset: Some(m.offset),
                            timestamp: m.timestamp_ms.and_then(DateTime::from_timestamp_millis),
                            ..SampleMessage::new(m.value)
                        },
                    )
                })
                .collect::<Vec<_>>()
        }
        Source::Kinesis(source) => {
            if source.stream_name.trim().is_empty() {
                return Err(field_error(
                    "/source/kinesis/streamName",
                    "name the stream to sample",
                ));
            }
            let client = kinesis_client(source).await?;
            within_deadline(sluice_kinesis::probe::sample(
                &client,
                &source.stream_name,
                limit,
            ))
            .await
            .map_err(unreachable)?
            .into_iter()
            .map(|r| {
                (
                    r.data.clone(),
                    SampleMessage {
                        key: Some(r.partition_key),
                        shard_id: Some(r.shard_id),
                        sequence_number: Some(r.sequence_number),
                        timestamp: r.arrived_at,
                        ..SampleMessage::new(r.data)
                    },
                )
            })
            .collect::<Vec<_>>()
        }
    };
    let (raw, mut messages): (Vec<Vec<u8>>, Vec<SampleMessage>) = messages.into_iter().unzip();
    decode_samples(&state, &request.source, raw, &mut messages).await?;
    Ok(Json(SourceSample { messages }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaDiscoveryRequest {
    /// Messages as text, each a JSON object (JSONEachRow), e.g. the values
    /// of `POST /v1/sources/sample`. At most 1000.
    pub samples: Vec<String>,
    /// When given, the types suit this destination's server: an older
    /// ClickHouse without `Bool`, `DateTime64` and the like gets `UInt8`,
    /// `DateTime` and so on instead.
    #[serde(default)]
    pub destination_id: Option<uuid::Uuid>,
    /// The pipe's source. For Avro, AvroConfluent and Protobuf the columns
    /// come from the schema, not from samples: `avroSchema`, the schema
    /// `schemaRegistry.url` pins, else the latest version of the subject
    /// `<topic>-value` (`<stream>-value`); for Protobuf through a registry,
    /// the file's root message type (the first one no other message of the file holds). `samples` may then be empty.
    #[serde(default)]
    pub source: Option<Source>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredSchema {
    pub columns: Vec<DiscoveredColumn>,
    /// Samples that were not JSON objects and were left out.
    pub unparsed: usize,
    /// Where the columns came from when a schema gave them, e.g. "the
    /// latest version of subject orders-value (schema id 4)".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The registry id of that schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredColumn {
    /// A column name derived from the field (`user.name` → `user_name`).
    pub name: String,
    /// A ClickHouse type the pipe can fill from every sample.
    #[serde(rename = "type")]
    pub column_type: String,
    /// The field's path in the message; a field mapping is needed where it
    /// differs from `name`.
    pub source_field: String,
}

/// Columns for a new table, inferred from sample messages: nested objects
/// are flattened, types widened until every sample fits, `Nullable` where a
/// field is sometimes null or missing.
#[utoipa::path(post, path = "/v1/schema-discovery", tag = "sources", request_body = SchemaDiscoveryRequest,
    responses((status = 200, body = DiscoveredSchema),
        (status = 502, description = "The destination cannot be read", body = Problem, content_type = "application/problem+json"),
        WriteErrors))]
async fn discover_schema(
    _: Viewer,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SchemaDiscoveryRequest>,
) -> ApiResult<Json<DiscoveredSchema>> {
    if request.samples.len() > MAX_SAMPLES_FOR_DISCOVERY {
        return Err(field_error(
            "/samples",
            &format!("at most {MAX_SAMPLES_FOR_DISCOVERY} samples"),
        ));
    }
    let families = match request.destination_id {
        Some(id) => Some(super::tables::type_families(&state, id).await?),
        None => None,
    };
    let from_schema = match &request.source {
        Some(source) => {
            admit(&state, source, false).await?;
            sluice_registry::pipe::schema_columns(source, Some(state.egress.clone()))
                .await
                .map_err(|e| format_problem(source, e))?
        }
        None => None,
    };
    let (inference, schema, schema_id) = match from_schema {
        Some(found) => (
            sluice_formats::Inference {
                columns: found.columns,
                unparsed: 0,
            },
            Some(found.origin),
            found.schema_id,
        ),
        None => (
            sluice_formats::infer_columns(request.samples.iter().map(|s| s.as_bytes())),
            None,
            None,
        ),
    };
    Ok(Json(DiscoveredSchema {
        schema,
        schema_id,
        columns: inference
            .columns
            .into_iter()
            .map(|c| DiscoveredColumn {
                column_type: match (&families, ChType::parse(&c.column_type)) {
                    (Some(families), Ok(ty)) => {
                        fit_to_server(&ty, &|family| families.contains(family)).to_string()
                    }
                    _ => c.column_type,
                },
                name: c.name,
                source_field: c.source_field,
            })
            .collect(),
        unparsed: inference.unparsed,
    }))
}
