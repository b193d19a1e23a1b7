//! The pipe specification as users write it (REST body, Terraform, web UI).
//!
//! Secret fields are `Option<Secret>` with `skip_serializing`: they are read
//! from requests but can never be written back out, whether to a response or
//! to the JSON document the store keeps. [`PipeSpec::secret_slots`] is the one
//! list of where secrets live, used to move them into and out of the
//! encrypted secret bag.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use sluice_clickhouse_types::{expr, ChType};

use crate::format::FormatFields;
pub use crate::format::{Format, SchemaRegistry};
use crate::secret::Secret;
use crate::settings::PipeSettings;
use crate::size::ReplicaSize;
use crate::validate::{
    check_description, check_display_name, check_identifier, check_pem, FieldError, Validation,
};

pub const MAX_REPLICAS: u32 = 10;
pub const MAX_TOPICS: usize = 100;
pub const MAX_BROKERS: usize = 50;
pub const MAX_COLUMNS: usize = 1000;
pub const MAX_FIELD_MAPPINGS: usize = 1000;
pub const MAX_SOURCE_FIELD_CHARS: usize = 1024;
pub const MAX_COLUMN_TYPE_CHARS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipeSpec {
    /// Letters, digits, spaces and `_ . -`; at most 128 characters.
    #[schema(example = "orders to ClickHouse")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub source: Source,
    pub destination: PipeDestination,
    /// Source field (a dotted path such as `order.customer.id`, or a virtual
    /// column such as `_offset`) to destination column. Without mappings,
    /// each column is filled from the source field of the same name.
    #[serde(default)]
    pub field_mappings: Vec<FieldMapping>,
    #[serde(default)]
    pub scaling: Scaling,
    #[serde(default)]
    pub settings: PipeSettings,
    /// Every record lands exactly once, crashes, fencing and rebalances
    /// included: each insert is one contiguous range of one partition
    /// (shard) with a deduplication token derived from it, and a range is
    /// recorded before it is inserted so the next owner rebuilds the same
    /// block. Needs a destination server with insert deduplication tokens
    /// (22.2 and later; creating the pipe contacts it and refuses older
    /// servers) and a table that deduplicates (a managed table gets
    /// `non_replicated_deduplication_window`; Replicated and Shared engines
    /// do by default). Immutable.
    #[serde(default)]
    pub exactly_once: bool,
    /// What happens when a message's writer schema (AvroConfluent, or
    /// Protobuf through a registry) has fields the table has no columns
    /// for. `none` (the default): they are not loaded, and an event says so
    /// once per schema. `add_columns`: the managed table gains a Nullable
    /// column per new field (`ALTER TABLE … ADD COLUMN`, recorded as an
    /// event with the statement) and the rows carry them from then on.
    /// Removed or retyped fields never drop or alter a column; they are
    /// reported as an event. `add_columns` needs a managed table, full
    /// permissions and a registry format.
    #[serde(default)]
    pub schema_evolution: SchemaEvolution,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchemaEvolution {
    #[default]
    None,
    AddColumns,
}

/// Exactly one of `kafka` or `kinesis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    Kafka(KafkaSource),
    Kinesis(KinesisSource),
}

