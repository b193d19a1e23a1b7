//! Decoding records into RowBinary and batching them per source key (a
//! Kafka partition, a Kinesis shard) under the assignment epoch they were
//! read with. Records that cannot be decoded become error rows at once;
//! the raw bytes of the others are kept until ClickHouse acknowledged them,
//! so a row ClickHouse refuses can still go to the error table as it came.

use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_clickhouse::ddl::{ERROR_RAW_MAX_BYTES, ERROR_TABLE_COLUMNS};
use sluice_clickhouse::{encode, Value};
use sluice_formats::{ErrorCode, RecordError, RowPlan};
use sluice_model::batching::BatchLimits;
use sluice_source::{ErrorCoordinates, Record};
use sluice_store::PipeCounters;
use uuid::Uuid;

/// What a replica did since the supervisor last collected it; added to the
/// pipe's totals in Postgres (`GET /v1/pipes/{id}/metrics`).
#[derive(Default)]
pub struct Counters {
    pub fetched_events: AtomicI64,
    pub fetched_bytes: AtomicI64,
    pub sent_rows: AtomicI64,
    pub sent_bytes: AtomicI64,
    pub errors: AtomicI64,
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
    pub fetched_events: metrics::Counter,
    pub fetched_bytes: metrics::Counter,
    pub sent_rows: metrics::Counter,
    pub sent_bytes: metrics::Counter,
    pub errors: metrics::Counter,
    pub latency: metrics::Histogram,
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
    /// went elsewhere once they stop being refreshed.
    pub fn key_gauge(&self, name: &'static str, extra: &[(&'static str, String)], value: f64) {
        let mut labels = self.labels.to_vec();
        labels.extend_from_slice(extra);
        metrics::gauge!(name, &labels).set(value);
    }
}

/// One record of a key's batch, in order: where its rows end in the key's
/// row buffer, where its error row ends in the error buffer, and where its
/// raw bytes (payload, then Kafka key; kept only for records with rows)
/// end in the raw buffer.
#[derive(Debug, Clone)]
pub struct Span<P> {
    pub rows_end: usize,
    pub errors_end: usize,
    pub raw_end: usize,
    pub key_len: usize,
    pub rows: u32,
    /// The record became an error row.
    pub error: bool,
    pub position: P,
}

/// One source key's share of the batch.
pub struct KeyBatch<P> {
    /// The assignment epoch the rows were read under.
    pub epoch: u64,
    pub first: P,
    pub last: P,
    pub rows: Vec<u8>,
    pub spans: Vec<Span<P>>,
    pub raw: Vec<u8>,
    pub row_count: u64,
    pub errors: Vec<u8>,
    pub error_count: u64,
    pub oldest_timestamp_ms: Option<i64>,
}

impl<P: Clone> KeyBatch<P> {
    fn held_bytes(&self) -> usize {
        self.rows.len() + self.raw.len() + self.errors.len()
    }

    /// Splits after record `index`: the records up to it, and the rest
    /// (`None` when there is none).
    pub fn split_after(mut self, index: usize) -> (KeyBatch<P>, Option<KeyBatch<P>>) {
        if index + 1 >= self.spans.len() {
            return (self, None);
        }
        let tail_spans = self.spans.split_off(index + 1);
        let end = &self.spans[index];
        let (rows_at, errors_at, raw_at) = (end.rows_end, end.errors_end, end.raw_end);
        let tail_rows = self.rows.split_off(rows_at);
        let tail_errors = self.errors.split_off(errors_at);
        let tail_raw = self.raw.split_off(raw_at);
        let spans: Vec<Span<P>> = tail_spans
            .into_iter()
            .map(|s| Span {
                rows_end: s.rows_end - rows_at,
                errors_end: s.errors_end - errors_at,
                raw_end: s.raw_end - raw_at,
                ..s
            })
            .collect();
        let tail = KeyBatch {
            epoch: self.epoch,
            first: spans[0].position.clone(),
            last: self.last.clone(),
            rows: tail_rows,
            row_count: spans.iter().map(|s| u64::from(s.rows)).sum(),
            error_count: spans.iter().filter(|s| s.error).count() as u64,
            spans,
            raw: tail_raw,
            errors: tail_errors,
            oldest_timestamp_ms: None,
        };
        self.last = end.position.clone();
        self.row_count -= tail.row_count;
        self.error_count -= tail.error_count;
        (self, Some(tail))
    }
}

