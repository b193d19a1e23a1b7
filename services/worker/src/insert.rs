//! Inserting a batch: one request for the rows, one for the error rows,
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
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use sluice_clickhouse::{Failure, SinkError};
use sluice_formats::{ErrorCode, RecordError};
use sluice_source::{Acked, ErrorCoordinates};

use crate::batch::{encode_error_row, Batch, KeyBatch};
use crate::destination::Prepared;
use crate::replica::{Failing, Replica, RunError};

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
