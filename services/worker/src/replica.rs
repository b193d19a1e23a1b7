//! One replica of a Kafka pipe: consume, decode, batch per partition,
//! insert, and only then commit.
//!
//! Delivery: offsets are committed after ClickHouse acknowledged the rows
//! (and the error rows) before them. Any failure to insert drops the whole
//! consumer and its unacknowledged batch without committing; the replica
//! rejoins after a backoff and re-reads from the committed offsets, so
//! nothing is lost (rows whose insert succeeded but whose commit did not are
//! inserted again: at-least-once). Rows of a partition read under an
//! assignment that has since been revoked are dropped uncommitted, for the
//! partition's next owner to read (see `sluice_kafka::consumer`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_clickhouse::ddl::{ERROR_RAW_MAX_BYTES, ERROR_TABLE_COLUMNS};
use sluice_clickhouse::{encode, Endpoint, Value};
use sluice_formats::{ErrorCode, RecordMeta};
use sluice_kafka::{GroupMember, Headers, Message, PartitionKey};
use sluice_model::batching::BatchLimits;
use sluice_model::{PipeSpec, ReplicaSize, Source};
use sluice_store::{Lease, PipeCounters, ReplicaStatus, Store};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::destination::{prepare, PrepareError, Prepared};

#[derive(Debug, Clone)]
pub struct Report {
    pub status: ReplicaStatus,
    pub last_error: Option<String>,
    pub lag_messages: Option<i64>,
    pub memory_bytes: i64,
}

/// How often the replica refreshes its lag, memory and CPU gauges.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

pub type SharedReport = Arc<Mutex<Report>>;

#[derive(Debug, Clone, Copy)]
pub struct FailureLimits {
    pub source: Duration,
    pub destination: Duration,
}

pub struct Replica {
    pub store: Store,
    pub lease: Lease,
    pub cancel: CancellationToken,
    pub report: SharedReport,
    pub limits: FailureLimits,
    pub counters: Arc<Counters>,
    /// CPU nanoseconds of the replica's task, added up by `crate::cpu`.
    pub cpu_nanos: Arc<std::sync::atomic::AtomicU64>,
}

/// What a replica did since the supervisor last collected it; added to the
/// pipe's totals in Postgres (`GET /v1/pipes/{id}/metrics`).
#[derive(Default)]
pub struct Counters {
    fetched_events: AtomicI64,
    fetched_bytes: AtomicI64,
    sent_rows: AtomicI64,
    sent_bytes: AtomicI64,
    errors: AtomicI64,
}

impl Counters {
    pub fn take(&self) -> PipeCounters {
        PipeCounters {
            fetched_events: self.fetched_events.swap(0, Ordering::Relaxed),
            fetched_bytes: self.fetched_bytes.swap(0, Ordering::Relaxed),
            sent_rows: self.sent_rows.swap(0, Ordering::Relaxed),
            sent_bytes: self.sent_bytes.swap(0, Ordering::Relaxed),
            errors: self.errors.swap(0, Ordering::Relaxed),
        }
    }
}

#[derive(Debug)]
enum RunError {
    Permanent(String),
    Source(String),
    Destination(String),
}

impl From<PrepareError> for RunError {
    fn from(e: PrepareError) -> Self {
        match e {
            PrepareError::Permanent(m) => RunError::Permanent(m),
            PrepareError::Transient(m) => RunError::Destination(m),
        }
    }
}

