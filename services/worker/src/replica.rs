//! One replica of a pipe, whatever its source: it loads the pipe and its
//! destination, prepares the ClickHouse side, opens the source at its
//! committed positions, and runs the one loop every source shares: poll
//! records into the batch, and when the batch is due, check the replica
//! lease (fencing), insert (`crate::batch::Insert`: retries, refused rows to the
//! error table), check the lease again, and commit. Failures that survive
//! the loop's own retries restart it with backoff and jitter; past the
//! documented limits the replica turns Failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_clickhouse::Endpoint;
use sluice_formats::{Decoder, ErrorCode};
use sluice_kafka::KafkaSource;
use sluice_kinesis::KinesisSource;
use sluice_model::SchemaEvolution;
use sluice_model::{EgressPolicy, PipeSpec};
use sluice_registry::pipe::{PipeDecoder, SchemaWatch};
use sluice_runtime::egress;
use sluice_source::{Gauges, Lag, Polled, Source, SourceError};
use sluice_store::{Lease, NewEvent, PipeRecord, ReplicaStatus, Store};
use tokio_util::sync::CancellationToken;

use std::collections::BTreeSet;

use crate::batch::{Batch, Insert, KeyBatch};
use crate::blocks::Plan;
use crate::destination::{prepare, PrepareError, Prepared};
use crate::telemetry::{Counters, Metrics};

#[derive(Debug)]
pub enum RunError {
    Permanent(String),
    Source(String),
    Destination(String),
    /// The table gained columns: read again, at once, with the new plan.
    Restart,
}

impl From<PrepareError> for RunError {
    fn from(e: PrepareError) -> Self {
        match e {
            PrepareError::Permanent(m) => RunError::Permanent(m),
            PrepareError::Transient(m) => RunError::Destination(m),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub status: ReplicaStatus,
    pub last_error: Option<String>,
    pub lag_messages: Option<i64>,
    pub lag_millis: Option<i64>,
    pub memory_bytes: i64,
    /// Partitions or shards still to read, as the source last showed them.
    pub source_units: Option<i32>,
}

/// How often the replica refreshes its lag, memory and CPU gauges.
pub const GAUGE_INTERVAL: Duration = Duration::from_secs(5);
/// Schema changes handled without a pause within `QUICK_RESTART_WINDOW`.
const MAX_QUICK_RESTARTS: u32 = 3;
const QUICK_RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Pause after a read error before polling again.
const SOURCE_RETRY_PAUSE: Duration = Duration::from_millis(200);

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
    pub cpu_nanos: Arc<AtomicU64>,
    /// Where the replica may connect (`SLUICE_EGRESS_ALLOW`/`_DENY`).
    pub egress: Arc<EgressPolicy>,
}

/// What a run of the loop needs to know of the pipe.
#[derive(Debug, Clone, Copy)]
struct Run {
    generation: i64,
    exactly_once: bool,
}

/// Failing since when, per side, reset by success.
#[derive(Default)]
pub struct Failing {
    pub source: Option<Instant>,
    pub destination: Option<Instant>,
}

impl Replica {
    pub fn set(&self, status: ReplicaStatus, last_error: Option<String>) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.status = status;
        report.last_error = last_error;
    }

    /// Records a source failure while the replica keeps running: the
    /// replica shows Retrying, and the failure becomes the replica's error
    /// once the source has been failing longer than its limit.
    fn source_failed(&self, failing: &mut Failing, message: String) -> Result<(), RunError> {
        let since = *failing.source.get_or_insert_with(Instant::now);
        tracing::warn!(error = %message, "source failing");
        self.set(ReplicaStatus::Retrying, Some(format!("source: {message}")));
        if since.elapsed() >= self.limits.source {
            return Err(RunError::Source(message));
        }
        Ok(())
    }

