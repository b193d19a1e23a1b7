//! `sluice_pipe` (a Kafka topic or Kinesis stream into a ClickHouse table)
//! and the `sluice_pipe` / `sluice_pipes` data sources. The schema mirrors
//! the API's PipeSpec in snake_case; fields the API refuses to change force
//! a replacement; credentials are write-only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use super::{DataSource, Diag, Outcome, Resource};
use crate::client::Client;
use crate::cty::Value;
use crate::schema::{from_api, to_api, Attr, Kind, Presence};

use Presence::{Computed, Optional, OptionalComputed as Defaulted, Required};

/// How long create and update wait for a started pipe to run.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_secs(1);

fn kafka() -> Attr {
    Attr::single(
        "kafka",
        Optional,
        "A Kafka source. Exactly one of `kafka` or `kinesis`.",
        vec![
            Attr::string(
                "brokers",
                Required,
                "Bootstrap servers, `host:port` separated by commas.",
            )
            .replace(),
            Attr::strings("topics", Required, "Topics to read.").replace(),
            Attr::string("consumer_group", Defaulted, "Default: `sluice-<pipe id>`.").replace(),
            Attr::single(
                "offset",
                Defaulted,
                "Where a new consumer group starts.",
                vec![
                    Attr::string(
                        "strategy",
                        Defaulted,
                        "`from_beginning` (default), `from_latest` or `from_timestamp`.",
                    )
                    .replace(),
                    Attr::string("timestamp", Optional, "RFC 3339, with `from_timestamp`.")
                        .replace(),
                ],
            ),
            Attr::string(
                "authentication",
                Defaulted,
                "`NONE` (default), `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `MUTUAL_TLS`.",
            ),
            Attr::single(
                "credentials",
                Optional,
                "For SASL (username, password) and MUTUAL_TLS (certificate, private key).",
                vec![
                    Attr::string("username", Optional, "SASL user name."),
                    Attr::string("password_wo", Optional, "SASL password. Write-only.")
                        .api("password")
                        .secret(),
                    Attr::string(
                        "certificate",
                        Optional,
                        "PEM client certificate (MUTUAL_TLS).",
                    ),
                    Attr::string(
                        "private_key_wo",
                        Optional,
                        "PEM private key (MUTUAL_TLS). Write-only.",
                    )
                    .api("privateKey")
                    .secret(),
                ],
            ),
            Attr::string(
                "ca_certificate",
                Optional,
                "PEM bundle trusted for the brokers.",
            ),
            Attr::bool(
                "read_committed",
                Defaulted,
                "Read only committed records of transactional producers.",
            ),
        ]
        .into_iter()
        .chain(format_attrs())
        .collect(),
    )
}

/// How messages are encoded and where their schemas come from; the same
/// on Kafka and Kinesis sources.
fn format_attrs() -> Vec<Attr> {
    vec![
        Attr::string(
            "format",
            Defaulted,
            "`JSONEachRow` (default), `Avro`, `AvroConfluent` or `Protobuf`.",
        )
        .replace(),
        Attr::single(
            "schema_registry",
            Optional,
            "A Confluent-compatible schema registry: required for `AvroConfluent`; for `Protobuf` in Confluent's framing; for `Avro`, a URL pinning the writer schema.",
            vec![
                Attr::string(
                    "url",
                    Required,
                    "The registry's root, or a subject (`…/subjects/NAME`), a subject version (`…/versions/N`) or a schema (`…/schemas/ids/N`) to pin.",
                ),
                Attr::string("authentication", Defaulted, "`NONE` (default) or `PLAIN` (basic auth)."),
                Attr::single(
                    "credentials",
                    Optional,
                    "For PLAIN.",
                    vec![
                        Attr::string("username", Required, "The registry user."),
                        Attr::string("password_wo", Optional, "The registry password. Write-only.")
                            .api("password")
                            .secret(),
                    ],
                ),
                Attr::string(
                    "ca_certificate",
                    Optional,
                    "PEM bundle trusted for the registry.",
                ),
            ],
        ),
        Attr::string(
            "avro_schema",
            Optional,
            "An Avro schema (JSON): the writer schema for `Avro`, the reader schema for `AvroConfluent`.",
        ),
        Attr::string_map(
            "protobuf_schema",
            Optional,
            "`.proto` files by the name imports use, for plain `Protobuf` messages.",
        ),
        Attr::string(
            "message_type",
            Optional,
            "The fully qualified message type of plain Protobuf messages, e.g. `shop.Order`.",
        ),
    ]
}