/// The replica's metric handles, registered once: looking a labelled
/// metric up per message would cost two allocations and a registry lookup
/// on the hot path.
struct Metrics {
    fetched_events: metrics::Counter,
    fetched_bytes: metrics::Counter,
    sent_rows: metrics::Counter,
    sent_bytes: metrics::Counter,
    errors: metrics::Counter,
    latency: metrics::Histogram,
    cpu_seconds: metrics::Gauge,
    memory_bytes: metrics::Gauge,
    labels: [(&'static str, String); 3],
}

impl Metrics {
    fn new(pipe_id: &str, pipe_name: &str, replica: i32) -> Self {
        let labels = [
            ("pipe_id", pipe_id.to_owned()),
            ("pipe_name", pipe_name.to_owned()),
            ("source", "kafka".to_owned()),
        ];
        let mut replica_labels = labels.to_vec();
        replica_labels.push(("replica", replica.to_string()));
        Metrics {
            cpu_seconds: metrics::gauge!("sluice_replica_cpu_seconds", &replica_labels),
            memory_bytes: metrics::gauge!("sluice_replica_memory_bytes", &replica_labels),
            fetched_events: metrics::counter!("sluice_fetched_events_total", &labels),
            fetched_bytes: metrics::counter!("sluice_fetched_bytes_total", &labels),
            sent_rows: metrics::counter!("sluice_sent_rows_total", &labels),
            sent_bytes: metrics::counter!("sluice_sent_bytes_total", &labels),
            errors: metrics::counter!("sluice_errors_total", &labels),
            latency: metrics::histogram!("sluice_latency_seconds", &labels),
            labels,
        }
    }

    /// Per-partition lag gauges are looked up every few seconds, not per
    /// message, so they need no cached handles; the exporter drops those of
    /// partitions that went elsewhere once they stop being refreshed.
    fn partition_lag(&self, key: &PartitionKey, lag: i64) {
        let mut labels = self.labels.to_vec();
        labels.push(("topic", key.topic.clone()));
        labels.push(("partition", key.partition.to_string()));
        metrics::gauge!("sluice_consumer_lag_messages", &labels).set(lag as f64);
    }
}

/// Failing since when, per side, reset by success.
#[derive(Default)]
struct Failing {
    source: Option<Instant>,
    destination: Option<Instant>,
}

impl Replica {
    fn set(&self, status: ReplicaStatus, last_error: Option<String>) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.status = status;
        report.last_error = last_error;
    }

    fn refresh_gauges(&self, member: &GroupMember, pipeline: &Pipeline) {
        let stats = member.stats();
        let memory = pipeline.bytes + stats.fetch_queue_bytes;
        // Lag is known once every assigned partition has a committed offset.
        let lag_messages = (!stats.lag.is_empty() && stats.lag.len() == member.assigned_count())
            .then(|| stats.lag.values().sum());
        for (key, lag) in &stats.lag {
            pipeline.metrics.partition_lag(key, *lag);
        }
        pipeline.metrics.memory_bytes.set(memory as f64);
        pipeline
            .metrics
            .cpu_seconds
            .set(self.cpu_nanos.load(Ordering::Relaxed) as f64 / 1e9);
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.lag_messages = lag_messages;
        report.memory_bytes = memory as i64;
    }

    pub async fn run(self) {
        let mut failing = Failing::default();
        let mut backoff = Duration::from_secs(1);
        loop {
            let outcome = self.run_once(&mut failing).await;
            if self.cancel.is_cancelled() {
                return;
            }
            let (message, exceeded) = match outcome {
                Ok(()) => return,
                Err(RunError::Permanent(message)) => (message, true),
                Err(RunError::Source(message)) => {
                    let since = *failing.source.get_or_insert_with(Instant::now);
                    let exceeded = since.elapsed() >= self.limits.source;
                    (format!("source: {message}"), exceeded)
                }
                Err(RunError::Destination(message)) => {
                    let since = *failing.destination.get_or_insert_with(Instant::now);
                    let exceeded = since.elapsed() >= self.limits.destination;
                    (format!("destination: {message}"), exceeded)
                }
            };
            if exceeded {
                tracing::error!(error = %message, "replica failed");
                self.set(ReplicaStatus::Failed, Some(message));
                self.cancel.cancelled().await;
                return;
            }
            tracing::warn!(error = %message, retry_in = ?backoff, "replica retrying");
            self.set(ReplicaStatus::Retrying, Some(message));
            // Full jitter keeps replicas of many pipes from retrying in step.
            let sleep = backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(sleep) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }

    async fn run_once(&self, failing: &mut Failing) -> Result<(), RunError> {
        let pipe = self
            .store
            .pipe(self.lease.pipe_id)
            .await
            .map_err(|e| RunError::Destination(format!("reading the pipe: {e}")))?
            .ok_or_else(|| RunError::Permanent("the pipe no longer exists".into()))?;
        let mut spec = pipe.spec.clone();
        pipe.secrets(&self.store)
            .map_err(|e| RunError::Permanent(e.to_string()))?
            .fill(spec.secret_slots());
        let destination = self
            .store
            .destination(spec.destination.destination_id)
            .await
            .map_err(|e| RunError::Destination(format!("reading the destination: {e}")))?
            .ok_or_else(|| RunError::Permanent("the pipe's destination no longer exists".into()))?;
        let mut destination_spec = destination.spec.clone();
        destination
            .secrets(&self.store)
            .map_err(|e| RunError::Permanent(e.to_string()))?
            .fill(destination_spec.secret_slots());
        let endpoint = Endpoint {
            url: destination_spec.url.clone(),
            user: destination_spec.username.clone(),
            password: destination_spec
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default(),
            database: destination_spec.database.clone(),
        };
        let prepared = prepare(&spec, endpoint).await?;
        let Source::Kafka(source) = &spec.source else {
            return Err(RunError::Permanent(
                "only Kafka pipes run on this worker so far".into(),
            ));
        };
        let group = source
            .consumer_group
            .clone()
            .unwrap_or_else(|| PipeSpec::default_consumer_group(pipe.id));
        let client_id = format!("sluice-{}-{}", pipe.id, self.lease.replica);
        let settings =
            sluice_kafka::consumer_settings(source, &group, &client_id, spec.scaling.replica_size)
                .map_err(|e| RunError::Permanent(e.to_string()))?;
        let member = GroupMember::new(&settings)
            .map_err(|e| RunError::Permanent(format!("Kafka client: {e}")))?;
        member
            .start(source)
            .map_err(|e| RunError::Source(format!("joining the consumer group: {e}")))?;
        self.set(ReplicaStatus::Running, None);
        tracing::info!(group = %group, table = %prepared.table, "replica running");

        let metrics = Metrics::new(&pipe.id.to_string(), &spec.name, self.lease.replica);
        let mut gauge_tick = tokio::time::interval(GAUGE_INTERVAL);
        let mut pipeline = Pipeline {
            pipe_id: pipe.id,
            positions: std::collections::HashMap::new(),
            prepared,
            limits: BatchLimits::for_pipe(&spec.settings, spec.scaling.replica_size),
            size: spec.scaling.replica_size,
            batch: BTreeMap::new(),
            rows: 0,
            bytes: 0,
            opened: None,
            metrics,
            counters: self.counters.clone(),
        };
        loop {
            let wait = pipeline.opened.map_or(Duration::from_secs(3600), |opened| {
                pipeline.limits.remaining_wait(opened.elapsed())
            });
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    // A graceful stop inserts and commits what it holds.
                    if let Err(e) = pipeline.flush(&member).await {
                        tracing::warn!(error = ?e, "final flush failed; the rows will be read again");
                    }
                    return Ok(());
                }
                message = member.recv() => match message {
                    Ok(message) => {
                        failing.source = None;
                        pipeline.add(&member, &message);
                    }
                    Err(e) => {
                        let since = *failing.source.get_or_insert_with(Instant::now);
                        tracing::warn!(error = %e, "Kafka consumer error");
                        self.set(ReplicaStatus::Retrying, Some(format!("source: {e}")));
                        if since.elapsed() >= self.limits.source {
                            return Err(RunError::Source(e.to_string()));
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                _ = tokio::time::sleep(wait) => {}
                _ = gauge_tick.tick() => self.refresh_gauges(&member, &pipeline),
            }
            let age = pipeline.opened.map_or(Duration::ZERO, |o| o.elapsed());
            if let Some(reason) = pipeline
                .limits
                .flush_reason(pipeline.rows, pipeline.bytes, age)
            {
                tracing::debug!(
                    ?reason,
                    rows = pipeline.rows,
                    bytes = pipeline.bytes,
                    "flushing"
                );
                pipeline.flush(&member).await?;
                failing.destination = None;
                self.set(ReplicaStatus::Running, None);
            }
        }
    }
}

#[derive(Default)]
struct PartitionBatch {
    /// The assignment epoch the rows were read under.
    epoch: u64,
    first_offset: i64,
    rows: Vec<u8>,
    row_count: u64,
    errors: Vec<u8>,
    error_count: u64,
    next_offset: i64,
    oldest_timestamp_ms: Option<i64>,
}

/// The next offset expected from a partition under an assignment.
struct Position {
    epoch: u64,
    next: i64,
    accepted_gap: Option<(i64, i64)>,
}

struct Pipeline {
    pipe_id: Uuid,
    positions: std::collections::HashMap<PartitionKey, Position>,
    prepared: Prepared,
    limits: BatchLimits,
    size: ReplicaSize,
    batch: BTreeMap<PartitionKey, PartitionBatch>,
    rows: u64,
    bytes: u64,
    opened: Option<Instant>,
    metrics: Metrics,
    counters: Arc<Counters>,
}

impl Pipeline {
    fn add(&mut self, member: &GroupMember, message: &sluice_kafka::BorrowedMessage<'_>) {
        let key = PartitionKey {
            topic: message.topic().to_owned(),
            partition: message.partition(),
        };
        let Some(epoch) = member.assignment_epoch(&key) else {
            // Left in the queue from before a revocation: its next owner reads it.
            tracing::debug!(topic = %key.topic, partition = key.partition, offset = message.offset(), "skipped a message of an unassigned partition");
            return;
        };
        if !self.continuous(member, &key, epoch, message.offset()) {
            return;
        }
        let payload = message.payload().unwrap_or_default();
        self.metrics.fetched_events.increment(1);
        self.metrics.fetched_bytes.increment(payload.len() as u64);
        self.counters.fetched_events.fetch_add(1, Ordering::Relaxed);
        self.counters
            .fetched_bytes
            .fetch_add(payload.len() as i64, Ordering::Relaxed);
        let headers: Vec<(&str, Option<&[u8]>)> = message
            .headers()
            .map(|h| h.iter().map(|header| (header.key, header.value)).collect())
            .unwrap_or_default();
        let meta = RecordMeta {
            key: message.key(),
            timestamp_ms: message.timestamp().to_millis(),
            partition: message.partition(),
            offset: message.offset(),
            topic: message.topic(),
            headers,
        };
        if self.batch.get(&key).is_some_and(|b| b.epoch != epoch) {
            // Revoked and assigned again: reading restarted at the committed
            // offset, so what was buffered before is read again.
            self.drop_partition(&key);
        }
        let entry = self.batch.entry(key).or_insert_with(|| PartitionBatch {
            epoch,
            first_offset: message.offset(),
            ..PartitionBatch::default()
        });
        let before = entry.rows.len() + entry.errors.len();
        let outcome = if payload.len() as u64 > self.size.max_kafka_message_bytes() {
            Err(sluice_formats::RecordError {
                code: ErrorCode::MessageTooLarge,
                message: format!(
                    "{} bytes exceed the {} byte limit of a {:?} replica",
                    payload.len(),
                    self.size.max_kafka_message_bytes(),
                    self.size
                ),
            })
        } else {
            self.prepared
                .plan
                .encode_message(payload, &meta, &mut entry.rows)
        };
        match outcome {
            Ok(rows) => {
                entry.row_count += u64::from(rows);
                self.rows += u64::from(rows);
            }
            Err(error) => {
                self.metrics.errors.increment(1);
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                encode_error_row(self.pipe_id, &meta, payload, &error, &mut entry.errors);
                entry.error_count += 1;
                // Error rows count toward the batch, so a topic of bad
                // records still commits its progress.
                self.rows += 1;
            }
        }
        entry.next_offset = message.offset() + 1;
        if entry.oldest_timestamp_ms.is_none() {
            entry.oldest_timestamp_ms = meta.timestamp_ms;
        }
        self.bytes += (entry.rows.len() + entry.errors.len() - before) as u64;
        self.opened.get_or_insert_with(Instant::now);
    }

    /// Guards against the consumer skipping offsets. librdkafka was seen
    /// (against tansu, across cooperative rebalances) to resume a partition
    /// past messages it had fetched but not delivered; committing after
    /// such a jump would lose them. On a jump the partition is sought back
    /// to the expected offset once; if the same jump repeats, the gap is
    /// real (compaction, transaction markers) and is accepted.
    fn continuous(
        &mut self,
        member: &GroupMember,
        key: &PartitionKey,
        epoch: u64,
        offset: i64,
    ) -> bool {
        let expected = match self.positions.get(key) {
            Some(position) if position.epoch == epoch => Some(position.next),
            // First message under this assignment: it must start where the
            // group committed.
            _ => match member.committed(key) {
                Ok(committed) => committed,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the committed offset failed; trusting the consumer");
                    None
                }
            },
        };
        let position = self.positions.entry(key.clone()).or_insert(Position {
            epoch,
            next: offset,
            accepted_gap: None,
        });
        if position.epoch != epoch {
            *position = Position {
                epoch,
                next: offset,
                accepted_gap: None,
            };
        }
        if expected.is_some_and(|e| offset < e)
            && position.epoch == epoch
            && self.batch.contains_key(key)
        {
            // Already buffered under this assignment (a replay after a seek).
            return false;
        }
        if let Some(expected) = expected.filter(|&e| offset > e) {
            if position.accepted_gap != Some((expected, offset)) {
                tracing::warn!(topic = %key.topic, partition = key.partition, expected, got = offset, "the consumer skipped offsets; seeking back");
                position.accepted_gap = Some((expected, offset));
                position.next = expected;
                if let Err(e) = member.seek(key, expected) {
                    tracing::warn!(error = %e, "seeking back failed");
                }
                return false;
            }
            tracing::info!(topic = %key.topic, partition = key.partition, from = expected, to = offset, "accepting a gap in the partition's offsets");
        }
        position.next = offset + 1;
        true
    }

    fn drop_partition(&mut self, key: &PartitionKey) {
        if let Some(dropped) = self.batch.remove(key) {
            tracing::info!(
                topic = %key.topic,
                partition = key.partition,
                from = dropped.first_offset,
                to = dropped.next_offset - 1,
                "dropped the uncommitted rows of a revoked assignment"
            );
            self.rows -= dropped.row_count + dropped.error_count;
            self.bytes -= (dropped.rows.len() + dropped.errors.len()) as u64;
        }
        if self.batch.is_empty() {
            self.opened = None;
        }
    }

    async fn flush(&mut self, member: &GroupMember) -> Result<(), RunError> {
        let stale: Vec<PartitionKey> = self
            .batch
            .iter()
            .filter(|(key, b)| member.assignment_epoch(key) != Some(b.epoch))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &stale {
            self.drop_partition(key);
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        let rows: Vec<Bytes> = self
            .batch
            .values_mut()
            .map(|b| Bytes::from(std::mem::take(&mut b.rows)))
            .collect();
        let errors: Vec<Bytes> = self
            .batch
            .values_mut()
            .map(|b| Bytes::from(std::mem::take(&mut b.errors)))
            .collect();
        let row_count: u64 = self.batch.values().map(|b| b.row_count).sum();
        let error_count: u64 = self.batch.values().map(|b| b.error_count).sum();
        let sent_bytes: usize = rows.iter().map(Bytes::len).sum();
        let sink = &self.prepared.sink;
        let outcome = async {
            if row_count > 0 {
                sink.insert_rowbinary(
                    &self.prepared.insert_statement,
                    rows,
                    &self.prepared.insert_settings,
                )
                .await?;
            }
            if error_count > 0 {
                sink.insert_rowbinary(&self.prepared.error_insert_statement, errors, &[])
                    .await?;
            }
            Ok::<_, sluice_clickhouse::SinkError>(())
        }
        .await;
        // Whatever happened, this batch is done: on failure it is dropped
        // uncommitted and read again after the replica restarts.
        let batch = std::mem::take(&mut self.batch);
        self.rows = 0;
        self.bytes = 0;
        self.opened = None;
        if let Err(e) = outcome {
            return Err(if e.is_permanent() {
                RunError::Permanent(e.to_string())
            } else {
                RunError::Destination(e.to_string())
            });
        }
        self.metrics.sent_rows.increment(row_count);
        self.metrics.sent_bytes.increment(sent_bytes as u64);
        self.counters
            .sent_rows
            .fetch_add(row_count as i64, Ordering::Relaxed);
        self.counters
            .sent_bytes
            .fetch_add(sent_bytes as i64, Ordering::Relaxed);
        let now_ms = chrono::Utc::now().timestamp_millis();
        for b in batch.values() {
            if let Some(oldest) = b.oldest_timestamp_ms {
                self.metrics
                    .latency
                    .record((now_ms - oldest).max(0) as f64 / 1000.0);
            }
        }
        let batch_ranges: Vec<(PartitionKey, i64, i64)> = batch
            .iter()
            .map(|(key, b)| (key.clone(), b.first_offset, b.next_offset))
            .collect();
        let offsets: Vec<(PartitionKey, i64)> = batch
            .into_iter()
            .filter(|(key, b)| member.assignment_epoch(key) == Some(b.epoch))
            .map(|(key, b)| (key, b.next_offset))
            .collect();
        let committed: Vec<String> = batch_ranges
            .iter()
            .map(|(key, first, next)| format!("{}/{}:{first}..{next}", key.topic, key.partition))
            .collect();
        tracing::debug!(?committed, "committing");
        member.commit(&offsets).map_err(|e| {
            RunError::Source(format!("committing offsets after a successful insert: {e}"))
        })?;
        tracing::debug!(
            rows = row_count,
            errors = error_count,
            "batch inserted and committed"
        );
        Ok(())
    }
}

fn encode_error_row(
    pipe_id: Uuid,
    meta: &RecordMeta<'_>,
    payload: &[u8],
    error: &sluice_formats::RecordError,
    out: &mut Vec<u8>,
) {
    let truncated = payload.len() > ERROR_RAW_MAX_BYTES;
    let raw = &payload[..payload.len().min(ERROR_RAW_MAX_BYTES)];
    let values = [
        Value::string(pipe_id.to_string()),
        Value::string(meta.topic),
        Value::int(i128::from(meta.partition)),
        Value::int(i128::from(meta.offset)),
        Value::Bytes(meta.key.unwrap_or_default().to_vec()),
        Value::string(error.code.as_str()),
        Value::string(error.message.clone()),
        Value::Bytes(raw.to_vec()),
        Value::int(i128::from(u8::from(truncated))),
        Value::int(payload.len() as i128),
        Value::DateTime(chrono::Utc::now().timestamp()),
    ];
    let start = out.len();
    for ((_, ty), value) in ERROR_TABLE_COLUMNS.iter().zip(values.iter()) {
        if encode(ty, value, out).is_err() {
            // Cannot happen with these fixed types; never leave half a row.
            out.truncate(start);
            return;
        }
    }
}