    /// Whether this run's lease is still current. When it is not, the
    /// replica is cancelled: it must not insert or commit, and its worker
    /// stops it.
    pub async fn lease_held(&self) -> Result<bool, RunError> {
        let held = self
            .store
            .lease_held(&self.lease)
            .await
            .map_err(|e| RunError::Source(format!("checking the replica lease: {e}")))?;
        if !held {
            tracing::warn!("replica lease lost; dropping what is not committed and stopping");
            self.cancel.cancel();
        }
        Ok(held)
    }

    fn publish_gauges<K, P>(&self, batch: &Batch<K, P>, gauges: Gauges) {
        for gauge in &gauges.per_key {
            batch
                .metrics
                .key_gauge(gauge.name, &gauge.labels, gauge.value);
        }
        let memory = batch.bytes + gauges.buffered_bytes;
        batch.metrics.memory_bytes.set(memory as f64);
        batch
            .metrics
            .cpu_seconds
            .set(self.cpu_nanos.load(Ordering::Relaxed) as f64 / 1e9);
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        (report.lag_messages, report.lag_millis) = match gauges.lag {
            Lag::Messages(messages) => (messages, None),
            Lag::Millis(millis) => (None, millis),
        };
        report.memory_bytes = memory as i64;
        report.source_units = gauges.units.and_then(|n| i32::try_from(n).ok());
    }

