//! sluice-worker: registers itself with its capacity and heartbeats, runs
//! the replicas the scheduler assigned to it (a lease with an epoch per
//! replica), and renews their leases with their status. A replica stops
//! when its lease is lost, its pipe stops or changes generation, or the
//! pipe scales below it.

mod batch;
mod bisect;
mod blocks;
mod cpu;
mod destination;
mod evolution;
mod format;
mod replica;
mod telemetry;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_util::MetricKindMask;
use sluice_model::{EgressPolicy, PipeState};
use sluice_runtime::env;
use sluice_store::{Lease, ReplicaGauges, ReplicaStatus, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::cpu::CpuMeasured;
use crate::replica::{FailureLimits, Replica, Report, SharedReport};
use crate::telemetry::Counters;

const TICK: Duration = Duration::from_secs(2);
const LEASE_TTL: Duration = Duration::from_secs(15);
/// How long a stopping replica may take to insert and commit what it holds
/// before it is aborted (what it held is read again by its successor).
const STOP_DEADLINE: Duration = Duration::from_secs(30);
// A replica moved off a dead worker must find the dead consumer gone from
// the group already, or its join can leave it without partitions (tansu).
// The scheduler moves it once the worker has been silent for
// WORKER_SILENCE, at least that minus one heartbeat tick after its death.
const _: () = assert!(
    sluice_model::placement::WORKER_SILENCE.as_millis() - TICK.as_millis()
        > sluice_kafka::config::SESSION_TIMEOUT.as_millis()
);

struct Running {
    lease: Lease,
    millicpu: u32,
    cancel: CancellationToken,
    report: SharedReport,
    counters: Arc<Counters>,
    cpu_nanos: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match env(name) {
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name} must be a number")),
        None => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sluice_runtime::init_tracing();
    let store = sluice_runtime::open_store().await?;
    let worker_id = Uuid::now_v7();
    let millicpu: u32 = env_number("SLUICE_WORKER_MILLICPU", 2000)?;
    let memory_mib: i64 = env_number("SLUICE_WORKER_MEMORY_MIB", 8192)?;
    let limits = FailureLimits {
        source: Duration::from_secs(env_number("SLUICE_SOURCE_FAILURE_LIMIT_SECS", 900)?),
        destination: Duration::from_secs(env_number(
            "SLUICE_DESTINATION_FAILURE_LIMIT_SECS",
            3600,
        )?),
    };
    let hostname = env("HOSTNAME").unwrap_or_else(|| "localhost".to_owned());
    let egress = Arc::new(EgressPolicy::from_env().map_err(anyhow::Error::msg)?);
    let span = tracing::info_span!("worker", worker_id = %worker_id);
    tracing::Instrument::instrument(
        serve(
            store, worker_id, millicpu, memory_mib, limits, egress, hostname,
        ),
        span,
    )
    .await
}

async fn serve(
    store: Store,
    worker_id: Uuid,
    millicpu: u32,
    memory_mib: i64,
    limits: FailureLimits,
    egress: Arc<EgressPolicy>,
    hostname: String,
) -> anyhow::Result<()> {
    // Gauges of stopped replicas and of partitions that moved elsewhere stop
    // being refreshed; dropping them after a minute keeps stale values out.
    let prometheus = PrometheusBuilder::new()
        .idle_timeout(MetricKindMask::GAUGE, Some(Duration::from_secs(60)))
        .install_recorder()
        .context("installing the metrics recorder")?;
    if let Some(addr) = env("SLUICE_WORKER_METRICS_ADDR") {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding {addr} (SLUICE_WORKER_METRICS_ADDR)"))?;
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let handle = prometheus.clone();
                async move { handle.render() }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        tracing::info!(%addr, "worker metrics listening");
    }

    tracing::info!(millicpu, memory_mib, "sluice-worker started");
    let shutdown = sluice_runtime::shutdown_signal();
    tokio::pin!(shutdown);
    let mut running: HashMap<(Uuid, i32), Running> = HashMap::new();
    // Replicas being stopped: awaited in tasks of their own, so a replica
    // stuck in an insert never holds up the heartbeat or the renewal of the
    // others' leases.
    let mut stopping: HashMap<(Uuid, i32), JoinHandle<()>> = HashMap::new();
    loop {
        if let Err(e) = store
            .heartbeat_worker(worker_id, &hostname, millicpu as i32, memory_mib)
            .await
        {
            tracing::warn!(error = %e, "heartbeat failed");
        }
        stopping.retain(|_, task| !task.is_finished());
        if let Err(e) = supervise(
            &store,
            worker_id,
            millicpu,
            limits,
            &egress,
            &mut running,
            &mut stopping,
        )
        .await
        {
            tracing::warn!(error = %e, "supervising replicas failed; retrying");
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
    for replica in running.values() {
        replica.cancel.cancel();
    }
    for (key, replica) in running.drain() {
        stopping.insert(key, stop(store.clone(), worker_id, replica));
    }
    for (_, task) in stopping.drain() {
        let _ = task.await;
    }
    store
        .deregister_worker(worker_id)
        .await
        .context("deregistering")?;
    Ok(())
}

/// Adds what the replica did since the last call to the pipe's totals and
/// its ten-second history, with the replica's lag when known.
/// A failed write loses those deltas: they are metrics, not data.
async fn record_counters(
    store: &Store,
    lease: &Lease,
    counters: &Counters,
    lag: (Option<i64>, Option<i64>),
) {
    let delta = counters.take();
    if let Err(e) = store
        .record_replica_metrics(lease.pipe_id, lease.replica, delta, lag.0, lag.1)
        .await
    {
        tracing::warn!(error = %e, "recording pipe metrics failed");
    }
}

/// Waits for a cancelled replica to finish (at most `STOP_DEADLINE`), then
/// records its last counters and releases its lease.
fn stop(store: Store, worker_id: Uuid, mut replica: Running) -> JoinHandle<()> {
    let span = tracing::info_span!("replica", pipe_id = %replica.lease.pipe_id, replica = replica.lease.replica);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            replica.cancel.cancel();
            if tokio::time::timeout(STOP_DEADLINE, &mut replica.task)
                .await
                .is_err()
            {
                tracing::warn!(deadline = ?STOP_DEADLINE, "the replica did not stop in time; aborting it");
                replica.task.abort();
                let _ = (&mut replica.task).await;
            }
            record_counters(&store, &replica.lease, &replica.counters, (None, None)).await;
            if let Err(e) = store.release_lease(&replica.lease, worker_id).await {
                tracing::warn!(error = %e, "releasing the lease failed; it expires on its own");
            }
            tracing::info!("replica stopped");
        },
        span,
    ))
}