fn kinesis() -> Attr {
    Attr::single(
        "kinesis",
        Optional,
        "A Kinesis source. Exactly one of `kafka` or `kinesis`.",
        vec![
            Attr::string("stream_name", Required, "The stream.").replace(),
            Attr::string("region", Required, "e.g. `us-east-1`.").replace(),
            Attr::string(
                "endpoint",
                Optional,
                "Endpoint override (emulators, VPC endpoints).",
            ),
            Attr::string(
                "iterator_type",
                Defaulted,
                "`TRIM_HORIZON` (default), `LATEST` or `AT_TIMESTAMP`.",
            )
            .replace(),
            Attr::string("timestamp", Optional, "RFC 3339, with `AT_TIMESTAMP`.").replace(),
            Attr::bool(
                "use_enhanced_fan_out",
                Defaulted,
                "Read through enhanced fan-out.",
            ),
            Attr::string(
                "authentication",
                Defaulted,
                "`IAM_USER` (default) or `IAM_ROLE`.",
            ),
            Attr::single(
                "access_key",
                Optional,
                "An IAM user's access key.",
                vec![
                    Attr::string("access_key_id", Required, "The access key id."),
                    Attr::string("secret_key_wo", Optional, "The secret key. Write-only.")
                        .api("secretKey")
                        .secret(),
                ],
            ),
            Attr::string("iam_role", Optional, "Role ARN, for IAM_ROLE."),
            Attr::string(
                "external_id",
                Optional,
                "The external id the role's trust policy requires.",
            ),
        ]
        .into_iter()
        .chain(format_attrs())
        .collect(),
    )
}

fn pipe_attrs() -> Vec<Attr> {
    vec![
        Attr::string("id", Computed, "The pipe's id.").local(),
        Attr::string("name", Required, "Letters, digits, spaces and `_ . -`; at most 128 characters."),
        Attr::string("description", Defaulted, "Free text."),
        Attr::bool(
            "exactly_once",
            Defaulted,
            "Every record lands exactly once (needs a ClickHouse with insert deduplication tokens, 22.2 and later).",
        )
        .api("exactlyOnce")
        .replace(),
        Attr::single("source", Required, "Where the pipe reads.", vec![kafka(), kinesis()]),
        Attr::string(
            "schema_evolution",
            Defaulted,
            "`none` (default): fields a newer writer schema adds are not loaded; `add_columns`: the managed table gains a Nullable column for each.",
        ),
        Attr::single(
            "destination",
            Required,
            "Where rows land.",
            vec![
                Attr::string("destination_id", Required, "A `sluice_destination`'s id.").replace(),
                Attr::string("database", Optional, "Default: the destination's database.").replace(),
                Attr::string("table", Required, "The table.").replace(),
                Attr::bool("managed_table", Defaulted, "Create the table from `columns` and `table_definition`.").replace(),
                Attr::single(
                    "table_definition",
                    Optional,
                    "For managed tables.",
                    vec![
                        Attr::string("engine", Defaulted, "`MergeTree` (default), `ReplacingMergeTree`, `SummingMergeTree` or `Null`."),
                        Attr::strings("sorting_key", Optional, "ORDER BY columns."),
                        Attr::string("partition_by", Optional, "PARTITION BY expression."),
                        Attr::string("primary_key", Optional, "PRIMARY KEY expression."),
                    ],
                )
                .replace(),
                Attr::list(
                    "columns",
                    Optional,
                    "The destination columns; a change replaces a pipe with a managed table.",
                    vec![
                        Attr::string("name", Required, "Column name."),
                        Attr::string("type", Required, "ClickHouse type, e.g. `Nullable(DateTime64(3))`."),
                    ],
                ),
                Attr::string("permissions", Defaulted, "`full` (default) or `table_only`."),
            ],
        ),
        Attr::list(
            "field_mappings",
            Optional,
            "Source field (dotted path or virtual column such as `_offset`) to column.",
            vec![
                Attr::string("source_field", Required, "e.g. `order.customer.id`."),
                Attr::string("destination_field", Required, "The column."),
            ],
        ),
        Attr::single(
            "scaling",
            Defaulted,
            "Replicas and their size.",
            vec![
                Attr::number("replicas", Defaulted, "1 to 10; with autoscaling, the starting count."),
                Attr::string("replica_size", Defaulted, "`XS` (default), `S`, `M`, `L` or `XL`."),
                Attr::single(
                    "autoscaling",
                    Optional,
                    "Move the replica count between the bounds on lag.",
                    vec![
                        Attr::number("min_replicas", Required, "Lower bound."),
                        Attr::number("max_replicas", Required, "Upper bound."),
                    ],
                ),
            ],
        ),
        Attr::single(
            "settings",
            Defaulted,
            "Batching.",
            vec![
                Attr::number("streaming_max_insert_wait_ms", Defaulted, "Longest a batch stays open (500–60000).")
                    .api("streaming_max_insert_wait_ms"),
                Attr::number("max_insert_rows", Defaulted, "Rows that close a batch (1000–1000000).")
                    .api("max_insert_rows"),
                Attr::number("clickhouse_timeout_seconds", Defaulted, "Longest one ClickHouse request may take, connecting included (1–3600); a timed-out insert is sent again with the same deduplication token.")
                    .api("clickhouse_timeout_seconds"),
            ],
        ),
        Attr::bool("stopped", Optional, "Keep the pipe stopped. Unset or false: running, and a pipe stopped outside Terraform shows as a change.").local(),
        Attr::number(
            "secrets_version",
            Optional,
            "Change it to send the write-only credentials again (rotation). They are always sent on create.",
        )
        .local(),
        Attr::string("state", Computed, "Provisioning, Running, Degraded, Stopping, Stopped, Failed or Deleting.").local(),
    ]
}