/// Orders positions written as decimal numbers (Kafka offsets, Kinesis
/// sequence numbers of up to 128 digits).
pub fn decimal_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    (a.len(), a).cmp(&(b.len(), b))
}

pub struct Batch<K, P> {
    pub pipe_id: Uuid,
    plan: RowPlan,
    pub limits: BatchLimits,
    max_message_bytes: u64,
    size_name: String,
    pub keys: BTreeMap<K, KeyBatch<P>>,
    /// Rows and error rows: what the row limit counts.
    pub rows: u64,
    /// Encoded rows, error rows and the raw bytes kept for them: what the
    /// replica holds, and what the byte limit counts.
    pub bytes: u64,
    opened: Option<Instant>,
    pub metrics: Metrics,
    pub counters: Arc<Counters>,
}

impl<K: Ord + Clone + Debug + Display, P: Clone + Debug> Batch<K, P> {
    pub fn new(
        pipe_id: Uuid,
        plan: RowPlan,
        limits: BatchLimits,
        max_message_bytes: u64,
        size_name: String,
        metrics: Metrics,
        counters: Arc<Counters>,
    ) -> Self {
        Batch {
            pipe_id,
            plan,
            limits,
            max_message_bytes,
            size_name,
            keys: BTreeMap::new(),
            rows: 0,
            bytes: 0,
            opened: None,
            metrics,
            counters,
        }
    }

    /// Decodes one record into its key's batch (or its error rows).
    pub fn add(&mut self, record: Record<'_, K, P>) {
        let Record {
            key,
            epoch,
            position,
            payload,
            meta,
        } = record;
        self.metrics.fetched_events.increment(1);
        self.metrics.fetched_bytes.increment(payload.len() as u64);
        self.counters.fetched_events.fetch_add(1, Ordering::Relaxed);
        self.counters
            .fetched_bytes
            .fetch_add(payload.len() as i64, Ordering::Relaxed);
        if self.keys.get(key).is_some_and(|b| b.epoch != epoch) {
            // Lost and assigned again: reading restarted at the last commit,
            // so what was buffered before is read again.
            self.drop_key(key);
        }
        let entry = self.keys.entry(key.clone()).or_insert_with(|| KeyBatch {
            epoch,
            first: position.clone(),
            last: position.clone(),
            rows: Vec::new(),
            spans: Vec::new(),
            raw: Vec::new(),
            row_count: 0,
            errors: Vec::new(),
            error_count: 0,
            oldest_timestamp_ms: None,
        });
        let before = entry.held_bytes();
        let outcome = if payload.len() as u64 > self.max_message_bytes {
            Err(RecordError {
                code: ErrorCode::MessageTooLarge,
                message: format!(
                    "{} bytes exceed the {} byte limit of a {} replica",
                    payload.len(),
                    self.max_message_bytes,
                    self.size_name
                ),
            })
        } else {
            self.plan.encode_message(payload, &meta, &mut entry.rows)
        };
        let mut error = false;
        let mut rows = 0;
        match outcome {
            Ok(0) => {}
            Ok(n) => {
                rows = n;
                entry.raw.extend_from_slice(payload);
                entry.raw.extend_from_slice(meta.key.unwrap_or_default());
                entry.row_count += u64::from(n);
                self.rows += u64::from(n);
            }
            Err(record_error) => {
                error = true;
                self.metrics.errors.increment(1);
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                let coordinates = ErrorCoordinates::of(key, &meta);
                encode_error_row(
                    self.pipe_id,
                    &coordinates,
                    meta.key.unwrap_or_default(),
                    payload,
                    &record_error,
                    &mut entry.errors,
                );
                entry.error_count += 1;
                // Error rows count toward the batch, so a source of bad
                // records still commits its progress.
                self.rows += 1;
            }
        }
        entry.spans.push(Span {
            rows_end: entry.rows.len(),
            errors_end: entry.errors.len(),
            raw_end: entry.raw.len(),
            key_len: if rows > 0 {
                meta.key.map_or(0, <[u8]>::len)
            } else {
                0
            },
            rows,
            error,
            position: position.clone(),
        });
        entry.last = position;
        if entry.oldest_timestamp_ms.is_none() {
            entry.oldest_timestamp_ms = meta.timestamp_ms;
        }
        self.bytes += (entry.held_bytes() - before) as u64;
        self.opened.get_or_insert_with(Instant::now);
    }