impl Source {
    /// The source's fields, validated as a pipe's are (pointers under
    /// `/source`); the API's source probes use it too.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Validation::new();
        self.validate_into(&mut v);
        v.finish()
    }

    fn validate_into(&self, v: &mut Validation) {
        let p = match self {
            Source::Kafka(kafka) => {
                kafka.validate(v, "/source/kafka");
                "/source/kafka"
            }
            Source::Kinesis(kinesis) => {
                kinesis.validate(v, "/source/kinesis");
                "/source/kinesis"
            }
        };
        self.format_fields().validate(v, p);
    }

    pub fn format_fields(&self) -> FormatFields<'_> {
        macro_rules! fields {
            ($s:expr) => {
                FormatFields {
                    format: $s.format,
                    schema_registry: $s.schema_registry.as_ref(),
                    avro_schema: $s.avro_schema.as_deref(),
                    protobuf_schema: $s.protobuf_schema.as_ref(),
                    message_type: $s.message_type.as_deref(),
                }
            };
        }
        match self {
            Source::Kafka(kafka) => fields!(kafka),
            Source::Kinesis(kinesis) => fields!(kinesis),
        }
    }

    /// A Kinesis pipe reading through enhanced fan-out registers a stream
    /// consumer, removed with the pipe.
    pub fn uses_stream_consumer(&self) -> bool {
        matches!(self, Source::Kinesis(k) if k.use_enhanced_fan_out)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSource {
    /// Bootstrap servers, `host:port` separated by commas. Immutable.
    #[schema(example = "127.0.0.1:9092")]
    pub brokers: String,
    /// Immutable.
    #[schema(example = json!(["orders"]))]
    pub topics: Vec<String>,
    /// Defaults to `sluice-<pipe id>`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// Where a new consumer group starts reading. Immutable.
    #[serde(default)]
    pub offset: KafkaOffset,
    #[serde(default)]
    pub authentication: KafkaAuthentication,
    /// Required for PLAIN and SCRAM (username, password) and MUTUAL_TLS
    /// (certificate, privateKey).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<KafkaCredentials>,
    /// PEM bundle trusted for the brokers' TLS certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// Immutable.
    #[serde(default)]
    pub format: Format,
    /// Where Avro and Protobuf schemas come from (`format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_registry: Option<SchemaRegistry>,
    /// An Avro schema (JSON): for `Avro`, the writer schema of every
    /// message; for `AvroConfluent`, the reader schema each message is
    /// resolved against. At most 1 MiB; checked when the pipe is saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avro_schema: Option<String>,
    /// For plain `Protobuf` messages: `.proto` files by the name imports
    /// use (`shop/orders.proto`), at most 64 of 1 MiB each; compiled when
    /// the pipe is saved. The well-known types (`google/protobuf/…`) are
    /// built in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protobuf_schema: Option<BTreeMap<String, String>>,
    /// The fully qualified type of plain Protobuf messages, e.g.
    /// `shop.Order`; required with `protobufSchema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    /// Read only committed records of transactional producers.
    #[serde(default)]
    pub read_committed: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaOffset {
    #[serde(default)]
    pub strategy: OffsetStrategy,
    /// Required with `from_timestamp`, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OffsetStrategy {
    /// The default: nothing already in the topic is skipped.
    #[default]
    FromBeginning,
    FromLatest,
    FromTimestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub enum KafkaAuthentication {
    #[default]
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "MUTUAL_TLS")]
    MutualTls,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaCredentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "crate::secret::never_written",
        serialize_with = "crate::secret::refuse_to_write"
    )]
    pub password: Option<Secret>,
    /// PEM client certificate for MUTUAL_TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// PEM private key for MUTUAL_TLS.
    #[serde(
        default,
        skip_serializing_if = "crate::secret::never_written",
        serialize_with = "crate::secret::refuse_to_write"
    )]
    pub private_key: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KinesisSource {
    /// Immutable.
    pub stream_name: String,
    /// Immutable.
    #[schema(example = "us-east-1")]
    pub region: String,
    /// Endpoint override for emulators and VPC endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Immutable.
    #[serde(default)]
    pub iterator_type: IteratorType,
    /// Required with AT_TIMESTAMP, refused otherwise. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub use_enhanced_fan_out: bool,
    #[serde(default)]
    pub authentication: KinesisAuthentication,
    /// Required for IAM_USER; for IAM_ROLE, the credentials that assume it
    /// (the process's own credentials when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<AccessKey>,
    /// Role ARN, required for IAM_ROLE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_role: Option<String>,
    /// The external id the role's trust policy requires, if any (IAM_ROLE
    /// only). Not a secret: AWS treats it as an identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Immutable.
    #[serde(default)]
    pub format: Format,
    /// Where Avro and Protobuf schemas come from (`format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_registry: Option<SchemaRegistry>,
    /// An Avro schema (JSON): for `Avro`, the writer schema of every
    /// message; for `AvroConfluent`, the reader schema each message is
    /// resolved against. At most 1 MiB; checked when the pipe is saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avro_schema: Option<String>,
    /// For plain `Protobuf` messages: `.proto` files by the name imports
    /// use (`shop/orders.proto`), at most 64 of 1 MiB each; compiled when
    /// the pipe is saved. The well-known types (`google/protobuf/…`) are
    /// built in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protobuf_schema: Option<BTreeMap<String, String>>,
    /// The fully qualified type of plain Protobuf messages, e.g.
    /// `shop.Order`; required with `protobufSchema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IteratorType {
    /// The default: nothing already in the stream is skipped.
    #[default]
    TrimHorizon,
    Latest,
    AtTimestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KinesisAuthentication {
    #[default]
    IamUser,
    IamRole,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    #[serde(
        default,
        skip_serializing_if = "crate::secret::never_written",
        serialize_with = "crate::secret::refuse_to_write"
    )]
    pub secret_key: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipeDestination {
    /// A destination created with `POST /v1/destinations`. Immutable.
    pub destination_id: Uuid,
    /// Defaults to the destination's database. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Immutable.
    pub table: String,
    /// Create the table from `columns` and `tableDefinition` when the pipe
    /// starts, instead of writing to an existing one. Immutable.
    #[serde(default)]
    pub managed_table: bool,
    /// Required when `managedTable` is true, refused otherwise. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_definition: Option<TableDefinition>,
    /// The destination columns. Immutable for managed tables.
    #[serde(default)]
    pub columns: Vec<Column>,
    /// `full` (the default): Sluice creates what it needs; `table_only`:
    /// Sluice runs no DDL and needs INSERT on the table and its error table
    /// only.
    #[serde(default)]
    pub permissions: Permissions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableDefinition {
    #[serde(default)]
    pub engine: TableEngine,
    /// Column names of the ORDER BY key.
    #[serde(default)]
    pub sorting_key: Vec<String>,
    /// PARTITION BY expression, e.g. `toYYYYMM(created_at)`: the declared
    /// columns (bare, or in backquotes), whole numbers, single-quoted
    /// strings, `+ - * / %`, comparisons, parenthesised tuples and calls to
    /// the functions listed in docs/tables.md; no other syntax (clauses,
    /// comments, other functions) is accepted. At most 1024 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
    /// PRIMARY KEY expression when it differs from the sorting key; the
    /// same grammar as `partitionBy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub enum TableEngine {
    #[default]
    MergeTree,
    ReplacingMergeTree,
    SummingMergeTree,
    Null,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    /// A ClickHouse type, e.g. `Nullable(DateTime64(3))`.
    #[serde(rename = "type")]
    pub column_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permissions {
    /// Sluice creates the managed table and the error table beside it.
    #[default]
    Full,
    /// Sluice runs no DDL: the table and its error table
    /// (`<table>_sluice_errors`) exist already and the destination's user
    /// needs only INSERT on them; starting the pipe checks both and, when
    /// the error table is missing, says how to create it. Not with
    /// `managedTable`.
    TableOnly,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldMapping {
    pub source_field: String,
    pub destination_field: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scaling {
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 10, default = 1)]
    pub replicas: u32,
    #[serde(default)]
    pub replica_size: ReplicaSize,
    /// When set, the scheduler moves the replica count between these bounds
    /// on consumer lag; `replicas` is then the starting count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
}

fn one() -> u32 {
    1
}

impl Default for Scaling {
    fn default() -> Self {
        Self {
            replicas: 1,
            replica_size: ReplicaSize::default(),
            autoscaling: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Autoscaling {
    #[schema(minimum = 1, maximum = 10)]
    pub min_replicas: u32,
    #[schema(minimum = 1, maximum = 10)]
    pub max_replicas: u32,
}

impl Scaling {
    /// How many replicas should run: with autoscaling on, the autoscaler's
    /// current count (starting from `replicas`) kept within the bounds, so
    /// narrowing the bounds takes effect at once; otherwise `replicas`.
    pub fn replicas_now(&self, autoscaled: Option<u32>) -> u32 {
        match self.autoscaling {
            Some(bounds) => autoscaled.unwrap_or(self.replicas).clamp(
                bounds.min_replicas,
                bounds.max_replicas.max(bounds.min_replicas),
            ),
            None => self.replicas,
        }
    }

    pub fn validate(&self, v: &mut Validation, pointer: &str) {
        let range = format!("must be between 1 and {MAX_REPLICAS}");
        v.check(
            (1..=MAX_REPLICAS).contains(&self.replicas),
            format!("{pointer}/replicas"),
            &range,
        );
        if let Some(auto) = self.autoscaling {
            let min_ok = (1..=MAX_REPLICAS).contains(&auto.min_replicas);
            let max_ok = (1..=MAX_REPLICAS).contains(&auto.max_replicas);
            v.check(min_ok, format!("{pointer}/autoscaling/minReplicas"), &range);
            v.check(max_ok, format!("{pointer}/autoscaling/maxReplicas"), &range);
            if min_ok && max_ok {
                v.check(
                    auto.min_replicas <= auto.max_replicas,
                    format!("{pointer}/autoscaling/maxReplicas"),
                    "must not be less than minReplicas",
                );
                v.check(
                    (auto.min_replicas..=auto.max_replicas).contains(&self.replicas),
                    format!("{pointer}/replicas"),
                    "must lie between autoscaling.minReplicas and autoscaling.maxReplicas",
                );
            }
        }
    }
}

/// Where a secret lives inside a pipe spec; the key under which the store
/// keeps it in the encrypted secret bag.
pub type SecretSlot<'a> = (&'static str, &'a mut Option<Secret>);

impl PipeSpec {
    pub fn default_consumer_group(pipe_id: Uuid) -> String {
        format!("sluice-{pipe_id}")
    }

    /// Fills defaults that depend on the pipe's id.
    pub fn fill_defaults(&mut self, pipe_id: Uuid) {
        if let Source::Kafka(kafka) = &mut self.source {
            if kafka.consumer_group.is_none() {
                kafka.consumer_group = Some(Self::default_consumer_group(pipe_id));
            }
        }
    }

    pub fn source_kind(&self) -> &'static str {
        match self.source {
            Source::Kafka(_) => "kafka",
            Source::Kinesis(_) => "kinesis",
        }
    }

    /// Every secret-holding field that currently exists in this spec.
    pub fn secret_slots(&mut self) -> Vec<SecretSlot<'_>> {
        let mut slots = Vec::new();
        match &mut self.source {
            Source::Kafka(kafka) => {
                if let Some(credentials) = &mut kafka.credentials {
                    slots.push((
                        "source.kafka.credentials.password",
                        &mut credentials.password,
                    ));
                    slots.push((
                        "source.kafka.credentials.privateKey",
                        &mut credentials.private_key,
                    ));
                }
                if let Some(credentials) = kafka
                    .schema_registry
                    .as_mut()
                    .and_then(|r| r.credentials.as_mut())
                {
                    slots.push((
                        "source.kafka.schemaRegistry.credentials.password",
                        &mut credentials.password,
                    ));
                }
            }
            Source::Kinesis(kinesis) => {
                if let Some(access_key) = &mut kinesis.access_key {
                    slots.push((
                        "source.kinesis.accessKey.secretKey",
                        &mut access_key.secret_key,
                    ));
                }
                if let Some(credentials) = kinesis
                    .schema_registry
                    .as_mut()
                    .and_then(|r| r.credentials.as_mut())
                {
                    slots.push((
                        "source.kinesis.schemaRegistry.credentials.password",
                        &mut credentials.password,
                    ));
                }
            }
        }
        slots
    }

    /// Where the source's secrets go and whose they are: changing any of
    /// these needs the secrets again (`crate::secret::secrets_to_resend`).
    pub fn secret_binding(&self) -> crate::secret::Binding {
        let registry = self.source.format_fields().schema_registry;
        let registry_url = registry.map(|r| r.url.clone());
        let registry_user = registry
            .and_then(|r| r.credentials.as_ref())
            .map(|c| c.username.clone());
        match &self.source {
            Source::Kafka(kafka) => {
                let scope = "source.kafka.credentials";
                vec![
                    ("source.kafka.brokers", Some(kafka.brokers.clone()), scope),
                    (
                        "source.kafka.authentication",
                        Some(format!("{:?}", kafka.authentication)),
                        scope,
                    ),
                    (
                        "source.kafka.credentials.username",
                        kafka.credentials.as_ref().and_then(|c| c.username.clone()),
                        scope,
                    ),
                    // The registry's password only goes to the registry
                    // it was given for, as the same user.
                    (
                        "source.kafka.schemaRegistry.url",
                        registry_url,
                        "source.kafka.schemaRegistry",
                    ),
                    (
                        "source.kafka.schemaRegistry.credentials.username",
                        registry_user,
                        "source.kafka.schemaRegistry",
                    ),
                ]
            }
            Source::Kinesis(kinesis) => {
                let scope = "source.kinesis.accessKey";
                vec![
                    ("source.kinesis.region", Some(kinesis.region.clone()), scope),
                    ("source.kinesis.endpoint", kinesis.endpoint.clone(), scope),
                    (
                        "source.kinesis.accessKey.accessKeyId",
                        kinesis.access_key.as_ref().map(|k| k.access_key_id.clone()),
                        scope,
                    ),
                    ("source.kinesis.iamRole", kinesis.iam_role.clone(), scope),
                    (
                        "source.kinesis.schemaRegistry.url",
                        registry_url,
                        "source.kinesis.schemaRegistry",
                    ),
                    (
                        "source.kinesis.schemaRegistry.credentials.username",
                        registry_user,
                        "source.kinesis.schemaRegistry",
                    ),
                ]
            }
        }
    }

    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Validation::new();
        check_display_name(&mut v, "/name", &self.name);
        check_description(&mut v, "/description", &self.description);
        self.source.validate_into(&mut v);
        self.destination.validate(&mut v, "/destination");
        self.validate_field_mappings(&mut v);
        self.scaling.validate(&mut v, "/scaling");
        self.settings.validate(&mut v, "/settings");
        if self.schema_evolution == SchemaEvolution::AddColumns {
            let fields = self.source.format_fields();
            let registry_format = matches!(fields.format, Format::AvroConfluent | Format::Protobuf)
                && fields.schema_registry.is_some();
            v.check(
                registry_format,
                "/schemaEvolution",
                "add_columns follows the writer schemas messages name: it needs AvroConfluent, or Protobuf with schemaRegistry",
            );
            v.check(
                self.destination.managed_table,
                "/schemaEvolution",
                "add_columns alters the table Sluice manages: it needs managedTable",
            );
            v.check(
                self.destination.permissions == Permissions::Full,
                "/schemaEvolution",
                "add_columns runs ALTER TABLE: it needs permissions full",
            );
        }
        v.finish()
    }

    fn validate_field_mappings(&self, v: &mut Validation) {
        if self.field_mappings.len() > MAX_FIELD_MAPPINGS {
            v.error(
                "/fieldMappings",
                format!("must have at most {MAX_FIELD_MAPPINGS} entries"),
            );
            return;
        }
        let columns: HashSet<&str> = self
            .destination
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let mut targets = HashSet::new();
        for (i, mapping) in self.field_mappings.iter().enumerate() {
            let pointer = format!("/fieldMappings/{i}");
            let source = &mapping.source_field;
            if source.is_empty() || source.chars().count() > MAX_SOURCE_FIELD_CHARS {
                v.error(
                    format!("{pointer}/sourceField"),
                    format!("must be 1 to {MAX_SOURCE_FIELD_CHARS} characters"),
                );
            } else if source.chars().any(char::is_control) {
                v.error(
                    format!("{pointer}/sourceField"),
                    "must not contain control characters",
                );
            }
            let target = mapping.destination_field.as_str();
            check_identifier(v, &format!("{pointer}/destinationField"), target, true);
            if !columns.is_empty() && !columns.contains(target) {
                v.error(
                    format!("{pointer}/destinationField"),
                    format!("`{target}` is not one of the destination columns"),
                );
            }
            if !targets.insert(target) {
                v.error(
                    format!("{pointer}/destinationField"),
                    format!("`{target}` is mapped more than once"),
                );
            }
        }
    }

    /// Field errors for every immutable field that differs between the
    /// stored spec and an edited one. Sending an unchanged immutable value is
    /// fine (Terraform and the UI send whole documents).
    pub fn immutable_changes(&self, edited: &PipeSpec) -> Vec<FieldError> {
        let mut v = Validation::new();
        let changed = |v: &mut Validation, pointer: &str, same: bool| {
            v.check(
                same,
                pointer,
                "is immutable; create a new pipe to change it",
            )
        };
        changed(
            &mut v,
            "/exactlyOnce",
            self.exactly_once == edited.exactly_once,
        );
        match (&self.source, &edited.source) {
            (Source::Kafka(a), Source::Kafka(b)) => {
                let p = "/source/kafka";
                changed(&mut v, &format!("{p}/brokers"), a.brokers == b.brokers);
                changed(&mut v, &format!("{p}/topics"), a.topics == b.topics);
                changed(
                    &mut v,
                    &format!("{p}/consumerGroup"),
                    a.consumer_group == b.consumer_group,
                );
                changed(&mut v, &format!("{p}/offset"), a.offset == b.offset);
                changed(&mut v, &format!("{p}/format"), a.format == b.format);
            }
            (Source::Kinesis(a), Source::Kinesis(b)) => {
                let p = "/source/kinesis";
                changed(
                    &mut v,
                    &format!("{p}/streamName"),
                    a.stream_name == b.stream_name,
                );
                changed(&mut v, &format!("{p}/region"), a.region == b.region);
                changed(
                    &mut v,
                    &format!("{p}/iteratorType"),
                    a.iterator_type == b.iterator_type,
                );
                changed(
                    &mut v,
                    &format!("{p}/timestamp"),
                    a.timestamp == b.timestamp,
                );
                changed(&mut v, &format!("{p}/format"), a.format == b.format);
            }
            _ => v.error(
                "/source",
                "the source kind is immutable; create a new pipe to change it",
            ),
        }
        let (a, b) = (&self.destination, &edited.destination);
        let p = "/destination";
        changed(
            &mut v,
            &format!("{p}/destinationId"),
            a.destination_id == b.destination_id,
        );
        changed(&mut v, &format!("{p}/database"), a.database == b.database);
        changed(&mut v, &format!("{p}/table"), a.table == b.table);
        changed(
            &mut v,
            &format!("{p}/managedTable"),
            a.managed_table == b.managed_table,
        );
        changed(
            &mut v,
            &format!("{p}/tableDefinition"),
            a.table_definition == b.table_definition,
        );
        if a.managed_table {
            changed(&mut v, &format!("{p}/columns"), a.columns == b.columns);
        }
        v.finish().err().unwrap_or_default()
    }
}

fn check_host_port(v: &mut Validation, pointer: &str, entry: &str) {
    let Some((host, port)) = entry.rsplit_once(':') else {
        v.error(pointer, format!("`{entry}` must be host:port"));
        return;
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    };
    if !host_ok {
        v.error(
            pointer,
            format!("`{host}` is not a valid host name or address"),
        );
    }
    if !port.parse::<u16>().is_ok_and(|p| p > 0) {
        v.error(
            pointer,
            format!("`{port}` is not a port between 1 and 65535"),
        );
    }
}

fn kafka_name_ok(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl KafkaSource {
    fn validate(&self, v: &mut Validation, p: &str) {
        let brokers: Vec<&str> = self.brokers.split(',').map(str::trim).collect();
        if self.brokers.trim().is_empty() {
            v.error(format!("{p}/brokers"), "must list at least one host:port");
        } else if brokers.len() > MAX_BROKERS {
            v.error(
                format!("{p}/brokers"),
                format!("must list at most {MAX_BROKERS} brokers"),
            );
        } else {
            for broker in brokers {
                check_host_port(v, &format!("{p}/brokers"), broker);
            }
        }

        if self.topics.is_empty() || self.topics.len() > MAX_TOPICS {
            v.error(
                format!("{p}/topics"),
                format!("must list 1 to {MAX_TOPICS} topics"),
            );
        } else {
            let mut seen = HashSet::new();
            for (i, topic) in self.topics.iter().enumerate() {
                if !kafka_name_ok(topic) {
                    v.error(
                        format!("{p}/topics/{i}"),
                        "must be 1 to 249 ASCII letters, digits, `.`, `_` or `-`",
                    );
                } else if !seen.insert(topic) {
                    v.error(
                        format!("{p}/topics/{i}"),
                        format!("`{topic}` is listed twice"),
                    );
                }
            }
        }

        if let Some(group) = &self.consumer_group {
            v.check(
                kafka_name_ok(group),
                format!("{p}/consumerGroup"),
                "must be 1 to 249 ASCII letters, digits, `.`, `_` or `-`",
            );
        }

        match (self.offset.strategy, self.offset.timestamp) {
            (OffsetStrategy::FromTimestamp, None) => v.error(
                format!("{p}/offset/timestamp"),
                "is required with strategy from_timestamp",
            ),
            (OffsetStrategy::FromBeginning | OffsetStrategy::FromLatest, Some(_)) => v.error(
                format!("{p}/offset/timestamp"),
                "is only allowed with strategy from_timestamp",
            ),
            _ => {}
        }

        let cp = format!("{p}/credentials");
        match (self.authentication, &self.credentials) {
            (KafkaAuthentication::None, Some(_)) => {
                v.error(&cp, "must be absent with authentication NONE")
            }
            (KafkaAuthentication::None, None) => {}
            (
                KafkaAuthentication::Plain
                | KafkaAuthentication::ScramSha256
                | KafkaAuthentication::ScramSha512,
                credentials,
            ) => {
                let credentials = credentials.clone().unwrap_or_default();
                v.check(
                    credentials
                        .username
                        .as_deref()
                        .is_some_and(|u| !u.is_empty() && u.len() <= 512),
                    format!("{cp}/username"),
                    "is required (1 to 512 bytes) for SASL authentication",
                );
                v.check(
                    credentials
                        .password
                        .as_ref()
                        .is_some_and(|s| !s.expose().is_empty() && s.expose().len() <= 4096),
                    format!("{cp}/password"),
                    "is required (1 to 4096 bytes) for SASL authentication",
                );
                v.check(
                    credentials.certificate.is_none() && credentials.private_key.is_none(),
                    &cp,
                    "certificate and privateKey are only used with MUTUAL_TLS",
                );
            }
            (KafkaAuthentication::MutualTls, credentials) => {
                let credentials = credentials.clone().unwrap_or_default();
                match &credentials.certificate {
                    Some(pem) => check_pem(v, &format!("{cp}/certificate"), pem, "certificate"),
                    None => v.error(format!("{cp}/certificate"), "is required for MUTUAL_TLS"),
                }
                match &credentials.private_key {
                    Some(pem) => {
                        check_pem(v, &format!("{cp}/privateKey"), pem.expose(), "private key")
                    }
                    None => v.error(format!("{cp}/privateKey"), "is required for MUTUAL_TLS"),
                }
                v.check(
                    credentials.username.is_none() && credentials.password.is_none(),
                    &cp,
                    "username and password are only used with SASL authentication",
                );
            }
        }
        if let Some(pem) = &self.ca_certificate {
            check_pem(v, &format!("{p}/caCertificate"), pem, "certificate");
        }
    }
}

impl KinesisSource {
    fn validate(&self, v: &mut Validation, p: &str) {
        v.check(
            (1..=128).contains(&self.stream_name.len())
                && self
                    .stream_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            format!("{p}/streamName"),
            "must be 1 to 128 ASCII letters, digits, `.`, `_` or `-`",
        );
        v.check(
            (1..=32).contains(&self.region.len())
                && self
                    .region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && self.region.contains('-'),
            format!("{p}/region"),
            "must be an AWS region such as us-east-1",
        );
        if let Some(endpoint) = &self.endpoint {
            check_http_url(v, &format!("{p}/endpoint"), endpoint);
        }
        match (self.iterator_type, self.timestamp) {
            (IteratorType::AtTimestamp, None) => v.error(
                format!("{p}/timestamp"),
                "is required with iteratorType AT_TIMESTAMP",
            ),
            (IteratorType::TrimHorizon | IteratorType::Latest, Some(_)) => v.error(
                format!("{p}/timestamp"),
                "is only allowed with iteratorType AT_TIMESTAMP",
            ),
            _ => {}
        }
        if let Some(key) = &self.access_key {
            v.check(
                (16..=128).contains(&key.access_key_id.len())
                    && key.access_key_id.chars().all(|c| c.is_ascii_alphanumeric()),
                format!("{p}/accessKey/accessKeyId"),
                "must be 16 to 128 ASCII letters and digits",
            );
            v.check(
                key.secret_key
                    .as_ref()
                    .is_some_and(|s| !s.expose().is_empty() && s.expose().len() <= 1024),
                format!("{p}/accessKey/secretKey"),
                "is required (1 to 1024 bytes)",
            );
        }
        match self.authentication {
            KinesisAuthentication::IamUser => {
                v.check(
                    self.access_key.is_some(),
                    format!("{p}/accessKey"),
                    "is required with authentication IAM_USER",
                );
                v.check(
                    self.iam_role.is_none(),
                    format!("{p}/iamRole"),
                    "is only used with authentication IAM_ROLE",
                );
                v.check(
                    self.external_id.is_none(),
                    format!("{p}/externalId"),
                    "is only used with authentication IAM_ROLE",
                );
            }
            KinesisAuthentication::IamRole => match &self.iam_role {
                None => v.error(
                    format!("{p}/iamRole"),
                    "is required with authentication IAM_ROLE",
                ),
                Some(arn) => v.check(
                    arn.starts_with("arn:")
                        && arn.contains(":role/")
                        && arn.len() <= 2048
                        && !arn.chars().any(|c| c.is_whitespace() || c.is_control()),
                    format!("{p}/iamRole"),
                    "must be a role ARN such as arn:aws:iam::123456789012:role/reader",
                ),
            },
        }
        if let Some(external_id) = &self.external_id {
            // AWS's own limits for sts:ExternalId.
            v.check(
                (2..=1224).contains(&external_id.len())
                    && external_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c)),
                format!("{p}/externalId"),
                "must be 2 to 1224 characters of letters, digits and +=,.@:/-_",
            );
        }
    }
}

impl PipeDestination {
    fn validate(&self, v: &mut Validation, p: &str) {
        if let Some(database) = &self.database {
            check_identifier(v, &format!("{p}/database"), database, false);
        }
        check_identifier(v, &format!("{p}/table"), &self.table, false);
        if self.columns.len() > MAX_COLUMNS {
            v.error(
                format!("{p}/columns"),
                format!("must have at most {MAX_COLUMNS} entries"),
            );
            return;
        }
        let mut names = HashSet::new();
        for (i, column) in self.columns.iter().enumerate() {
            check_identifier(v, &format!("{p}/columns/{i}/name"), &column.name, true);
            if !names.insert(column.name.as_str()) {
                v.error(
                    format!("{p}/columns/{i}/name"),
                    format!("`{}` is listed twice", column.name),
                );
            }
            check_column_type(v, &format!("{p}/columns/{i}/type"), &column.column_type);
        }
        match (&self.table_definition, self.managed_table) {
            (None, true) => v.error(
                format!("{p}/tableDefinition"),
                "is required when managedTable is true",
            ),
            (Some(_), false) => v.error(
                format!("{p}/tableDefinition"),
                "is only used when managedTable is true",
            ),
            _ => {}
        }
        if self.managed_table && self.permissions == Permissions::TableOnly {
            v.error(
                format!("{p}/permissions"),
                "table_only means Sluice runs no DDL, so it cannot create a managed table; set managedTable to false and create the table (and its error table) yourself",
            );
        }
        if self.managed_table && self.columns.is_empty() {
            v.error(
                format!("{p}/columns"),
                "must list the columns of a managed table",
            );
        }
        if let Some(definition) = &self.table_definition {
            for (i, key) in definition.sorting_key.iter().enumerate() {
                v.check(
                    names.contains(key.as_str()),
                    format!("{p}/tableDefinition/sortingKey/{i}"),
                    format!("`{key}` is not one of the columns"),
                );
            }
            let declared: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
            for (field, expression) in [
                ("partitionBy", &definition.partition_by),
                ("primaryKey", &definition.primary_key),
            ] {
                if let Some(expression) = expression {
                    check_expression(
                        v,
                        &format!("{p}/tableDefinition/{field}"),
                        expression,
                        &declared,
                    );
                }
            }
        }
    }
}

/// The same parser the worker creates the table with: a type it cannot
/// write is refused here, not after the pipe exists.
fn check_column_type(v: &mut Validation, pointer: &str, column_type: &str) {
    if column_type.len() > MAX_COLUMN_TYPE_CHARS {
        v.error(
            pointer,
            format!("is longer than {MAX_COLUMN_TYPE_CHARS} characters"),
        );
        return;
    }
    if let Err(e) = ChType::parse(column_type) {
        v.error(
            pointer,
            format!(
                "`{column_type}` is not a ClickHouse type Sluice can write ({}); for example `String`, `Nullable(Int64)` or `DateTime64(3)`",
                e.reason
            ),
        );
    }
}

/// Parsed into a tree over the declared columns (`sluice_clickhouse_types::expr`);
/// the table is created from the tree, never from this text.
fn check_expression(v: &mut Validation, pointer: &str, expression: &str, columns: &[&str]) {
    if let Err(e) = expr::parse(expression, columns) {
        v.error(
            pointer,
            format!("is not a key expression Sluice accepts: {e}"),
        );
    }
}

/// An http(s) URL with a host and no embedded credentials (they would be
/// stored in clear and echoed back; use the dedicated fields instead).
pub fn check_http_url(v: &mut Validation, pointer: &str, raw: &str) {
    match url::Url::parse(raw) {
        Err(e) => v.error(pointer, format!("is not a valid URL: {e}")),
        Ok(url) => {
            if !matches!(url.scheme(), "http" | "https") {
                v.error(pointer, "must use http or https");
            } else if url.host_str().is_none_or(str::is_empty) {
                v.error(pointer, "must name a host");
            } else if !url.username().is_empty() || url.password().is_some() {
                v.error(
                    pointer,
                    "must not embed credentials; use the username and password fields",
                );
            } else if url.query().is_some() || url.fragment().is_some() {
                v.error(pointer, "must not have a query string or fragment");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn kafka_pipe() -> serde_json::Value {
        json!({
            "name": "orders",
            "source": {"kafka": {"brokers": "127.0.0.1:9092", "topics": ["orders"]}},
            "destination": {
                "destinationId": "0190a4a1-7d8e-7000-8000-000000000001",
                "table": "orders",
                "columns": [{"name": "id", "type": "UInt64"}, {"name": "payload", "type": "String"}]
            },
            "fieldMappings": [{"sourceField": "order.id", "destinationField": "id"}]
        })
    }

    fn parse(value: serde_json::Value) -> PipeSpec {
        serde_json::from_value(value).expect("valid json shape")
    }

    fn errors(value: serde_json::Value) -> Vec<String> {
        parse(value)
            .validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.pointer)
            .collect()
    }

    #[test]
    fn a_minimal_kafka_pipe_is_valid_with_defaults() {
        let mut spec = parse(kafka_pipe());
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(spec.scaling, Scaling::default());
        assert_eq!(spec.settings, PipeSettings::default());
        let id = Uuid::nil();
        spec.fill_defaults(id);
        let Source::Kafka(kafka) = &spec.source else {
            panic!("kafka")
        };
        assert_eq!(
            kafka.consumer_group.as_deref(),
            Some(&*format!("sluice-{id}"))
        );
        assert_eq!(kafka.offset.strategy, OffsetStrategy::FromBeginning);
    }

    fn format_errors(source: serde_json::Value) -> Vec<(String, String)> {
        let mut value = kafka_pipe();
        for (key, field) in source.as_object().unwrap() {
            value["source"]["kafka"][key] = field.clone();
        }
        match parse(value).validate() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.pointer, e.detail)).collect(),
        }
    }

    #[test]
    fn format_fields_are_checked_together() {
        let p = |field: &str| format!("/source/kafka/{field}");
        let registry = json!({"url": "https://registry.example:8081"});
        let proto = json!({"shop/orders.proto":
            "syntax = \"proto3\"; package shop; message Order { int64 id = 1; }"});
        let avro = r#"{"type": "record", "name": "O", "fields": [{"name": "id", "type": "long"}]}"#;
        let valid = [
            json!({"format": "AvroConfluent", "schemaRegistry": registry}),
            json!({"format": "AvroConfluent", "schemaRegistry": registry, "avroSchema": avro}),
            json!({"format": "Avro", "avroSchema": avro}),
            json!({"format": "Avro", "schemaRegistry": {"url": "http://r/subjects/o-value/versions/2"}}),
            json!({"format": "Protobuf", "schemaRegistry": registry}),
            json!({"format": "Protobuf", "protobufSchema": proto, "messageType": "shop.Order"}),
            json!({"format": "AvroConfluent", "schemaRegistry": {"url": "http://r",
                "authentication": "PLAIN", "credentials": {"username": "u", "password": "p"}}}),
        ];
        for source in valid {
            assert_eq!(format_errors(source.clone()), Vec::new(), "{source}");
        }
        let invalid = [
            (json!({"schemaRegistry": registry}), p("schemaRegistry")),
            (json!({"format": "AvroConfluent"}), p("schemaRegistry")),
            (json!({"format": "Avro"}), p("avroSchema")),
            (
                json!({"format": "Avro", "schemaRegistry": registry}),
                p("avroSchema"),
            ),
            (
                json!({"format": "Avro", "avroSchema": "{\"type\": \"recor"}),
                p("avroSchema"),
            ),
            (json!({"format": "Protobuf"}), p("protobufSchema")),
            (
                json!({"format": "Protobuf", "protobufSchema": proto}),
                p("messageType"),
            ),
            (
                json!({"format": "Protobuf", "protobufSchema": proto, "messageType": "shop.Nope"}),
                p("messageType"),
            ),
            (
                json!({"format": "Protobuf", "protobufSchema": {"../x.proto": "syntax = \"proto3\";"}, "messageType": "X"}),
                p("protobufSchema/..~1x.proto"),
            ),
            (
                json!({"format": "Protobuf", "protobufSchema": {"a.proto": "message {"}, "messageType": "A"}),
                p("protobufSchema"),
            ),
            (
                json!({"format": "Protobuf", "schemaRegistry": {"url": "http://r/schemas/ids/3"}}),
                p("schemaRegistry/url"),
            ),
            (
                json!({"format": "Protobuf", "schemaRegistry": registry, "messageType": "shop.Order"}),
                p("messageType"),
            ),
            (
                json!({"format": "AvroConfluent", "schemaRegistry": {"url": "ftp://r"}}),
                p("schemaRegistry/url"),
            ),
            (
                json!({"format": "AvroConfluent", "schemaRegistry": {"url": "http://r", "authentication": "PLAIN"}}),
                p("schemaRegistry/credentials"),
            ),
            (
                json!({"format": "AvroConfluent", "schemaRegistry": {"url": "http://r", "authentication": "PLAIN",
                "credentials": {"username": "u"}}}),
                p("schemaRegistry/credentials/password"),
            ),
            (
                json!({"format": "AvroConfluent", "schemaRegistry": {"url": "http://r",
                "credentials": {"username": "u", "password": "p"}}}),
                p("schemaRegistry/credentials"),
            ),
        ];
        for (source, pointer) in invalid {
            let errors = format_errors(source.clone());
            assert!(
                errors.iter().any(|(p, _)| *p == pointer),
                "{source}: expected an error at {pointer}, got {errors:?}"
            );
        }
    }

    #[test]
    fn the_registry_password_is_a_bound_secret() {
        let mut value = kafka_pipe();
        value["source"]["kafka"]["format"] = json!("AvroConfluent");
        value["source"]["kafka"]["schemaRegistry"] = json!({"url": "http://r:8081",
            "authentication": "PLAIN", "credentials": {"username": "u", "password": "registry-secret"}});
        let mut spec = parse(value);
        assert_eq!(spec.validate(), Ok(()));
        assert!(!serde_json::to_string(&spec)
            .unwrap()
            .contains("registry-secret"));
        let slots: Vec<&str> = spec
            .secret_slots()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(slots, ["source.kafka.schemaRegistry.credentials.password"]);
        let before = spec.secret_binding();
        let Source::Kafka(kafka) = &mut spec.source else {
            panic!("kafka")
        };
        kafka.schema_registry.as_mut().unwrap().url = "http://elsewhere:8081".into();
        assert_ne!(before, spec.secret_binding());
    }

    #[test]
    fn secrets_are_never_serialized() {
        let mut value = kafka_pipe();
        value["source"]["kafka"]["authentication"] = json!("SCRAM-SHA-512");
        value["source"]["kafka"]["credentials"] =
            json!({"username": "u", "password": "hunter2-secret"});
        let mut spec = parse(value);
        assert_eq!(spec.validate(), Ok(()));
        let out = serde_json::to_string(&spec).unwrap();
        assert!(!out.contains("hunter2-secret"), "{out}");
        assert!(!format!("{spec:?}").contains("hunter2-secret"));
        let slots = spec.secret_slots();
        assert_eq!(slots.len(), 2);
        assert_eq!(
            slots[0].1.as_ref().map(Secret::expose),
            Some("hunter2-secret")
        );
    }

    #[test]
    fn field_errors_name_their_paths() {
        let mut value = kafka_pipe();
        value["name"] = json!("x'; DROP TABLE pipes; --");
        value["source"]["kafka"]["brokers"] = json!("nohost, h:99999");
        value["source"]["kafka"]["topics"] = json!(["ok", "bad topic", "ok"]);
        value["source"]["kafka"]["authentication"] = json!("PLAIN");
        value["scaling"] =
            json!({"replicas": 11, "autoscaling": {"minReplicas": 3, "maxReplicas": 2}});
        value["fieldMappings"] = json!([{"sourceField": "a", "destinationField": "missing"}]);
        let got = errors(value);
        for expected in [
            "/name",
            "/source/kafka/brokers",
            "/source/kafka/topics/1",
            "/source/kafka/topics/2",
            "/source/kafka/credentials/username",
            "/source/kafka/credentials/password",
            "/scaling/replicas",
            "/scaling/autoscaling/maxReplicas",
            "/fieldMappings/0/destinationField",
        ] {
            assert!(
                got.iter().any(|p| p == expected),
                "{expected} missing from {got:?}"
            );
        }
    }

    #[test]
    fn offsets_and_timestamps_go_together() {
        let mut value = kafka_pipe();
        value["source"]["kafka"]["offset"] = json!({"strategy": "from_timestamp"});
        assert_eq!(errors(value.clone()), ["/source/kafka/offset/timestamp"]);
        value["source"]["kafka"]["offset"]["timestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(errors(value.clone()).is_empty());
        value["source"]["kafka"]["offset"]["strategy"] = json!("from_latest");
        assert_eq!(errors(value), ["/source/kafka/offset/timestamp"]);
    }

    #[test]
    fn kinesis_authentication_rules() {
        let base = json!({
            "name": "clicks",
            "source": {"kinesis": {"streamName": "clicks", "region": "us-east-1",
                "accessKey": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretKey": "s"}}},
            "destination": {"destinationId": Uuid::nil(), "table": "clicks"}
        });
        assert!(errors(base.clone()).is_empty());
        let mut role = base.clone();
        role["source"]["kinesis"]["authentication"] = json!("IAM_ROLE");
        assert_eq!(errors(role.clone()), ["/source/kinesis/iamRole"]);
        role["source"]["kinesis"]["iamRole"] = json!("arn:aws:iam::123456789012:role/reader");
        assert!(errors(role).is_empty());
        let mut no_key = base;
        no_key["source"]["kinesis"]
            .as_object_mut()
            .unwrap()
            .remove("accessKey");
        assert_eq!(errors(no_key), ["/source/kinesis/accessKey"]);
    }

    #[test]
    fn managed_tables_need_a_definition_and_known_keys() {
        let mut value = kafka_pipe();
        value["destination"]["managedTable"] = json!(true);
        assert_eq!(errors(value.clone()), ["/destination/tableDefinition"]);
        value["destination"]["tableDefinition"] = json!({"engine": "ReplacingMergeTree", "sortingKey": ["id", "nope"], "partitionBy": "id; DROP"});
        assert_eq!(
            errors(value),
            [
                "/destination/tableDefinition/sortingKey/1",
                "/destination/tableDefinition/partitionBy"
            ]
        );
    }

    #[test]
    fn column_types_cannot_break_out() {
        let mut value = kafka_pipe();
        value["destination"]["columns"] = json!([
            {"name": "a", "type": "Nullable(DateTime64(3, 'UTC'))"},
            {"name": "b", "type": "Enum8('a' = 1, 'b' = -2)"},
            {"name": "c", "type": "String) ENGINE = Log; --"},
            {"name": "d", "type": "Array(String"}
        ]);
        value["fieldMappings"] = json!([]);
        assert_eq!(
            errors(value),
            ["/destination/columns/2/type", "/destination/columns/3/type"]
        );
    }

    #[test]
    fn immutable_fields_are_reported_but_equal_values_pass() {
        let mut old = parse(kafka_pipe());
        old.fill_defaults(Uuid::nil());
        let same = old.clone();
        assert!(old.immutable_changes(&same).is_empty());

        let mut edited = old.clone();
        edited.name = "renamed".into();
        edited.scaling.replicas = 3;
        if let Source::Kafka(k) = &mut edited.source {
            k.read_committed = true;
        }
        assert!(old.immutable_changes(&edited).is_empty());

        if let Source::Kafka(k) = &mut edited.source {
            k.topics.push("more".into());
            k.offset.strategy = OffsetStrategy::FromLatest;
        }
        edited.destination.table = "other".into();
        let pointers: Vec<_> = old
            .immutable_changes(&edited)
            .into_iter()
            .map(|e| e.pointer)
            .collect();
        assert_eq!(
            pointers,
            [
                "/source/kafka/topics",
                "/source/kafka/offset",
                "/destination/table"
            ]
        );
    }

    #[test]
    fn unknown_fields_and_values_are_refused() {
        let mut value = kafka_pipe();
        value["sauce"] = json!(1);
        assert!(serde_json::from_value::<PipeSpec>(value).is_err());
        let mut value = kafka_pipe();
        value["source"]["kafka"]["authentication"] = json!("KERBEROS");
        assert!(serde_json::from_value::<PipeSpec>(value).is_err());
        let mut value = kafka_pipe();
        value["source"] = json!({"kafka": {"brokers": "h:1", "topics": ["t"]}, "kinesis": {}});
        assert!(serde_json::from_value::<PipeSpec>(value).is_err());
    }

    #[test]
    fn urls() {
        let ok = |s: &str| {
            let mut v = Validation::new();
            check_http_url(&mut v, "/url", s);
            v.is_empty()
        };
        assert!(ok("https://abc.clickhouse.cloud:8443"));
        assert!(ok("http://127.0.0.1:8123/"));
        assert!(!ok("ftp://x"));
        assert!(!ok("https://user:pw@host"));
        assert!(!ok("not a url"));
        assert!(!ok("http://h/?q=1"));
    }
}