pub struct PipeResource {
    attrs: Vec<Attr>,
}

impl PipeResource {
    pub fn new() -> Self {
        PipeResource {
            attrs: pipe_attrs(),
        }
    }

    /// State from the pipe and its status. Empty lists the API returns for
    /// absent mappings and columns read as unset, so leaving them out of
    /// the configuration shows no difference.
    fn state(&self, pipe: &Json, desired: Option<&str>, kept: &Value) -> Value {
        let mut pipe = pipe.clone();
        for (parent, key) in [(None, "fieldMappings"), (Some("destination"), "columns")] {
            let object = match parent {
                None => Some(&mut pipe),
                Some(p) => pipe.get_mut(p),
            };
            if let Some(Json::Object(object)) = object {
                if object
                    .get(key)
                    .and_then(Json::as_array)
                    .is_some_and(Vec::is_empty)
                {
                    object.remove(key);
                }
            }
        }
        let string = |key: &str| {
            pipe.get(key)
                .and_then(Json::as_str)
                .map_or(Value::Null, Value::string)
        };
        let locals = BTreeMap::from([
            ("id", string("id")),
            ("state", string("state")),
            ("stopped", stopped(desired, kept.get("stopped"))),
            ("secrets_version", kept.get("secrets_version").clone()),
        ]);
        from_api(&self.attrs, &pipe, &locals)
    }

    async fn fetch(
        &self,
        client: &Client,
        id: &str,
        kept: &Value,
    ) -> Result<Option<Value>, Vec<Diag>> {
        let pipe = client
            .get(&format!("/v1/pipes/{id}"))
            .await
            .map_err(|e| Diag::api("Reading the pipe failed", &e))?;
        let Some(pipe) = pipe else {
            return Ok(None);
        };
        let status = client
            .get(&format!("/v1/pipes/{id}/status"))
            .await
            .map_err(|e| Diag::api("Reading the pipe's status failed", &e))?;
        let desired = status
            .as_ref()
            .and_then(|s| s.get("desiredState"))
            .and_then(Json::as_str);
        Ok(Some(self.state(&pipe, desired, kept)))
    }

