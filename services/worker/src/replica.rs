//! One replica of a pipe: the shell shared by every source. It loads the
//! pipe and its destination, prepares the ClickHouse side, runs the
//! source's loop (`crate::kafka`, `crate::kinesis`), retries transient
//! failures with backoff and jitter, and turns the replica Failed after the
//! documented limits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_clickhouse::Endpoint;
use sluice_model::{PipeSpec, Source};
use sluice_store::{Lease, PipeRecord, ReplicaStatus, Store};
use tokio_util::sync::CancellationToken;

use crate::destination::{prepare, Prepared};
use crate::pipeline::{Counters, RunError};

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

/// A replica's lag in its source's unit; `None` while unknown.
pub enum Lag {
    /// Kafka: messages between the committed offsets and the partitions' ends.
    Messages(Option<i64>),
    /// Kinesis: MillisBehindLatest of the replica's furthest-behind shard.
    Millis(Option<i64>),
}

/// How often the replica refreshes its lag, memory and CPU gauges.
pub const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

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
}

/// Failing since when, per side, reset by success.
#[derive(Default)]
pub struct Failing {
    pub source: Option<Instant>,
    pub destination: Option<Instant>,
}

/// What a source loop gets: the pipe with its secrets filled in and the
/// destination prepared.
pub struct Loaded {
    pub pipe: PipeRecord,
    pub spec: PipeSpec,
    pub prepared: Prepared,
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
    pub fn source_failed(&self, failing: &mut Failing, message: String) -> Result<(), RunError> {
        let since = *failing.source.get_or_insert_with(Instant::now);
        tracing::warn!(error = %message, "source failing");
        self.set(ReplicaStatus::Retrying, Some(format!("source: {message}")));
        if since.elapsed() >= self.limits.source {
            return Err(RunError::Source(message));
        }
        Ok(())
    }

    /// Whether this run's lease is still current. When it is not, the
    /// replica is cancelled: it must not commit, and its worker stops it.
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

    /// Publishes the gauges every source reports.
    pub fn publish_gauges(
        &self,
        metrics: &crate::pipeline::Metrics,
        lag: Lag,
        memory: u64,
        source_units: Option<usize>,
    ) {
        metrics.memory_bytes.set(memory as f64);
        metrics
            .cpu_seconds
            .set(self.cpu_nanos.load(Ordering::Relaxed) as f64 / 1e9);
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        (report.lag_messages, report.lag_millis) = match lag {
            Lag::Messages(messages) => (messages, None),
            Lag::Millis(millis) => (None, millis),
        };
        report.memory_bytes = memory as i64;
        report.source_units = source_units.and_then(|n| i32::try_from(n).ok());
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
        let loaded = self.load().await?;
        match &loaded.spec.source {
            Source::Kafka(_) => crate::kafka::run(self, loaded, failing).await,
            Source::Kinesis(_) => crate::kinesis::run(self, loaded, failing).await,
        }
    }

    async fn load(&self) -> Result<Loaded, RunError> {
        let pipe = self
            .store
            .pipe(self.lease.pipe_id)
            .await
            .map_err(|e| RunError::Destination(format!("reading the pipe: {e}")))?
            .ok_or_else(|| RunError::Permanent("the pipe no longer exists".into()))?;
        let spec = pipe
            .opened_spec(&self.store)
            .map_err(|e| RunError::Permanent(e.to_string()))?;
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
        Ok(Loaded {
            pipe,
            spec,
            prepared,
        })
    }
}
