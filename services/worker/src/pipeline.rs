//! What every source shares: decoding records into RowBinary, batching them
//! per source key (a Kafka partition, a Kinesis shard) under the
//! assignment epoch they were read with, bad records into the error table,
//! inserting, and the metrics. The sources decide what to commit, and only
//! after `insert` returned: offsets and checkpoints advance only over rows
//! ClickHouse acknowledged.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sluice_clickhouse::ddl::{ERROR_RAW_MAX_BYTES, ERROR_TABLE_COLUMNS};
use sluice_clickhouse::{encode, Value};
use sluice_formats::{ErrorCode, RecordMeta};
use sluice_model::batching::BatchLimits;
use sluice_store::PipeCounters;
use uuid::Uuid;

use crate::destination::{PrepareError, Prepared};

#[derive(Debug)]
pub enum RunError {
    Permanent(String),
    Source(String),
    Destination(String),
}

impl RunError {
    pub fn into_message(self) -> String {
        match self {
            RunError::Permanent(m) | RunError::Source(m) | RunError::Destination(m) => m,
        }
    }
}

impl From<PrepareError> for RunError {
    fn from(e: PrepareError) -> Self {
        match e {
            PrepareError::Permanent(m) => RunError::Permanent(m),
            PrepareError::Transient(m) => RunError::Destination(m),
        }
    }
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

/// The replica's metric handles, registered once: looking a labelled
/// metric up per message would cost two allocations and a registry lookup
/// on the hot path.
pub struct Metrics {
    fetched_events: metrics::Counter,
    fetched_bytes: metrics::Counter,
    sent_rows: metrics::Counter,
    sent_bytes: metrics::Counter,
    errors: metrics::Counter,
    latency: metrics::Histogram,
    pub cpu_seconds: metrics::Gauge,
    pub memory_bytes: metrics::Gauge,
    labels: [(&'static str, String); 3],
}

impl Metrics {
    pub fn new(pipe_id: &str, pipe_name: &str, source: &'static str, replica: i32) -> Self {
        let labels = [
            ("pipe_id", pipe_id.to_owned()),
            ("pipe_name", pipe_name.to_owned()),
            ("source", source.to_owned()),
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

    /// Per-key gauges are looked up every few seconds, not per message, so
    /// they need no cached handles; the exporter drops those of keys that
    /// went elsewhere once they stop being refreshed. `extra` names the key
    /// (`topic` and `partition`, or `shard`).
    pub fn key_gauge(&self, name: &'static str, extra: &[(&'static str, String)], value: f64) {
        let mut labels = self.labels.to_vec();
        labels.extend_from_slice(extra);
        metrics::gauge!(name, &labels).set(value);
    }
}

/// Where a record came from, as the error table records it.
pub struct Coordinates<'a> {
    /// Joined with `/` into the `source` column, only for a bad record:
    /// `[topic]`, or `[stream, shard, sequence number]`.
    pub source: &'a [&'a str],
    pub partition: i64,
    /// Kafka offset; -1 for Kinesis (the sequence number is in `source`).
    pub offset: i64,
}

/// One source key's share of the batch.
pub struct KeyBatch<P> {
    /// The assignment epoch the rows were read under.
    pub epoch: u64,
    pub first: P,
    pub last: P,
    rows: Vec<u8>,
    row_count: u64,
    errors: Vec<u8>,
    error_count: u64,
    oldest_timestamp_ms: Option<i64>,
}

/// A key's part of an acknowledged insert.
pub struct Flushed<K, P> {
    pub key: K,
    pub epoch: u64,
    pub first: P,
    pub last: P,
}

pub struct Pipeline<K, P> {
    pub pipe_id: Uuid,
    pub prepared: Prepared,
    pub limits: BatchLimits,
    pub max_message_bytes: u64,
    pub size_name: String,
    pub batch: BTreeMap<K, KeyBatch<P>>,
    pub rows: u64,
    pub bytes: u64,
    pub opened: Option<Instant>,
    pub metrics: Metrics,
    pub counters: Arc<Counters>,
}

impl<K: Ord + Clone + Debug, P: Clone + Debug> Pipeline<K, P> {
    /// Decodes one record into the key's batch (or its error rows).
    pub fn add(
        &mut self,
        key: &K,
        epoch: u64,
        position: P,
        payload: &[u8],
        meta: &RecordMeta<'_>,
        coordinates: &Coordinates<'_>,
    ) {
        self.metrics.fetched_events.increment(1);
        self.metrics.fetched_bytes.increment(payload.len() as u64);
        self.counters.fetched_events.fetch_add(1, Ordering::Relaxed);
        self.counters
            .fetched_bytes
            .fetch_add(payload.len() as i64, Ordering::Relaxed);
        if self.batch.get(key).is_some_and(|b| b.epoch != epoch) {
            // Lost and assigned again: reading restarted at the last commit,
            // so what was buffered before is read again.
            self.drop_key(key);
        }
        let entry = self.batch.entry(key.clone()).or_insert_with(|| KeyBatch {
            epoch,
            first: position.clone(),
            last: position.clone(),
            rows: Vec::new(),
            row_count: 0,
            errors: Vec::new(),
            error_count: 0,
            oldest_timestamp_ms: None,
        });
        let before = entry.rows.len() + entry.errors.len();
        let outcome = if payload.len() as u64 > self.max_message_bytes {
            Err(sluice_formats::RecordError {
                code: ErrorCode::MessageTooLarge,
                message: format!(
                    "{} bytes exceed the {} byte limit of a {} replica",
                    payload.len(),
                    self.max_message_bytes,
                    self.size_name
                ),
            })
        } else {
            self.prepared
                .plan
                .encode_message(payload, meta, &mut entry.rows)
        };
        match outcome {
            Ok(rows) => {
                entry.row_count += u64::from(rows);
                self.rows += u64::from(rows);
            }
            Err(error) => {
                self.metrics.errors.increment(1);
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                encode_error_row(
                    self.pipe_id,
                    meta,
                    coordinates,
                    payload,
                    &error,
                    &mut entry.errors,
                );
                entry.error_count += 1;
                // Error rows count toward the batch, so a source of bad
                // records still commits its progress.
                self.rows += 1;
            }
        }
        entry.last = position;
        if entry.oldest_timestamp_ms.is_none() {
            entry.oldest_timestamp_ms = meta.timestamp_ms;
        }
        self.bytes += (entry.rows.len() + entry.errors.len() - before) as u64;
        self.opened.get_or_insert_with(Instant::now);
    }

