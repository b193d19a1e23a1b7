//! Decoding records into RowBinary and batching them per source key (a
//! Kafka partition, a Kinesis shard) under the assignment epoch they were
//! read with. Records that cannot be decoded become error rows at once;
//! the raw bytes of the others are kept until ClickHouse acknowledged them,
//! so a row ClickHouse refuses can still go to the error table as it came.
//!
//! A batch is then inserted (`Insert`): one request for the rows, one for the error rows,
//! each with a deterministic deduplication token (the same block is always
//! sent with the same token, so a server that deduplicates keeps one copy
//! however often it is retried).
//!
//! Failures are classified (`sluice_clickhouse::Failure`): a transient one
//! sends the same block again after a pause, until the destination failure
//! limit; a permanent one stops the replica; a block whose rows ClickHouse
//! refuses is sent again `REJECTED_RETRIES` times, then halved
//! (`crate::bisect`) until the refused records are found: they go to the
//! error table as `INSERT_REJECTED` with ClickHouse's code and message and
//! their raw bytes, and the rest lands.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Debug, Display};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use sluice_clickhouse::ddl::{ERROR_RAW_MAX_BYTES, ERROR_TABLE_COLUMNS};
use sluice_clickhouse::{encode, Failure, SinkError, Value};
use sluice_formats::{Decoder, ErrorCode, RecordError};
use sluice_model::batching::BatchLimits;
use sluice_source::{Acked, ErrorCoordinates, Record};
use uuid::Uuid;

use crate::destination::Prepared;
use crate::replica::{Failing, Replica, RunError};
use crate::telemetry::{Counters, Metrics};

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
    decoder: Box<dyn Decoder>,
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
    /// Why decoding stopped: a record's schema could not be had from the
    /// registry (`SCHEMA_UNAVAILABLE`), or brings fields the table gains
    /// columns for first (`SCHEMA_CHANGED`). That record and those after it
    /// are not taken; the replica reads them again.
    pub halted: Option<RecordError>,
}