    pub async fn run(self) {
        let mut failing = Failing::default();
        let mut backoff = Duration::from_secs(1);
        let mut restarts = 0;
        let mut last_restart: Option<Instant> = None;
        loop {
            let outcome = self.run_once(&mut failing).await;
            if self.cancel.is_cancelled() {
                return;
            }
            let (message, exceeded) = match outcome {
                Ok(()) => return,
                // One schema change is one restart; the same change over
                // and over (columns that never appear) must not spin.
                Err(RunError::Restart)
                    if restarts < MAX_QUICK_RESTARTS
                        || last_restart.is_none_or(|at| at.elapsed() > QUICK_RESTART_WINDOW) =>
                {
                    if last_restart.is_none_or(|at| at.elapsed() > QUICK_RESTART_WINDOW) {
                        restarts = 0;
                    }
                    restarts += 1;
                    last_restart = Some(Instant::now());
                    continue;
                }
                Err(RunError::Restart) => (
                    format!("schema evolution: more than {MAX_QUICK_RESTARTS} table changes within a minute; pausing before reading on"),
                    false,
                ),
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
        let (pipe, spec, prepared) = self.load().await?;
        let PipeDecoder { decoder, watch } = crate::format::decoder(
            &spec.source,
            prepared.plan.clone(),
            &self.egress,
            spec.schema_evolution == SchemaEvolution::AddColumns,
        )
        .await?;
        let watch = watch.as_deref();
        let size = spec.scaling.replica_size;
        let run = Run {
            generation: pipe.generation,
            exactly_once: spec.exactly_once,
        };
        let opened = match &spec.source {
            sluice_model::Source::Kafka(kafka) => {
                let source = KafkaSource::open(pipe.id, self.lease.replica, kafka, size)
                    .map_err(source_error)?;
                let batch = self.new_batch(
                    &pipe,
                    &spec,
                    decoder,
                    &source,
                    size.max_kafka_message_bytes(),
                );
                self.drive(source, batch, &prepared, run, failing, watch)
                    .await
            }
            sluice_model::Source::Kinesis(kinesis) => {
                let source =
                    KinesisSource::open(self.store.clone(), self.lease.clone(), kinesis, size)
                        .await
                        .map_err(source_error)?;
                let batch = self.new_batch(
                    &pipe,
                    &spec,
                    decoder,
                    &source,
                    size.max_kinesis_record_bytes(),
                );
                self.drive(source, batch, &prepared, run, failing, watch)
                    .await
            }
        };
        opened
    }

    fn new_batch<S: Source>(
        &self,
        pipe: &PipeRecord,
        spec: &PipeSpec,
        decoder: Box<dyn Decoder>,
        source: &S,
        max_message_bytes: u64,
    ) -> Batch<S::Key, S::Position> {
        let size = spec.scaling.replica_size;
        Batch::new(
            pipe.id,
            decoder,
            sluice_model::batching::BatchLimits::for_pipe(&spec.settings, size),
            max_message_bytes,
            format!("{size:?}"),
            Metrics::new(
                &pipe.id.to_string(),
                &spec.name,
                source.kind(),
                self.lease.replica,
            ),
            self.counters.clone(),
        )
    }

    /// The loop every source shares.
    async fn drive<S: Source>(
        &self,
        mut source: S,
        mut batch: Batch<S::Key, S::Position>,
        prepared: &Prepared,
        run: Run,
        failing: &mut Failing,
        watch: Option<&SchemaWatch>,
    ) -> Result<(), RunError> {
        self.set(ReplicaStatus::Running, None);
        tracing::info!(table = %prepared.table, source = source.kind(), "replica running");
        let mut next_gauges = Instant::now();
        let outcome = loop {
            let until = (Instant::now() + batch.wait()).min(next_gauges);
            let mut flush_now = false;
            let polled = {
                let mut accept =
                    |record: sluice_source::Record<'_, S::Key, S::Position>| batch.add(record);
                tokio::select! {
                    _ = self.cancel.cancelled() => None,
                    polled = source.poll(until, &mut accept) => Some(polled),
                }
            };
            let Some(polled) = polled else {
                // A graceful stop inserts and commits what it holds.
                if let Err(e) = self
                    .flush(&mut source, &mut batch, prepared, run, failing)
                    .await
                {
                    tracing::warn!(error = ?e, "final flush failed; the records will be read again");
                }
                break Ok(());
            };
            if let Some(halt) = batch.halted.take() {
                if let Some(seen) = watch
                    .filter(|_| halt.code == ErrorCode::SchemaChanged)
                    .and_then(SchemaWatch::take_evolution)
                {
                    // What was read before the new schema lands with the
                    // old columns; the record that brought it is read
                    // again once the table has the new ones.
                    if let Err(e) = self
                        .flush(&mut source, &mut batch, prepared, run, failing)
                        .await
                    {
                        break Err(e);
                    }
                    break match crate::evolution::add_columns(self, prepared, seen).await {
                        Ok(()) => Err(RunError::Restart),
                        Err(e) => Err(e),
                    };
                }
                // The record that could not be read and those after it are
                // read again when the registry answers.
                break Err(RunError::Source(format!(
                    "schema registry: {}",
                    halt.message
                )));
            }
            if let Some(watch) = watch {
                crate::evolution::record_schemas(self, watch.take_reports()).await;
            }
            match polled {
                Ok(Polled::Records) => {
                    if failing.source.take().is_some() {
                        self.set(ReplicaStatus::Running, None);
                    }
                }
                Ok(Polled::FlushSoon) => flush_now = true,
                Ok(Polled::Idle) => {}
                Err(SourceError::Transient(message)) => {
                    if let Err(e) = self.source_failed(failing, message) {
                        break Err(e);
                    }
                    tokio::time::sleep(SOURCE_RETRY_PAUSE).await;
                }
                Err(e) => break Err(source_error(e)),
            }
            if Instant::now() >= next_gauges {
                self.publish_gauges(&batch, source.gauges());
                next_gauges = Instant::now() + GAUGE_INTERVAL;
            }
            if flush_now || batch.due() {
                if let Err(e) = self
                    .flush(&mut source, &mut batch, prepared, run, failing)
                    .await
                {
                    break Err(e);
                }
                if failing.source.is_none() {
                    self.set(ReplicaStatus::Running, None);
                }
            }
        };
        source.close().await;
        outcome
    }

    /// Inserts the batch and commits the ranges ClickHouse acknowledged,
    /// per key still assigned under the epoch its rows were read with —
    /// only while the replica's lease is still this run's (fencing: a
    /// replica the scheduler moved, or whose worker was paused past its
    /// lease, inserts and commits nothing and stops; its successor reads
    /// from the committed positions).
    async fn flush<S: Source>(
        &self,
        source: &mut S,
        batch: &mut Batch<S::Key, S::Position>,
        prepared: &Prepared,
        run: Run,
        failing: &mut Failing,
    ) -> Result<(), RunError> {
        batch.drop_stale(|key| source.epoch(key));
        if batch.is_empty() {
            return source
                .commit(Vec::new())
                .await
                .map(drop)
                .map_err(source_error);
        }
        if !self.lease_held().await? {
            batch.take();
            return Ok(());
        }
        let taken: Vec<_> = batch.take().into_iter().collect();
        let (blocks, halving) = if run.exactly_once {
            let (blocks, held_back, halving) = self.plan_blocks(taken, run.generation).await?;
            for (key, records) in held_back {
                batch.put_back(key, records);
            }
            if blocks.is_empty() {
                return Ok(());
            }
            let pending: Vec<(String, String, String)> = blocks
                .iter()
                .map(|(key, b)| (key.to_string(), b.first.to_string(), b.last.to_string()))
                .collect();
            let recorded = self
                .store
                .record_pending_blocks(&self.lease, run.generation, &pending)
                .await
                .map_err(|e| RunError::Source(format!("recording pending blocks: {e}")))?;
            if !recorded {
                tracing::warn!("replica lease lost before recording its blocks; inserting nothing");
                self.cancel.cancel();
                return Ok(());
            }
            (blocks, Some(halving))
        } else {
            (taken, None)
        };
        let coordinates =
            |key: &S::Key, position: &S::Position| source.error_coordinates(key, position);
        let inserted = Insert {
            replica: self,
            prepared,
            failing,
            generation: run.generation,
            exactly_once: run.exactly_once,
        }
        .run(batch, blocks, halving.as_ref(), &coordinates)
        .await?;
        if inserted.rejected > 0 {
            let message = format!(
                "ClickHouse refused {} record(s) of a batch: they are in the error table as INSERT_REJECTED, the other {} rows landed ({} extra inserts to find them). {}",
                inserted.rejected,
                inserted.rows,
                inserted.bisection_inserts,
                inserted.rejection.as_deref().unwrap_or_default()
            );
            tracing::warn!(rejected = inserted.rejected, "{message}");
            if let Err(e) = self
                .store
                .insert_pipe_event(
                    self.lease.pipe_id,
                    &NewEvent::warning("insert_rejected", message),
                )
                .await
            {
                tracing::warn!(error = %e, "recording the rejection event failed");
            }
        }
        if !self.lease_held().await? {
            // Inserted but not committed: the successor inserts these rows
            // again (exactly-once pipes: the same blocks, with the same
            // tokens).
            return Ok(());
        }
        let committed = source.commit(inserted.acked).await.map_err(source_error)?;
        if run.exactly_once && !committed.is_empty() {
            let keys: Vec<String> = committed.iter().map(ToString::to_string).collect();
            // A block left recorded is recognised as stale later (it ends
            // before what is read next), so a failure here loses nothing.
            if let Err(e) = self
                .store
                .clear_pending_blocks(self.lease.pipe_id, &keys)
                .await
            {
                tracing::warn!(error = %e, "clearing committed pending blocks failed");
            }
        }
        Ok(())
    }

    /// Exactly-once: forms the blocks to insert so that a range recorded as
    /// pending by an earlier owner is rebuilt exactly — the records before
    /// it go alone, the block ends where the recorded one ended, and a key
    /// not yet read that far waits (`held back`). Returns the blocks, what
    /// goes back into the batch, and the keys whose block was being halved.
    #[allow(clippy::type_complexity)]
    async fn plan_blocks<K: std::fmt::Display + Clone, P: std::fmt::Display + Clone>(
        &self,
        taken: Vec<(K, KeyBatch<P>)>,
        generation: i64,
    ) -> Result<
        (
            Vec<(K, KeyBatch<P>)>,
            Vec<(K, KeyBatch<P>)>,
            BTreeSet<String>,
        ),
        RunError,
    > {
        let names: Vec<String> = taken.iter().map(|(key, _)| key.to_string()).collect();
        let pending = self
            .store
            .pending_blocks(self.lease.pipe_id, &names)
            .await
            .map_err(|e| RunError::Source(format!("reading pending blocks: {e}")))?;
        let mut blocks = Vec::new();
        let mut held_back = Vec::new();
        let mut halving = BTreeSet::new();
        for (key, records) in taken {
            let name = key.to_string();
            let recorded = pending
                .iter()
                .find(|p| p.source_key == name && p.generation == generation);
            let positions: Vec<String> = records
                .spans
                .iter()
                .map(|span| span.position.to_string())
                .collect();
            let decision = crate::blocks::plan(
                &positions,
                recorded.map(|p| (p.first.as_str(), p.last.as_str())),
            );
            match decision {
                Plan::Whole => blocks.push((key, records)),
                Plan::Wait => held_back.push((key, records)),
                Plan::Cut { index, rebuild } => {
                    if let (true, Some(recorded)) = (rebuild, recorded) {
                        tracing::info!(key = %name, first = %recorded.first, last = %recorded.last, "rebuilding a pending block");
                        if recorded.bisecting {
                            halving.insert(name.clone());
                        }
                    }
                    let (head, tail) = records.split_after(index);
                    blocks.push((key.clone(), head));
                    if let Some(tail) = tail {
                        held_back.push((key, tail));
                    }
                }
            }
        }
        Ok((blocks, held_back, halving))
    }

    async fn load(&self) -> Result<(PipeRecord, PipeSpec, Prepared), RunError> {
        let pipe = self
            .store
            .pipe(self.lease.pipe_id)
            .await
            .map_err(|e| RunError::Destination(format!("reading the pipe: {e}")))?
            .ok_or_else(|| RunError::Permanent("the pipe no longer exists".into()))?;
        let mut spec = pipe
            .opened_spec(&self.store)
            .map_err(|e| RunError::Permanent(e.to_string()))?;
        // Columns schema evolution added read their fields through
        // mappings of their own (`customer_email` ← `customer.email`).
        let added = self
            .store
            .pipe_added_columns(pipe.id)
            .await
            .map_err(|e| RunError::Destination(format!("reading the added columns: {e}")))?;
        for column in added {
            let mapped = spec
                .field_mappings
                .iter()
                .any(|m| m.destination_field == column.name);
            if column.name != column.source_field && !mapped {
                spec.field_mappings.push(sluice_model::FieldMapping {
                    source_field: column.source_field,
                    destination_field: column.name,
                });
            }
        }
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
        let endpoint = Endpoint::of_destination(&destination_spec, self.egress.clone());
        // Checked on every start: the policy may have changed since the
        // pipe was created, and names may resolve elsewhere now.
        let denied = |what: &str, e: sluice_model::EgressDenied| {
            RunError::Permanent(format!("the {what}: {e}"))
        };
        egress::check_url(&self.egress, &endpoint.url)
            .await
            .map_err(|e| denied("destination", e))?;
        match &spec.source {
            sluice_model::Source::Kafka(kafka) => {
                egress::check_brokers(&self.egress, &kafka.brokers)
                    .await
                    .map_err(|e| denied("Kafka brokers", e))?
            }
            sluice_model::Source::Kinesis(kinesis) => {
                if let Some(endpoint) = &kinesis.endpoint {
                    egress::check_url(&self.egress, endpoint)
                        .await
                        .map_err(|e| denied("Kinesis endpoint", e))?;
                }
            }
        }
        let timeout = Duration::from_secs(u64::from(spec.settings.clickhouse_timeout_seconds));
        let prepared = prepare(&spec, endpoint, timeout).await?;
        Ok((pipe, spec, prepared))
    }
}

fn source_error(e: SourceError) -> RunError {
    match e {
        SourceError::Permanent(m) => RunError::Permanent(m),
        SourceError::Transient(m) | SourceError::Broken(m) => RunError::Source(m),
    }
}