    /// Waits until a started pipe runs; a Failed start is an error naming
    /// the pipe's last error.
    async fn await_running(&self, client: &Client, id: &str) -> Vec<Diag> {
        let started = Instant::now();
        loop {
            let status = match client.get(&format!("/v1/pipes/{id}/status")).await {
                Ok(Some(status)) => status,
                Ok(None) => {
                    return vec![Diag::error(
                        "The pipe disappeared while starting",
                        format!("Pipe {id} was deleted."),
                    )]
                }
                Err(e) => return Diag::api("Reading the pipe's status failed", &e),
            };
            match status.get("state").and_then(Json::as_str) {
                Some("Running" | "Degraded") => return Vec::new(),
                Some("Failed") => {
                    let error = status
                        .pointer("/lastError/message")
                        .and_then(Json::as_str)
                        .unwrap_or("no error was recorded");
                    return vec![Diag::error(
                        "The pipe failed to start",
                        format!("Pipe {id} is Failed: {error}\nFix the cause (or the configuration) and apply again; a Failed pipe can be updated and destroyed."),
                    )];
                }
                Some("Stopped") if started.elapsed() > Duration::from_secs(30) => {
                    return vec![Diag::error(
                        "The pipe did not start",
                        format!("Pipe {id} is still Stopped."),
                    )]
                }
                _ => {}
            }
            if started.elapsed() > START_TIMEOUT {
                return vec![Diag::warning(
                    "The pipe is not running yet",
                    format!("Pipe {id} was started but is not Running after {} s; see its status and events.", START_TIMEOUT.as_secs()),
                )];
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn command(&self, client: &Client, id: &str, command: &str) -> Vec<Diag> {
        match client
            .patch_json(
                &format!("/v1/pipes/{id}/state"),
                &json!({"command": command}),
            )
            .await
        {
            Ok(_) if command == "start" => self.await_running(client, id).await,
            Ok(_) => Vec::new(),
            Err(e) => Diag::api(&format!("Sending {command} to the pipe failed"), &e),
        }
    }

    async fn refreshed(
        &self,
        client: &Client,
        id: &str,
        kept: &Value,
        mut diags: Vec<Diag>,
    ) -> Outcome {
        match self.fetch(client, id, kept).await {
            Ok(state) => (state, diags),
            Err(more) => {
                diags.extend(more);
                (Some(kept.clone()), diags)
            }
        }
    }
}

/// `stopped` as read: true when the pipe is meant to be stopped; when it is
/// meant to run, what the state said (unset stays unset) unless that was
/// true, so stopping or starting it outside Terraform shows as a change.
fn stopped(desired: Option<&str>, kept: &Value) -> Value {
    match desired {
        Some("stopped") => Value::Bool(true),
        Some(_) if kept.as_bool() == Some(true) => Value::Bool(false),
        _ => kept.clone(),
    }
}

/// A JSON merge patch (RFC 7396) from `before` to `after`: removed fields
/// become null, objects are patched field by field, anything else replaced.
fn merge_patch(before: &Json, after: &Json) -> Json {
    match (before, after) {
        (Json::Object(old), Json::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) if previous == value => {}
                    Some(previous) => {
                        patch.insert(key.clone(), merge_patch(previous, value));
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Json::Null);
                }
            }
            Json::Object(patch)
        }
        _ => after.clone(),
    }
}

