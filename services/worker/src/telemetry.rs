//! What a replica reports while it runs: counters the supervisor adds to
//! the pipe's totals in Postgres, and the Prometheus metrics.

use std::sync::atomic::{AtomicI64, Ordering};

use sluice_store::PipeCounters;

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