impl<K: Ord + Clone + Debug + Display, P: Clone + Debug> Batch<K, P> {
    pub fn new(
        pipe_id: Uuid,
        decoder: Box<dyn Decoder>,
        limits: BatchLimits,
        max_message_bytes: u64,
        size_name: String,
        metrics: Metrics,
        counters: Arc<Counters>,
    ) -> Self {
        Batch {
            pipe_id,
            decoder,
            limits,
            max_message_bytes,
            size_name,
            keys: BTreeMap::new(),
            rows: 0,
            bytes: 0,
            opened: None,
            metrics,
            counters,
            halted: None,
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
        if self.halted.is_some() {
            return;
        }
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
            self.decoder.decode(payload, &meta, &mut entry.rows)
        };
        if let Err(e) = &outcome {
            if matches!(
                e.code,
                ErrorCode::SchemaUnavailable | ErrorCode::SchemaChanged
            ) {
                self.halted = Some(e.clone());
                // A key first seen with this record has nothing to commit:
                // left in, its position would be committed past the record.
                if entry.spans.is_empty() {
                    self.keys.remove(key);
                }
                return;
            }
        }
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

// --- inserting a batch ---------------------------------------------------------

/// How often a block ClickHouse refuses is sent again as it is before it
/// is split, on servers without deduplication tokens. Once: a
/// materialized view may fail on something passing.
pub const REJECTED_RETRIES: u32 = 1;
/// The most inserts the search for refused records may make per batch.
/// Records of ranges still refused after that go to the error table
/// together (see docs/data-plane.md).
pub const BISECTION_BUDGET: usize = 2_000;

/// What an insert achieved.
pub struct Inserted<K, P> {
    pub acked: Vec<Acked<K, P>>,
    pub rows: u64,
    /// Records ClickHouse refused, now in the error table.
    pub rejected: usize,
    /// How the refused block was described by ClickHouse, for the event log.
    pub rejection: Option<String>,
    /// Inserts made to find the refused records.
    pub bisection_inserts: usize,
}

/// Where a record of the batch is: its key, and its index in the key's spans.
type RecordRef = (usize, usize);

pub struct Insert<'a> {
    pub replica: &'a Replica,
    pub prepared: &'a Prepared,
    pub failing: &'a mut Failing,
    /// Makes the deduplication token of identical content identical.
    pub generation: i64,
    /// One block per key, recorded as pending (see `crate::replica`).
    pub exactly_once: bool,
}

/// The token of a block: the pipe and generation (the same offsets decode
/// to other rows after a data-path change), then the ranges it holds.
pub fn block_token<K: Display, P: Display>(
    pipe_id: impl Display,
    generation: i64,
    ranges: &[(&K, &P, &P)],
) -> String {
    match ranges {
        [(key, first, last)] => format!("sluice:{pipe_id}:{generation}:{key}:{first}-{last}"),
        _ => {
            let mut digest = Sha256::new();
            for (key, first, last) in ranges {
                digest.update(format!("{key}:{first}-{last};").as_bytes());
            }
            let digest = digest.finalize();
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("sluice:{pipe_id}:{generation}:{hex}")
        }
    }
}

enum Refused {
    Rejected(SinkError),
    Stop(RunError),
}

impl Insert<'_> {
    /// Sends one request until it is acknowledged, refused for its rows,
    /// or the failure is beyond retrying.
    async fn send(
        &mut self,
        statement: &str,
        chunks: &[Bytes],
        token: &str,
        settings: &[(&'static str, &'static str)],
    ) -> Result<(), Refused> {
        let token = self.prepared.dedup_tokens.then_some(token);
        let mut backoff = Duration::from_millis(500);
        loop {
            let sent = self
                .prepared
                .sink
                .insert_rowbinary(statement, chunks.to_vec(), settings, token)
                .await;
            let error = match sent {
                Ok(()) => {
                    self.failing.destination = None;
                    return Ok(());
                }
                Err(e) => e,
            };
            match error.failure() {
                Failure::Permanent => {
                    return Err(Refused::Stop(RunError::Permanent(error.to_string())))
                }
                Failure::Rejected => return Err(Refused::Rejected(error)),
                Failure::Transient => {}
            }
            let since = *self.failing.destination.get_or_insert_with(Instant::now);
            let message = format!("destination: {error}");
            if since.elapsed() >= self.replica.limits.destination {
                return Err(Refused::Stop(RunError::Destination(error.to_string())));
            }
            tracing::warn!(error = %error, retry_in = ?backoff, "insert failed; sending the same block again");
            self.replica
                .set(sluice_store::ReplicaStatus::Retrying, Some(message));
            let pause = backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
            tokio::select! {
                _ = self.replica.cancel.cancelled() => {
                    return Err(Refused::Stop(RunError::Destination("stopped while retrying an insert".into())));
                }
                _ = tokio::time::sleep(pause) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
            // A replica retrying past its lease must not insert for its
            // successor.
            if !self.replica.lease_held().await.map_err(Refused::Stop)? {
                return Err(Refused::Stop(RunError::Destination(
                    "the replica lease was lost while retrying an insert".into(),
                )));
            }
        }
    }

    /// Inserts one block: the rows of `keys[block]`, as one request with
    /// `token`. A refused block is halved until the refused records are
    /// found (straight away when `halve_at_once`); returns them with
    /// ClickHouse's refusal.
    async fn insert_block<K, P>(
        &mut self,
        keys: &[(K, KeyBatch<P>)],
        rows: &[Bytes],
        block: Range<usize>,
        token: &str,
        halve_at_once: bool,
        outcome: &mut BlockOutcome,
    ) -> Result<(), RunError>
    where
        K: Display,
    {
        let prepared = self.prepared;
        let records: Vec<RecordRef> = block
            .clone()
            .flat_map(|k| {
                keys[k]
                    .1
                    .spans
                    .iter()
                    .enumerate()
                    .filter(|(_, span)| span.rows > 0)
                    .map(move |(s, _)| (k, s))
            })
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        // Resending a refused block with its token is pointless where the
        // server deduplicates: the table may have taken the block before a
        // view refused it, and then the resend is dropped as a duplicate
        // without reaching the views. Without tokens (18.16) it is resent.
        let retries = if prepared.dedup_tokens {
            0
        } else {
            REJECTED_RETRIES
        };
        let refusal = if halve_at_once {
            Some(SinkError::Protocol(
                "a refusal recorded before a restart".into(),
            ))
        } else {
            let whole = slice(keys, rows, &records, 0..records.len());
            let mut attempts = 0;
            loop {
                match self
                    .send(
                        &prepared.insert_statement,
                        &whole,
                        token,
                        &prepared.insert_settings,
                    )
                    .await
                {
                    Ok(()) => break None,
                    Err(Refused::Stop(e)) => return Err(e),
                    Err(Refused::Rejected(e)) if attempts < retries => {
                        attempts += 1;
                        tracing::warn!(error = %e, "ClickHouse refused the block; sending it once more before halving it");
                    }
                    Err(Refused::Rejected(e)) => break Some(e),
                }
            }
        };
        let Some(error) = refusal else {
            return Ok(());
        };
        tracing::warn!(error = %error, "ClickHouse refused the block; looking for the rows it refuses");
        if !halve_at_once {
            outcome.rejection = Some(error.to_string());
        }
        if self.exactly_once {
            // A replay after a crash must halve too, with the same tokens.
            let key = keys[block.start].0.to_string();
            self.replica
                .store
                .mark_pending_bisecting(self.replica.lease.pipe_id, &key)
                .await
                .map_err(|e| RunError::Source(format!("recording a halving: {e}")))?;
        }
        let mut search = crate::bisect::Bisection::new(records.len(), BISECTION_BUDGET);
        let mut refusals: BTreeMap<usize, SinkError> = BTreeMap::new();
        while let Some(range) = search.next() {
            let chunks = slice(keys, rows, &records, range.clone());
            let part = format!("{token}:{}-{}", range.start, range.end);
            match self
                .send(
                    &prepared.insert_statement,
                    &chunks,
                    &part,
                    &prepared.insert_settings,
                )
                .await
            {
                Ok(()) => search.landed(range),
                Err(Refused::Stop(e)) => return Err(e),
                Err(Refused::Rejected(e)) => {
                    if range.len() == 1 {
                        refusals.insert(range.start, e.clone());
                    }
                    if outcome.rejection.is_none() {
                        outcome.rejection = Some(e.to_string());
                    }
                    search.refused(range);
                }
            }
        }
        outcome.bisection_inserts += search.tried;
        let unresolved: Vec<usize> = search.unresolved.iter().flat_map(Range::clone).collect();
        for index in search.rejected.iter().chain(unresolved.iter()) {
            let refusal = refusals.remove(index).unwrap_or_else(|| error.clone());
            outcome.rejected.push((records[*index], refusal));
        }
        Ok(())
    }

    /// Inserts `keys` (taken out of the batch) and their error rows: as one
    /// block, or, for an exactly-once pipe, one block per key with the
    /// token of its range (`halve_at_once` names the keys whose block was
    /// being halved before a restart).
    pub async fn run<K, P>(
        &mut self,
        batch: &Batch<K, P>,
        mut keys: Vec<(K, KeyBatch<P>)>,
        halving: Option<&BTreeSet<String>>,
        coordinates: &(dyn Fn(&K, &P) -> ErrorCoordinates + Sync),
    ) -> Result<Inserted<K, P>, RunError>
    where
        K: Ord + Clone + Debug + Display + Send + Sync,
        P: Clone + Debug + Display + Send + Sync,
    {
        let pipe_id = batch.pipe_id;
        // The buffers move into `Bytes` without a copy; the spans keep
        // their offsets into them.
        let rows: Vec<Bytes> = keys
            .iter_mut()
            .map(|(_, b)| Bytes::from(std::mem::take(&mut b.rows)))
            .collect();
        let decode_errors: Vec<Vec<Bytes>> = keys
            .iter_mut()
            .map(|(_, b)| {
                if b.error_count > 0 {
                    vec![Bytes::from(std::mem::take(&mut b.errors))]
                } else {
                    Vec::new()
                }
            })
            .collect();
        let ranges: Vec<(&K, &P, &P)> = keys.iter().map(|(k, b)| (k, &b.first, &b.last)).collect();
        let token = block_token(pipe_id, self.generation, &ranges);
        let row_count: u64 = keys.iter().map(|(_, b)| b.row_count).sum();
        let prepared = self.prepared;

        let mut outcome = BlockOutcome::default();
        match halving {
            None => {
                self.insert_block(&keys, &rows, 0..keys.len(), &token, false, &mut outcome)
                    .await?
            }
            Some(halving) => {
                for k in 0..keys.len() {
                    let (key, block) = &keys[k];
                    let key_token = block_token(
                        pipe_id,
                        self.generation,
                        &[(key, &block.first, &block.last)],
                    );
                    let halve = halving.contains(&key.to_string());
                    self.insert_block(&keys, &rows, k..k + 1, &key_token, halve, &mut outcome)
                        .await?;
                }
            }
        }
        let rejected = outcome.rejected;

        // Error rows per key: the decode errors, then the refused records.
        let mut errors: Vec<Vec<Bytes>> = decode_errors;
        if !rejected.is_empty() {
            let mut refused: Vec<Vec<u8>> = vec![Vec::new(); keys.len()];
            for ((k, s), error) in &rejected {
                let (key, key_batch) = &keys[*k];
                let span = &key_batch.spans[*s];
                let raw_start = if *s == 0 {
                    0
                } else {
                    key_batch.spans[s - 1].raw_end
                };
                let payload_end = span.raw_end - span.key_len;
                encode_error_row(
                    pipe_id,
                    &coordinates(key, &span.position),
                    &key_batch.raw[payload_end..span.raw_end],
                    &key_batch.raw[raw_start..payload_end],
                    &RecordError {
                        code: ErrorCode::InsertRejected,
                        message: error.to_string(),
                    },
                    &mut refused[*k],
                );
            }
            for (k, rows) in refused.into_iter().enumerate() {
                if !rows.is_empty() {
                    errors[k].push(Bytes::from(rows));
                }
            }
            batch.metrics.errors.increment(rejected.len() as u64);
            batch
                .counters
                .errors
                .fetch_add(rejected.len() as i64, Ordering::Relaxed);
        }
        // One request for the batch; for an exactly-once pipe one per key,
        // with its block's token, so a rebuilt block's error rows are
        // dropped as duplicates too.
        let requests: Vec<(String, Vec<Bytes>)> = if halving.is_some() {
            keys.iter()
                .zip(errors)
                .filter(|(_, chunks)| !chunks.is_empty())
                .map(|((key, block), chunks)| {
                    let key_token = block_token(
                        pipe_id,
                        self.generation,
                        &[(key, &block.first, &block.last)],
                    );
                    (format!("{key_token}:errors"), chunks)
                })
                .collect()
        } else {
            let chunks: Vec<Bytes> = errors.into_iter().flatten().collect();
            if chunks.is_empty() {
                Vec::new()
            } else {
                vec![(format!("{token}:errors"), chunks)]
            }
        };
        for (error_token, chunks) in requests {
            match self
                .send(&prepared.error_insert_statement, &chunks, &error_token, &[])
                .await
            {
                Ok(()) => {}
                Err(Refused::Stop(e)) => return Err(e),
                Err(Refused::Rejected(e)) => {
                    return Err(RunError::Permanent(format!(
                        "the error table refused error rows: {e}"
                    )))
                }
            }
        }

        let rejected_rows: u64 = rejected
            .iter()
            .map(|((k, s), _)| u64::from(keys[*k].1.spans[*s].rows))
            .sum();
        let landed = row_count - rejected_rows;
        let sent_bytes: usize = rows.iter().map(Bytes::len).sum();
        batch.metrics.sent_rows.increment(landed);
        batch.metrics.sent_bytes.increment(sent_bytes as u64);
        batch
            .counters
            .sent_rows
            .fetch_add(landed as i64, Ordering::Relaxed);
        batch
            .counters
            .sent_bytes
            .fetch_add(sent_bytes as i64, Ordering::Relaxed);
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (_, b) in &keys {
            if let Some(oldest) = b.oldest_timestamp_ms {
                batch
                    .metrics
                    .latency
                    .record((now_ms - oldest).max(0) as f64 / 1000.0);
            }
        }
        tracing::debug!(rows = landed, rejected = rejected.len(), "batch inserted");
        Ok(Inserted {
            acked: keys
                .into_iter()
                .map(|(key, b)| Acked {
                    key,
                    epoch: b.epoch,
                    first: b.first,
                    last: b.last,
                })
                .collect(),
            rows: landed,
            rejected: rejected.len(),
            rejection: outcome.rejection,
            bisection_inserts: outcome.bisection_inserts,
        })
    }
}

/// What the blocks of one insert left to report.
#[derive(Default)]
struct BlockOutcome {
    rejected: Vec<(RecordRef, SinkError)>,
    rejection: Option<String>,
    bisection_inserts: usize,
}

/// The rows of records `range` (in batch order), as slices of the keys'
/// row buffers.
fn slice<K, P>(
    keys: &[(K, KeyBatch<P>)],
    rows: &[Bytes],
    records: &[RecordRef],
    range: Range<usize>,
) -> Vec<Bytes> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut current: Option<(usize, usize, usize)> = None;
    for &(k, s) in &records[range] {
        let spans = &keys[k].1.spans;
        let start = if s == 0 { 0 } else { spans[s - 1].rows_end };
        let end = spans[s].rows_end;
        current = match current {
            Some((key, from, _)) if key == k => Some((key, from, end)),
            Some((key, from, to)) => {
                chunks.push(rows[key].slice(from..to));
                Some((k, start, end))
            }
            None => Some((k, start, end)),
        };
    }
    if let Some((key, from, to)) = current {
        chunks.push(rows[key].slice(from..to));
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_formats::RecordMeta;

    /// Reads `ok` as one row; `down` as a registry that cannot be asked.
    struct Registryish;

    impl Decoder for Registryish {
        fn decode(
            &self,
            payload: &[u8],
            _: &RecordMeta<'_>,
            out: &mut Vec<u8>,
        ) -> Result<u32, RecordError> {
            match payload {
                b"ok" => {
                    out.push(1);
                    Ok(1)
                }
                _ => Err(RecordError {
                    code: ErrorCode::SchemaUnavailable,
                    message: "registry down".into(),
                }),
            }
        }

        fn read(&self, _: &[u8]) -> Result<(Option<u32>, sonic_rs::Value), RecordError> {
            unreachable!("not used by batches")
        }
    }

    fn record<'a>(key: &'a String, offset: i64, payload: &'a [u8]) -> Record<'a, String, i64> {
        Record {
            key,
            epoch: 1,
            position: offset,
            payload,
            meta: RecordMeta::default(),
        }
    }

    /// A record whose schema cannot be had halts the batch: neither it
    /// nor anything after it is taken, and a key it would have opened is
    /// not left behind with the record's position (which a flush would
    /// commit past the record).
    #[test]
    fn a_halt_takes_nothing_from_the_record_on() {
        let mut batch: Batch<String, i64> = Batch::new(
            Uuid::nil(),
            Box::new(Registryish),
            BatchLimits::for_pipe(
                &sluice_model::PipeSettings::default(),
                sluice_model::ReplicaSize::default(),
            ),
            1 << 20,
            "S".into(),
            Metrics::new("p", "p", "kafka", 0),
            Arc::new(Counters::default()),
        );
        let (a, b) = ("t/0".to_owned(), "t/1".to_owned());
        batch.add(record(&a, 5, b"ok"));
        batch.add(record(&b, 9, b"down"));
        batch.add(record(&a, 6, b"ok"));
        assert_eq!(
            batch.halted.as_ref().map(|e| e.code),
            Some(ErrorCode::SchemaUnavailable)
        );
        let keys = batch.take();
        assert_eq!(keys.keys().collect::<Vec<_>>(), [&a]);
        assert_eq!(
            (keys[&a].first, keys[&a].last, keys[&a].row_count),
            (5, 5, 1)
        );
    }

    #[test]
    fn tokens_are_deterministic_and_name_single_ranges() {
        let key = "orders/3".to_owned();
        let (a, b) = (10i64, 20i64);
        assert_eq!(
            block_token("p", 2, &[(&key, &a, &b)]),
            "sluice:p:2:orders/3:10-20"
        );
        let other = "orders/4".to_owned();
        let two = block_token("p", 2, &[(&key, &a, &b), (&other, &a, &b)]);
        assert_eq!(
            two,
            block_token("p", 2, &[(&key, &a, &b), (&other, &a, &b)])
        );
        assert_ne!(
            two,
            block_token("p", 3, &[(&key, &a, &b), (&other, &a, &b)])
        );
        assert_ne!(
            two,
            block_token("p", 2, &[(&key, &a, &b), (&other, &a, &a)])
        );
    }
}