#[tonic::async_trait]
impl Resource for PipeResource {
    fn name(&self) -> &'static str {
        "pipe"
    }

    fn description(&self) -> &'static str {
        "A pipe from a Kafka topic or Kinesis stream into a ClickHouse table, kept running by Sluice."
    }

    fn attrs(&self) -> &[Attr] {
        &self.attrs
    }

    fn validate(&self, config: &Value) -> Vec<Diag> {
        let source = config.get("source");
        if !source.is_known() {
            return Vec::new();
        }
        match (
            source.get("kafka").is_null(),
            source.get("kinesis").is_null(),
        ) {
            (false, false) | (true, true) => vec![Diag::error(
                "Exactly one source",
                "Set either `source.kafka` or `source.kinesis`.",
            )
            .at(&["source"])],
            _ => Vec::new(),
        }
    }

    fn plan(&self, prior: &Value, proposed: Value, _config: &Value) -> Value {
        let mut planned = proposed;
        // The state follows from the other changes; only the API knows it.
        if !prior.is_null() && planned_changes(&self.attrs, prior, &planned) {
            planned = planned.with("state", Value::Unknown);
        }
        planned
    }

    /// A managed table's columns cannot change (the table exists); an
    /// existing table's mapping can.
    fn replacements(&self, prior: &Value, planned: &Value) -> Vec<Vec<String>> {
        let mut paths = crate::schema::replacements(&self.attrs, prior, planned);
        let (before, after) = (prior.get("destination"), planned.get("destination"));
        if after.get("managed_table").as_bool() == Some(true)
            && after.get("columns").is_known()
            && before.get("columns") != after.get("columns")
        {
            paths.push(vec!["destination".to_owned(), "columns".to_owned()]);
        }
        paths
    }

    async fn create(&self, client: &Client, planned: &Value, config: &Value) -> Outcome {
        let body = to_api(&self.attrs, planned, config, true);
        let created = match client.post("/v1/pipes", &body).await {
            Ok(created) => created,
            Err(e) => return (None, Diag::api("Creating the pipe failed", &e)),
        };
        let id = created
            .get("id")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned();
        let diags = if planned.get("stopped").as_bool() == Some(true) {
            Vec::new()
        } else {
            self.command(client, &id, "start").await
        };
        self.refreshed(client, &id, planned, diags).await
    }

    async fn read(&self, client: &Client, current: &Value) -> Outcome {
        let id = current.get("id").as_str().unwrap_or_default();
        match self.fetch(client, id, current).await {
            Ok(state) => (state, Vec::new()),
            Err(diags) => (Some(current.clone()), diags),
        }
    }

    async fn update(
        &self,
        client: &Client,
        prior: &Value,
        planned: &Value,
        config: &Value,
    ) -> Outcome {
        let id = prior.get("id").as_str().unwrap_or_default().to_owned();
        let before = to_api(&self.attrs, prior, &Value::Null, false);
        let after = to_api(&self.attrs, planned, config, false);
        // The API refuses to move a stored secret (422 secret-required), so
        // a change of where the secrets go sends them again.
        let rotate = prior.get("secrets_version") != planned.get("secrets_version")
            || secret_binding_changed(&before, &after);
        let mut patch = merge_patch(&before, &after);
        if rotate {
            // Secrets are never in the state, so they are patched in from the
            // configuration whole.
            let secrets = to_api(&self.attrs, planned, config, true);
            patch = merge_json(patch, &secrets, &after);
        }
        let mut diags = Vec::new();
        if patch.as_object().is_some_and(|p| !p.is_empty()) {
            if let Err(e) = client.merge_patch(&format!("/v1/pipes/{id}"), &patch).await {
                return self
                    .refreshed(
                        client,
                        &id,
                        prior,
                        Diag::api("Updating the pipe failed", &e),
                    )
                    .await;
            }
        }
        let was_stopped = prior.get("stopped").as_bool() == Some(true);
        let stop = planned.get("stopped").as_bool() == Some(true);
        if was_stopped != stop {
            diags.extend(
                self.command(client, &id, if stop { "stop" } else { "start" })
                    .await,
            );
        }
        self.refreshed(client, &id, planned, diags).await
    }

    async fn delete(&self, client: &Client, prior: &Value) -> Vec<Diag> {
        let id = prior.get("id").as_str().unwrap_or_default();
        let path = format!("/v1/pipes/{id}");
        if let Err(e) = client.delete(&path).await {
            return Diag::api("Deleting the pipe failed", &e);
        }
        // A running pipe is stopped first (202): wait until it is gone, so
        // its destination can be deleted right after.
        let started = Instant::now();
        loop {
            match client.get(&path).await {
                Ok(None) => return Vec::new(),
                Ok(Some(_)) if started.elapsed() > DELETE_TIMEOUT => {
                    return vec![Diag::error(
                        "The pipe is still being deleted",
                        format!(
                            "Pipe {id} still exists after {} s.",
                            DELETE_TIMEOUT.as_secs()
                        ),
                    )]
                }
                Ok(Some(_)) => tokio::time::sleep(POLL).await,
                Err(e) => return Diag::api("Waiting for the pipe's deletion failed", &e),
            }
        }
    }

    async fn import(&self, client: &Client, id: &str) -> Outcome {
        match self.fetch(client, id, &Value::Null).await {
            Ok(state) => (state, Vec::new()),
            Err(diags) => (None, diags),
        }
    }
}

