//! Response bodies. Specs are flattened into them; their secret fields are
//! never serialized (see `sluice_model::Secret`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_model::{DesiredState, DestinationSpec, PipeSpec, PipeState};
use sluice_store::{DestinationRecord, EventLevel, EventRecord, PipeRecord, Role};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pipe {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: PipeSpec,
    pub state: PipeState,
    /// Increases whenever a change affects the data path; replicas run the
    /// newest generation.
    pub generation: i64,
    /// Increases on every change; also sent as the ETag.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PipeRecord> for Pipe {
    fn from(r: PipeRecord) -> Self {
        Pipe {
            id: r.id,
            spec: r.spec,
            state: r.state,
            generation: r.generation,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipeStatus {
    pub id: Uuid,
    /// What the user asked for.
    pub desired_state: DesiredState,
    /// Where the pipe is.
    pub state: PipeState,
    pub replicas: ReplicaCounts,
    /// Where each live replica runs, as its worker last reported it.
    pub placements: Vec<ReplicaPlacement>,
    /// The scheduler's last decision about the pipe — a replica placed or
    /// the replica count autoscaled — with its reason (all of them are in
    /// the pipe's events, kinds `replica_placed` and `autoscaled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scheduling_decision: Option<SchedulingDecision>,
    pub generation: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    pub state_changed_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaPlacement {
    pub replica: i32,
    pub worker_id: Uuid,
    /// `starting`, `running`, `retrying` or `failed`.
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingDecision {
    pub message: String,
    pub at: DateTime<Utc>,
}

/// A worker of the fleet and what runs on it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Worker {
    pub id: Uuid,
    pub hostname: String,
    /// Capacity it registered with.
    pub millicpu: i32,
    pub memory_mib: i64,
    /// What its replicas' sizes ask for.
    pub used_millicpu: u32,
    pub used_memory_mib: u64,
    /// Being drained: its replicas move away, it takes no new ones.
    pub draining: bool,
    pub heartbeat_at: DateTime<Utc>,
    pub replicas: Vec<WorkerReplica>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerReplica {
    pub pipe_id: Uuid,
    pub replica: i32,
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaCounts {
    pub desired: u32,
    pub ready: u32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub message: String,
    pub at: DateTime<Utc>,
}

impl From<PipeRecord> for PipeStatus {
    fn from(r: PipeRecord) -> Self {
        let desired = match r.state.desired() {
            DesiredState::Running => r.desired_replicas(),
            DesiredState::Stopped | DesiredState::Deleted => 0,
        };
        PipeStatus {
            id: r.id,
            desired_state: r.state.desired(),
            state: r.state,
            replicas: ReplicaCounts {
                desired,
                ready: u32::try_from(r.ready_replicas).unwrap_or(0),
            },
            placements: Vec::new(),
            last_scheduling_decision: None,
            generation: r.generation,
            last_error: r
                .last_error
                .zip(r.last_error_at)
                .map(|(message, at)| LastError { message, at }),
            state_changed_at: r.state_changed_at,
        }
    }
}

/// What the pipe's replicas have done since it was created, as reported by
/// the workers (every few seconds).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipeMetrics {
    pub fetched_events: i64,
    pub fetched_bytes: i64,
    /// Rows acknowledged by ClickHouse.
    pub sent_rows: i64,
    /// RowBinary bytes sent, before compression.
    pub sent_bytes: i64,
    /// Records that went to the error table.
    pub errors: i64,
    /// Messages between the committed offsets and the ends of the pipe's
    /// partitions, over all replicas; absent while unknown (no replica
    /// running, or nothing committed yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_messages: Option<i64>,
    /// Kinesis: how far the pipe's furthest-behind shard is from the
    /// stream's newest record (MillisBehindLatest), over all replicas;
    /// absent while unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_millis: Option<i64>,
    /// The live replicas, as their workers last reported them (every few
    /// seconds).
    pub replicas: Vec<ReplicaMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaMetrics {
    pub replica: i32,
    /// The worker running it.
    pub worker_id: Uuid,
    /// `starting`, `running`, `retrying` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_messages: Option<i64>,
    /// Kinesis: MillisBehindLatest of the replica's furthest-behind shard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_millis: Option<i64>,
    /// CPU used by the replica's own task (decoding, encoding, inserting)
    /// since it started on its worker.
    pub cpu_seconds: f64,
    /// Bytes held in its batch and the Kafka client's fetch queue.
    pub memory_bytes: i64,
}

impl From<sluice_store::ReplicaReport> for ReplicaMetrics {
    fn from(r: sluice_store::ReplicaReport) -> Self {
        ReplicaMetrics {
            replica: r.replica,
            worker_id: r.worker_id,
            status: r.status,
            lag_messages: r.gauges.lag_messages,
            lag_millis: r.gauges.lag_millis,
            cpu_seconds: r.gauges.cpu_seconds,
            memory_bytes: r.gauges.memory_bytes,
        }
    }
}

/// The writer schemas a pipe's messages named and what they map to.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipeSchemas {
    /// `none` or `add_columns`, as the pipe is set.
    #[schema(value_type = String, example = "add_columns")]
    pub schema_evolution: sluice_model::SchemaEvolution,
    /// Oldest first.
    pub schemas: Vec<SeenWriterSchema>,
    /// Columns schema evolution added to the table, oldest first.
    pub added_columns: Vec<AddedTableColumn>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeenWriterSchema {
    /// The registry id.
    pub schema_id: i64,
    /// `AVRO` or `PROTOBUF`.
    pub kind: String,
    /// Protobuf: the message type the columns are of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    pub first_seen: DateTime<Utc>,
    /// The columns the schema's fields map to.
    #[schema(value_type = Vec<Object>)]
    pub columns: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddedTableColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: String,
    pub source_field: String,
    /// The writer schema that brought the field.
    pub schema_id: i64,
    /// The statement that added it.
    pub statement: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipeEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    #[schema(value_type = String, example = "info")]
    pub level: EventLevel,
    /// Stable kind, e.g. `created`, `state_changed`, `updated`.
    pub kind: String,
    pub message: String,
}

impl From<EventRecord> for PipeEvent {
    fn from(e: EventRecord) -> Self {
        PipeEvent {
            id: e.id,
            at: e.at,
            level: e.level,
            kind: e.kind,
            message: e.message,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: DestinationSpec,
    /// Whether a password is stored (it is never returned).
    pub has_password: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<DestinationRecord> for Destination {
    fn from(r: DestinationRecord) -> Self {
        Destination {
            id: r.id,
            has_password: r.sealed_secrets.is_some(),
            spec: r.spec,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationCheck {
    /// True when the server answered and accepted the credentials.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// The exact failure: connection, TLS, HTTP status or ClickHouse error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    Admin,
    Developer,
    Viewer,
}

impl From<KeyRole> for Role {
    fn from(r: KeyRole) -> Role {
        match r {
            KeyRole::Admin => Role::Admin,
            KeyRole::Developer => Role::Developer,
            KeyRole::Viewer => Role::Viewer,
        }
    }
}

impl From<Role> for KeyRole {
    fn from(r: Role) -> KeyRole {
        match r {
            Role::Admin => KeyRole::Admin,
            Role::Developer => KeyRole::Developer,
            Role::Viewer => KeyRole::Viewer,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub role: KeyRole,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<sluice_store::ApiKeyRecord> for ApiKey {
    fn from(r: sluice_store::ApiKeyRecord) -> Self {
        ApiKey {
            id: r.id,
            name: r.name,
            role: r.role.into(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// The only response that ever contains a key's secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// Shown once; store it now.
    pub secret: String,
    /// `Authorization: Bearer <token>`.
    pub token: String,
    /// `Authorization: Basic <basic>`.
    pub basic: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    pub role: KeyRole,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Paginated<T: ToSchema> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Paginated<T> {
    pub fn from_page<R, C: ToString>(page: sluice_store::Page<R, C>) -> Self
    where
        T: From<R>,
    {
        Paginated {
            data: page.items.into_iter().map(T::from).collect(),
            next_cursor: page.next.map(crate::extract::encode_cursor),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateCommand {
    Start,
    Stop,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    pub command: StateCommand,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The key making the request.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub key_id: String,
    pub name: String,
    /// Viewers may only read; developers and admins may change pipes.
    pub role: KeyRole,
}

/// A pipe's recent history in fixed buckets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricHistory {
    /// Length of a bucket; a rate is a bucket's count divided by it.
    pub bucket_seconds: u32,
    /// Oldest first. Buckets without any report are absent: no replica was
    /// running then, so nothing moved and the lag is unknown.
    pub points: Vec<MetricPoint>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricPoint {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    pub fetched_events: i64,
    pub fetched_bytes: i64,
    pub sent_rows: i64,
    pub sent_bytes: i64,
    pub errors: i64,
    /// Kafka: messages behind at the bucket's last report, over all
    /// replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_messages: Option<i64>,
    /// Kinesis: the furthest-behind shard's MillisBehindLatest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_millis: Option<i64>,
}

impl From<sluice_store::MetricBucket> for MetricPoint {
    fn from(b: sluice_store::MetricBucket) -> Self {
        MetricPoint {
            at: b.at,
            fetched_events: b.counters.fetched_events,
            fetched_bytes: b.counters.fetched_bytes,
            sent_rows: b.counters.sent_rows,
            sent_bytes: b.counters.sent_bytes,
            errors: b.counters.errors,
            lag_messages: b.lag_messages,
            lag_millis: b.lag_millis,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityList {
    /// One entry per pipe that reported in the last hour.
    pub data: Vec<PipeActivity>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipeActivity {
    pub pipe_id: Uuid,
    /// Rows acknowledged by ClickHouse per second, over the last minute.
    pub rows_per_second: f64,
    pub bytes_per_second: f64,
    /// Records sent to the error table in the last hour.
    pub errors_last_hour: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_messages: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_millis: Option<i64>,
}

impl From<sluice_store::PipeActivity> for PipeActivity {
    fn from(a: sluice_store::PipeActivity) -> Self {
        PipeActivity {
            pipe_id: a.pipe_id,
            rows_per_second: a.rows_per_second,
            bytes_per_second: a.bytes_per_second,
            errors_last_hour: a.errors_last_hour,
            lag_messages: a.lag_messages,
            lag_millis: a.lag_millis,
        }
    }
}