    /// Whether rows of the key are buffered under this epoch.
    pub fn holds(&self, key: &K, epoch: u64) -> bool {
        self.batch.get(key).is_some_and(|b| b.epoch == epoch)
    }

    /// Forgets the key's uncommitted rows: its next reader reads them again.
    pub fn drop_key(&mut self, key: &K) {
        if let Some(dropped) = self.batch.remove(key) {
            tracing::info!(
                ?key,
                from = ?dropped.first,
                to = ?dropped.last,
                "dropped the uncommitted rows of a lost assignment"
            );
            self.rows -= dropped.row_count + dropped.error_count;
            self.bytes -= (dropped.rows.len() + dropped.errors.len()) as u64;
        }
        if self.batch.is_empty() {
            self.opened = None;
        }
    }

    /// Drops the rows of keys whose assignment changed since they were read.
    pub fn drop_stale(&mut self, current_epoch: impl Fn(&K) -> Option<u64>) {
        let stale: Vec<K> = self
            .batch
            .iter()
            .filter(|(key, b)| current_epoch(key) != Some(b.epoch))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &stale {
            self.drop_key(key);
        }
    }

    /// Inserts the rows and the error rows. On success returns what each
    /// key contributed, for the source to commit; either way the batch is
    /// emptied (on failure nothing is committed and the source reads the
    /// rows again).
    pub async fn insert(&mut self) -> Result<Vec<Flushed<K, P>>, RunError> {
        if self.batch.is_empty() {
            return Ok(Vec::new());
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
        tracing::debug!(rows = row_count, errors = error_count, "batch inserted");
        Ok(batch
            .into_iter()
            .map(|(key, b)| Flushed {
                key,
                epoch: b.epoch,
                first: b.first,
                last: b.last,
            })
            .collect())
    }
}

fn encode_error_row(
    pipe_id: Uuid,
    meta: &RecordMeta<'_>,
    coordinates: &Coordinates<'_>,
    payload: &[u8],
    error: &sluice_formats::RecordError,
    out: &mut Vec<u8>,
) {
    let truncated = payload.len() > ERROR_RAW_MAX_BYTES;
    let raw = &payload[..payload.len().min(ERROR_RAW_MAX_BYTES)];
    let values = [
        Value::string(pipe_id.to_string()),
        Value::string(coordinates.source.join("/")),
        Value::int(i128::from(coordinates.partition)),
        Value::int(i128::from(coordinates.offset)),
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

impl<K, P> Pipeline<K, P> {
    pub fn new(
        pipe_id: Uuid,
        spec: &sluice_model::PipeSpec,
        prepared: Prepared,
        source: &'static str,
        replica: i32,
        max_message_bytes: u64,
        counters: Arc<Counters>,
    ) -> Self {
        let size = spec.scaling.replica_size;
        Pipeline {
            pipe_id,
            prepared,
            limits: BatchLimits::for_pipe(&spec.settings, size),
            max_message_bytes,
            size_name: format!("{size:?}"),
            batch: BTreeMap::new(),
            rows: 0,
            bytes: 0,
            opened: None,
            metrics: Metrics::new(&pipe_id.to_string(), &spec.name, source, replica),
            counters,
        }
    }

    /// How long the open batch may still wait before its time limit.
    pub fn wait(&self) -> std::time::Duration {
        self.opened
            .map_or(std::time::Duration::from_secs(3600), |opened| {
                self.limits.remaining_wait(opened.elapsed())
            })
    }

    /// Whether the batch is due (rows, bytes or age).
    pub fn due(&self) -> bool {
        let age = self
            .opened
            .map_or(std::time::Duration::ZERO, |o| o.elapsed());
        match self.limits.flush_reason(self.rows, self.bytes, age) {
            Some(reason) => {
                tracing::debug!(?reason, rows = self.rows, bytes = self.bytes, "flushing");
                true
            }
            None => false,
        }
    }
}