/// The fields the API binds a pipe's secrets to (`PipeSpec::secret_binding`).
const SECRET_BINDING: &[&str] = &[
    "/source/kafka/brokers",
    "/source/kafka/authentication",
    "/source/kafka/credentials/username",
    "/source/kinesis/region",
    "/source/kinesis/endpoint",
    "/source/kinesis/accessKey/accessKeyId",
    "/source/kinesis/iamRole",
    "/source/kafka/schemaRegistry/url",
    "/source/kafka/schemaRegistry/credentials/username",
    "/source/kinesis/schemaRegistry/url",
    "/source/kinesis/schemaRegistry/credentials/username",
];

fn secret_binding_changed(before: &Json, after: &Json) -> bool {
    SECRET_BINDING
        .iter()
        .any(|pointer| before.pointer(pointer) != after.pointer(pointer))
}

/// Adds the secret fields of `with_secrets` (those absent from `without`)
/// into `patch`, recursively.
fn merge_json(mut patch: Json, with_secrets: &Json, without: &Json) -> Json {
    if let (Json::Object(target), Json::Object(source)) = (&mut patch, with_secrets) {
        for (key, value) in source {
            match without.get(key) {
                None => {
                    target.insert(key.clone(), value.clone());
                }
                Some(inner) if value.is_object() => {
                    let existing = target.remove(key).unwrap_or_else(|| json!({}));
                    let merged = merge_json(existing, value, inner);
                    if merged.as_object().is_some_and(|m| !m.is_empty()) {
                        target.insert(key.clone(), merged);
                    }
                }
                Some(_) => {}
            }
        }
    }
    patch
}

/// Whether anything the user controls changes (computed-only attributes
/// aside).
fn planned_changes(attrs: &[Attr], prior: &Value, planned: &Value) -> bool {
    attrs.iter().any(|a| {
        a.presence != Computed && !a.write_only && prior.get(a.name) != planned.get(a.name)
    })
}

/// The data source variant: every attribute computed except those named
/// in `inputs`, and no write-only ones.
fn read_only(attrs: &[Attr], inputs: &[&str]) -> Vec<Attr> {
    attrs
        .iter()
        .filter(|a| !a.write_only && a.name != "secrets_version")
        .map(|a| {
            let mut a = a.clone();
            a.presence = if inputs.contains(&a.name) {
                Required
            } else {
                Computed
            };
            a.replace = false;
            a.kind = match a.kind {
                Kind::Single(inner) => Kind::Single(read_only(&inner, &[])),
                Kind::List(inner) => Kind::List(read_only(&inner, &[])),
                other => other,
            };
            a
        })
        .collect()
}

pub struct PipeDataSource {
    attrs: Vec<Attr>,
    resource: PipeResource,
}

impl PipeDataSource {
    pub fn new() -> Self {
        PipeDataSource {
            attrs: read_only(&pipe_attrs(), &["id"]),
            resource: PipeResource::new(),
        }
    }
}

#[tonic::async_trait]
impl DataSource for PipeDataSource {
    fn name(&self) -> &'static str {
        "pipe"
    }
    fn description(&self) -> &'static str {
        "One pipe, by id."
    }
    fn attrs(&self) -> &[Attr] {
        &self.attrs
    }
    async fn read(&self, client: &Client, config: &Value) -> Outcome {
        let id = config.get("id").as_str().unwrap_or_default();
        match self.resource.fetch(client, id, &Value::Null).await {
            Ok(Some(state)) => {
                let state = self
                    .attrs
                    .iter()
                    .map(|a| (a.name, state.get(a.name).clone()))
                    .collect::<Vec<_>>();
                (Some(Value::object(state)), Vec::new())
            }
            Ok(None) => (
                None,
                vec![
                    Diag::error("No such pipe", format!("There is no pipe with id {id}."))
                        .at(&["id"]),
                ],
            ),
            Err(diags) => (None, diags),
        }
    }
}