    /// Forgets the key's uncommitted rows: its next reader reads them again.
    pub fn drop_key(&mut self, key: &K) {
        if let Some(dropped) = self.keys.remove(key) {
            tracing::info!(
                ?key,
                from = ?dropped.first,
                to = ?dropped.last,
                "dropped the uncommitted rows of a lost assignment"
            );
            self.rows -= dropped.row_count + dropped.error_count;
            self.bytes -= dropped.held_bytes() as u64;
        }
        if self.keys.is_empty() {
            self.opened = None;
        }
    }

    /// Drops the rows of keys whose assignment changed since they were read.
    pub fn drop_stale(&mut self, current_epoch: impl Fn(&K) -> Option<u64>) {
        let stale: Vec<K> = self
            .keys
            .iter()
            .filter(|(key, b)| current_epoch(key) != Some(b.epoch))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &stale {
            self.drop_key(key);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Returns a key's records to the batch (the part of a block an
    /// exactly-once replay must not insert yet).
    pub fn put_back(&mut self, key: K, records: KeyBatch<P>) {
        self.rows += records.row_count + records.error_count;
        self.bytes += records.held_bytes() as u64;
        self.keys.insert(key, records);
        self.opened.get_or_insert_with(Instant::now);
    }

    /// Empties the batch, handing its keys over to be inserted.
    pub fn take(&mut self) -> BTreeMap<K, KeyBatch<P>> {
        self.rows = 0;
        self.bytes = 0;
        self.opened = None;
        std::mem::take(&mut self.keys)
    }

    /// How long the open batch may still wait before its time limit.
    pub fn wait(&self) -> Duration {
        self.opened.map_or(Duration::from_secs(3600), |opened| {
            self.limits.remaining_wait(opened.elapsed())
        })
    }

    /// Whether the batch is due (rows, bytes or age).
    pub fn due(&self) -> bool {
        let age = self.opened.map_or(Duration::ZERO, |o| o.elapsed());
        match self.limits.flush_reason(self.rows, self.bytes, age) {
            Some(reason) => {
                tracing::debug!(?reason, rows = self.rows, bytes = self.bytes, "flushing");
                true
            }
            None => false,
        }
    }
}

/// Appends one row of the error table.
pub fn encode_error_row(
    pipe_id: Uuid,
    coordinates: &ErrorCoordinates,
    record_key: &[u8],
    payload: &[u8],
    error: &RecordError,
    out: &mut Vec<u8>,
) {
    let truncated = payload.len() > ERROR_RAW_MAX_BYTES;
    let raw = &payload[..payload.len().min(ERROR_RAW_MAX_BYTES)];
    let values = [
        Value::string(pipe_id.to_string()),
        Value::string(coordinates.source.clone()),
        Value::int(i128::from(coordinates.partition)),
        Value::int(i128::from(coordinates.offset)),
        Value::Bytes(record_key.to_vec()),
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