async fn supervise(
    store: &Store,
    worker_id: Uuid,
    capacity: u32,
    limits: FailureLimits,
    egress: &Arc<EgressPolicy>,
    running: &mut HashMap<(Uuid, i32), Running>,
    stopping: &mut HashMap<(Uuid, i32), JoinHandle<()>>,
) -> anyhow::Result<()> {
    // Renew what runs; stop what should not run any more.
    let mut finished = Vec::new();
    for (key, replica) in running.iter() {
        let pipe = store.pipe(replica.lease.pipe_id).await?;
        let keep = pipe.as_ref().is_some_and(|p| {
            matches!(
                p.state,
                PipeState::Provisioning | PipeState::Running | PipeState::Degraded
            ) && p.generation == replica.lease.generation
                && (replica.lease.replica as u32) < p.desired_replicas()
        });
        let report = replica
            .report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        record_counters(
            store,
            &replica.lease,
            &replica.counters,
            (report.lag_messages, report.lag_millis),
        )
        .await;
        let held = store
            .renew_lease(
                &replica.lease,
                worker_id,
                LEASE_TTL,
                report.status,
                report.last_error.as_deref(),
                ReplicaGauges {
                    lag_messages: report.lag_messages,
                    lag_millis: report.lag_millis,
                    cpu_seconds: replica.cpu_nanos.load(Ordering::Relaxed) as f64 / 1e9,
                    memory_bytes: report.memory_bytes,
                    source_units: report.source_units,
                },
            )
            .await?;
        if !held {
            tracing::warn!(pipe_id = %replica.lease.pipe_id, replica = replica.lease.replica, "lease lost; stopping the replica");
        }
        if !keep || !held || replica.task.is_finished() {
            replica.cancel.cancel();
            finished.push(*key);
        }
    }
    for key in finished {
        if let Some(replica) = running.remove(&key) {
            stopping.insert(key, stop(store.clone(), worker_id, replica));
        }
    }

    // Start what the scheduler assigned here and does not run yet. (A
    // replica reassigned here under a newer epoch while an older run goes
    // on is started once that run has stopped on its failed renewal.)
    let mut used: u32 = running.values().map(|r| r.millicpu).sum();
    for lease in store.assigned_replicas(worker_id).await? {
        let key = (lease.pipe_id, lease.replica);
        if running.contains_key(&key) || stopping.contains_key(&key) {
            continue;
        }
        let Some(pipe) = store.pipe(lease.pipe_id).await? else {
            continue;
        };
        let millicpu = pipe.spec.scaling.replica_size.millicpu();
        if used + millicpu > capacity {
            // The scheduler places by the capacity this worker registered,
            // so this happens only while a resized pipe's old replica still
            // runs here: the next tick tries again.
            tracing::warn!(pipe_id = %lease.pipe_id, replica = lease.replica, "assigned a replica beyond this worker's capacity; not starting it");
            continue;
        }
        used += millicpu;
        let cancel = CancellationToken::new();
        let report: SharedReport = Arc::new(Mutex::new(Report {
            status: ReplicaStatus::Starting,
            last_error: None,
            lag_messages: None,
            lag_millis: None,
            memory_bytes: 0,
            source_units: None,
        }));
        let cpu_nanos = Arc::new(AtomicU64::new(0));
        let counters = Arc::new(Counters::default());
        let replica = Replica {
            store: store.clone(),
            lease: lease.clone(),
            cancel: cancel.clone(),
            report: report.clone(),
            limits,
            counters: counters.clone(),
            cpu_nanos: cpu_nanos.clone(),
            egress: egress.clone(),
        };
        let span = tracing::info_span!("replica", pipe_id = %lease.pipe_id, replica = lease.replica, epoch = lease.epoch);
        let task = tokio::spawn(CpuMeasured::new(
            tracing::Instrument::instrument(replica.run(), span),
            cpu_nanos.clone(),
        ));
        tracing::info!(pipe_id = %lease.pipe_id, replica = lease.replica, epoch = lease.epoch, "replica started");
        running.insert(
            (lease.pipe_id, lease.replica),
            Running {
                lease,
                millicpu,
                cancel,
                report,
                counters,
                cpu_nanos,
                task,
            },
        );
    }
    Ok(())
}
