//! Sizing the worker fleet: the I/O around `sluice_model::placement::fleet_step`.
//!
//! `SLUICE_FLEET` picks the runtime: `local` (child processes, for
//! `make dev` and the tests), `kubernetes` (a StatefulSet), or `static`
//! (the default: workers are started by someone else and the scheduler
//! only places replicas on them). Bounds and the capacity of a new worker:
//! `SLUICE_FLEET_MIN_WORKERS` (1), `SLUICE_FLEET_MAX_WORKERS` (4),
//! `SLUICE_FLEET_WORKER_MILLICPU` (2000), `SLUICE_FLEET_WORKER_MEMORY_MIB`
//! (8192). A shrink waits until fewer workers have sufficed for
//! `SLUICE_FLEET_SCALE_DOWN_DELAY_SECS` (60), so a pipe restarting or
//! scaling for a moment does not make the fleet flap.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use sluice_fleet::kubernetes::KubernetesFleet;
use sluice_fleet::local::{LocalConfig, LocalFleet};
use sluice_fleet::FleetRuntime;
use sluice_model::placement::{fleet_step, FleetStep, FleetView, ReplicaDemand, WorkerCapacity};
use sluice_runtime::env;
use sluice_store::{Store, WorkerRecord};
use uuid::Uuid;

pub struct FleetSizer {
    runtime: Box<dyn FleetRuntime>,
    min: usize,
    max: usize,
    per_worker: WorkerCapacity,
    scale_down_delay: Duration,
    /// Since when fewer workers would do.
    shrink_wanted_since: Option<Instant>,
    /// The worker this scheduler drained to shrink, undrained if the demand
    /// comes back first.
    drained: Option<Uuid>,
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match env(name) {
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name} must be a whole number, got {v:?}")),
        None => Ok(default),
    }
}

impl FleetSizer {
    /// `None` for a static fleet.
    pub async fn from_env() -> anyhow::Result<Option<Self>> {
        let kind = env("SLUICE_FLEET").unwrap_or_else(|| "static".to_owned());
        let millicpu: u32 = number("SLUICE_FLEET_WORKER_MILLICPU", 2000)?;
        let memory_mib: u64 = number("SLUICE_FLEET_WORKER_MEMORY_MIB", 8192)?;
        let runtime: Box<dyn FleetRuntime> = match kind.as_str() {
            "static" => return Ok(None),
            "local" => {
                let binary = match env("SLUICE_FLEET_LOCAL_BINARY") {
                    Some(path) => PathBuf::from(path),
                    None => std::env::current_exe()
                        .context("finding the scheduler's own path")?
                        .with_file_name("sluice-worker"),
                };
                Box::new(LocalFleet::new(LocalConfig {
                    binary,
                    hostname_prefix: env("SLUICE_FLEET_LOCAL_HOSTNAME_PREFIX")
                        .unwrap_or_else(|| "local-worker".to_owned()),
                    millicpu,
                    memory_mib,
                    metrics_base_port: env("SLUICE_FLEET_LOCAL_METRICS_BASE_PORT")
                        .map(|p| {
                            p.parse().map_err(|_| {
                                anyhow::anyhow!(
                                    "SLUICE_FLEET_LOCAL_METRICS_BASE_PORT must be a port"
                                )
                            })
                        })
                        .transpose()?,
                }))
            }
            "kubernetes" => Box::new(KubernetesFleet::from_env().await?),
            other => {
                anyhow::bail!("SLUICE_FLEET must be static, local or kubernetes, got {other:?}")
            }
        };
        let min: usize = number("SLUICE_FLEET_MIN_WORKERS", 1)?;
        let max: usize = number("SLUICE_FLEET_MAX_WORKERS", 4)?;
        anyhow::ensure!(
            min <= max,
            "SLUICE_FLEET_MIN_WORKERS ({min}) must not exceed SLUICE_FLEET_MAX_WORKERS ({max})"
        );
        let scale_down_delay =
            Duration::from_secs(number("SLUICE_FLEET_SCALE_DOWN_DELAY_SECS", 60)?);
        tracing::info!(
            runtime = runtime.kind(),
            min,
            max,
            millicpu,
            memory_mib,
            "fleet runtime"
        );
        Ok(Some(Self {
            runtime,
            min,
            max,
            per_worker: WorkerCapacity {
                id: Uuid::nil(),
                millicpu,
                memory_mib,
                draining: false,
            },
            scale_down_delay,
            shrink_wanted_since: None,
            drained: None,
        }))
    }

    /// One step towards the fleet the placed demand needs.
    pub async fn tick(
        &mut self,
        store: &Store,
        workers: &[WorkerRecord],
        capacities: &[WorkerCapacity],
        demands: &[ReplicaDemand],
    ) -> anyhow::Result<()> {
        let running = self.runtime.workers().await?;
        let last_hostname = running.checked_sub(1).map(|o| self.runtime.hostname(o));
        let last = last_hostname
            .as_ref()
            .and_then(|h| workers.iter().find(|w| &w.hostname == h))
            .map(|w| w.id);
        let registered = (0..running)
            .filter(|o| {
                let hostname = self.runtime.hostname(*o);
                workers.iter().any(|w| w.hostname == hostname)
            })
            .count();
        let view = FleetView {
            workers: capacities,
            demands,
            per_worker: self.per_worker.clone(),
            min: self.min,
            max: self.max,
            running: running as usize,
            registered,
            last,
        };
        let step = fleet_step(&view);
        let shrinking = matches!(step, FleetStep::Drain { .. } | FleetStep::Shrink { .. });
        if !shrinking {
            self.shrink_wanted_since = None;
            if let Some(worker) = self.drained.take() {
                if store.set_worker_draining(worker, false).await? {
                    tracing::info!(%worker, "the demand came back: worker no longer draining");
                }
            }
        }
        match step {
            FleetStep::Stay => {}
            FleetStep::Grow { to, reason } => {
                tracing::info!(runtime = self.runtime.kind(), %reason, "growing the fleet");
                self.runtime.scale(to as u32).await?;
            }
            FleetStep::Drain { worker, reason } => {
                let since = *self.shrink_wanted_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.scale_down_delay {
                    tracing::info!(%worker, %reason, "draining a worker to shrink the fleet");
                    store.set_worker_draining(worker, true).await?;
                    self.drained = Some(worker);
                }
            }
            FleetStep::Shrink { to, reason } => {
                let since = *self.shrink_wanted_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.scale_down_delay || last.is_none() {
                    tracing::info!(runtime = self.runtime.kind(), %reason, "shrinking the fleet");
                    self.runtime.scale(to as u32).await?;
                    self.drained = None;
                    self.shrink_wanted_since = None;
                }
            }
        }
        Ok(())
    }

    pub async fn shutdown(&self) {
        self.runtime.shutdown(Duration::from_secs(30)).await;
    }
}