pub struct PipesDataSource {
    attrs: Vec<Attr>,
}

impl PipesDataSource {
    pub fn new() -> Self {
        PipesDataSource {
            attrs: vec![Attr::list(
                "pipes",
                Computed,
                "Every pipe: id, name, state.",
                vec![
                    Attr::string("id", Computed, "The pipe's id."),
                    Attr::string("name", Computed, "Its name."),
                    Attr::string("state", Computed, "Its state."),
                ],
            )
            .local()],
        }
    }
}

#[tonic::async_trait]
impl DataSource for PipesDataSource {
    fn name(&self) -> &'static str {
        "pipes"
    }
    fn description(&self) -> &'static str {
        "All pipes."
    }
    fn attrs(&self) -> &[Attr] {
        &self.attrs
    }
    async fn read(&self, client: &Client, _config: &Value) -> Outcome {
        let mut pipes = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/pipes?limit=200&cursor={c}"),
                None => "/v1/pipes?limit=200".to_owned(),
            };
            let page = match client.get(&path).await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) => return (None, Diag::api("Listing pipes failed", &e)),
            };
            for pipe in page
                .get("data")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let field = |k: &str| {
                    pipe.get(k)
                        .and_then(Json::as_str)
                        .map_or(Value::Null, Value::string)
                };
                pipes.push(Value::object([
                    ("id", field("id")),
                    ("name", field("name")),
                    ("state", field("state")),
                ]));
            }
            cursor = page
                .get("nextCursor")
                .and_then(Json::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        (
            Some(Value::object([("pipes", Value::List(pipes))])),
            Vec::new(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Resource;
    use crate::schema::replacements;

    #[test]
    fn stopping_or_starting_outside_terraform_reads_as_a_change() {
        assert_eq!(stopped(Some("stopped"), &Value::Null), Value::Bool(true));
        assert_eq!(
            stopped(Some("running"), &Value::Bool(true)),
            Value::Bool(false)
        );
        assert_eq!(stopped(Some("running"), &Value::Null), Value::Null);
        assert_eq!(
            stopped(Some("running"), &Value::Bool(false)),
            Value::Bool(false)
        );
    }

    #[test]
    fn merge_patches_null_what_was_removed() {
        let before = json!({"name": "a", "scaling": {"replicas": 2, "autoscaling": {"minReplicas": 1, "maxReplicas": 3}}});
        let after = json!({"name": "a", "scaling": {"replicas": 3}});
        assert_eq!(
            merge_patch(&before, &after),
            json!({"scaling": {"replicas": 3, "autoscaling": null}})
        );
        assert_eq!(merge_patch(&after, &after), json!({}));
    }

    #[test]
    fn moving_the_secrets_sends_them_again() {
        let before = json!({"source": {"kafka": {"brokers": "b", "authentication": "PLAIN", "credentials": {"username": "u"}}}});
        let renamed = json!({"name": "x", "source": {"kafka": {"brokers": "b", "authentication": "PLAIN", "credentials": {"username": "u"}}}});
        assert!(!secret_binding_changed(&before, &renamed));
        let other_user = json!({"source": {"kafka": {"brokers": "b", "authentication": "PLAIN", "credentials": {"username": "v"}}}});
        assert!(secret_binding_changed(&before, &other_user));
        let kinesis = json!({"source": {"kinesis": {"endpoint": "http://a"}}});
        let moved = json!({"source": {"kinesis": {"endpoint": "http://b"}}});
        assert!(secret_binding_changed(&kinesis, &moved));
    }

    #[test]
    fn a_moved_registry_gets_its_password_again() {
        let registry = |url: &str| {
            json!({"source": {"kafka": {"brokers": "b", "schemaRegistry": {"url": url,
                "authentication": "PLAIN", "credentials": {"username": "u"}}}}})
        };
        assert!(!secret_binding_changed(
            &registry("http://r"),
            &registry("http://r")
        ));
        assert!(secret_binding_changed(
            &registry("http://r"),
            &registry("http://elsewhere")
        ));
    }

    /// `.proto` files travel as the API's map of file name to text, and
    /// come back as the same map.
    #[test]
    fn protobuf_files_are_a_map_both_ways() {
        let attrs = pipe_attrs();
        let files = Value::Map(BTreeMap::from([
            ("a.proto".to_owned(), Value::string("syntax = \"proto3\";")),
            (
                "shop/b.proto".to_owned(),
                Value::string("import \"a.proto\";"),
            ),
        ]));
        let pipe = Value::object([
            ("name", Value::string("p")),
            (
                "source",
                Value::object([(
                    "kafka",
                    Value::object([
                        ("brokers", Value::string("b:9092")),
                        ("format", Value::string("Protobuf")),
                        ("protobuf_schema", files.clone()),
                        ("message_type", Value::string("shop.B")),
                    ]),
                )]),
            ),
        ]);
        let api = to_api(&attrs, &pipe, &pipe, false);
        assert_eq!(
            api["source"]["kafka"]["protobufSchema"],
            json!({"a.proto": "syntax = \"proto3\";", "shop/b.proto": "import \"a.proto\";"})
        );
        assert_eq!(api["source"]["kafka"]["messageType"], "shop.B");
        let state = from_api(&attrs, &api, &BTreeMap::new());
        assert_eq!(
            state.get("source").get("kafka").get("protobuf_schema"),
            &files
        );
    }

    #[test]
    fn rotation_adds_only_the_secrets() {
        let without =
            json!({"source": {"kafka": {"brokers": "b", "credentials": {"username": "u"}}}});
        let with = json!({"source": {"kafka": {"brokers": "b", "credentials": {"username": "u", "password": "p"}}}});
        assert_eq!(
            merge_json(json!({}), &with, &without),
            json!({"source": {"kafka": {"credentials": {"password": "p"}}}})
        );
    }

    #[test]
    fn immutable_fields_of_the_source_replace() {
        let attrs = pipe_attrs();
        let pipe = |topic: &str, replicas: i64| {
            Value::object([
                ("name", Value::string("p")),
                (
                    "source",
                    Value::object([(
                        "kafka",
                        Value::object([
                            ("brokers", Value::string("b:9092")),
                            ("topics", Value::List(vec![Value::string(topic)])),
                        ]),
                    )]),
                ),
                (
                    "scaling",
                    Value::object([("replicas", Value::number(replicas))]),
                ),
            ])
        };
        let paths = replacements(&attrs, &pipe("a", 1), &pipe("b", 1));
        assert_eq!(
            paths,
            vec![vec![
                "source".to_owned(),
                "kafka".to_owned(),
                "topics".to_owned()
            ]]
        );
        assert!(replacements(&attrs, &pipe("a", 1), &pipe("a", 3)).is_empty());
    }

    #[test]
    fn a_managed_tables_columns_replace_an_existing_tables_do_not() {
        let pipe = |managed: bool, column: &str| {
            Value::object([(
                "destination",
                Value::object([
                    ("managed_table", Value::Bool(managed)),
                    (
                        "columns",
                        Value::List(vec![Value::object([
                            ("name", Value::string(column)),
                            ("type", Value::string("Int64")),
                        ])]),
                    ),
                ]),
            )])
        };
        let resource = PipeResource::new();
        assert_eq!(
            resource.replacements(&pipe(true, "a"), &pipe(true, "b")),
            vec![vec!["destination".to_owned(), "columns".to_owned()]]
        );
        assert!(resource
            .replacements(&pipe(false, "a"), &pipe(false, "b"))
            .is_empty());
    }

    #[test]
    fn the_data_source_has_no_secrets_and_only_id_as_input() {
        let attrs = read_only(&pipe_attrs(), &["id"]);
        assert!(attrs.iter().all(|a| !a.write_only));
        assert!(attrs
            .iter()
            .filter(|a| a.presence == Required)
            .map(|a| a.name)
            .eq(["id"]));
    }
}
