//! Fleet runtimes: the scheduler decides how many workers the placed
//! demand needs (`sluice_model::placement::workers_needed`); a runtime
//! makes that many run.
//!
//! Workers are numbered 0..n. Growing starts the missing ordinals;
//! shrinking stops the highest ones, the way a Kubernetes StatefulSet
//! scales. Because the scheduler knows in advance which worker a
//! scale-down stops (`hostname(n - 1)`), it drains that worker first and
//! shrinks only once nothing runs there, so a scale-down never interrupts
//! a replica mid-batch.

pub mod kubernetes;
pub mod local;

use std::time::Duration;

/// What went wrong asking a runtime to observe or resize the fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("starting worker {ordinal}: {source}")]
    Spawn {
        ordinal: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("the fleet runtime is misconfigured: {0}")]
    Config(String),
    #[error("the Kubernetes API refused {action}: {message}")]
    Refused { action: String, message: String },
    #[error("the Kubernetes API could not be reached for {action}: {message}")]
    Unreachable { action: String, message: String },
}

/// Grows and shrinks the set of workers. Implementations: `local` (child
/// processes of the scheduler) and `kubernetes` (a StatefulSet's replicas).
#[async_trait::async_trait]
pub trait FleetRuntime: Send + Sync {
    /// "local" or "kubernetes", for logs and events.
    fn kind(&self) -> &'static str;

    /// How many workers the runtime is set to run: ordinals `0..n`.
    async fn workers(&self) -> Result<u32, FleetError>;

    /// The hostname worker `ordinal` registers with (the workers table's
    /// `hostname`), so the scheduler can drain the one a scale-down stops.
    fn hostname(&self, ordinal: u32) -> String;

    /// Makes the runtime run `workers` workers. Shrinking stops the highest
    /// ordinals with SIGTERM (a worker then releases its leases); it does
    /// not wait for them to exit.
    async fn scale(&self, workers: u32) -> Result<(), FleetError>;

    /// Stops what this runtime started when the scheduler exits, where that
    /// makes sense (local children); a no-op for Kubernetes.
    async fn shutdown(&self, _grace: Duration) {}
}
