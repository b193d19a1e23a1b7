//! The `local` runtime: workers are child processes of the scheduler on
//! this machine, as `make dev` and the tests run them.
//!
//! Worker `i` runs with `HOSTNAME=<prefix>-<i>` and the configured capacity.
//! A child that exits on its own is started again on the next call, as a
//! StatefulSet would. The children stay in the scheduler's process group,
//! so stopping the group (as `make stop` does) stops them too. Meant for one
//! machine and one scheduler: a standby taking over starts its own workers
//! and does not adopt the old leader's.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::{FleetError, FleetRuntime};

#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The sluice-worker executable.
    pub binary: PathBuf,
    /// Worker `i` registers as `<hostname_prefix>-<i>`.
    pub hostname_prefix: String,
    /// Capacity each worker registers with.
    pub millicpu: u32,
    pub memory_mib: u64,
    /// Worker `i` serves its metrics on `127.0.0.1:<base + i>`; without a
    /// base, workers serve none (they would all want the same port).
    pub metrics_base_port: Option<u16>,
}

pub struct LocalFleet {
    config: LocalConfig,
    /// Index = ordinal.
    children: Mutex<Vec<Child>>,
}

impl LocalFleet {
    pub fn new(config: LocalConfig) -> Self {
        Self {
            config,
            children: Mutex::new(Vec::new()),
        }
    }

    fn children(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&self, ordinal: u32) -> Result<Child, FleetError> {
        let mut command = Command::new(&self.config.binary);
        command
            .env("HOSTNAME", self.hostname(ordinal))
            .env("SLUICE_WORKER_MILLICPU", self.config.millicpu.to_string())
            .env(
                "SLUICE_WORKER_MEMORY_MIB",
                self.config.memory_mib.to_string(),
            )
            .env_remove("SLUICE_WORKER_METRICS_ADDR")
            .stdin(Stdio::null());
        if let Some(base) = self.config.metrics_base_port {
            let port = u32::from(base) + ordinal;
            command.env("SLUICE_WORKER_METRICS_ADDR", format!("127.0.0.1:{port}"));
        }
        let child = command
            .spawn()
            .map_err(|source| FleetError::Spawn { ordinal, source })?;
        tracing::info!(ordinal, pid = child.id(), hostname = %self.hostname(ordinal), "worker started");
        Ok(child)
    }

    /// Starts again the children that exited on their own.
    fn restart_exited(&self, children: &mut [Child]) -> Result<(), FleetError> {
        for (ordinal, child) in children.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                let ordinal = u32::try_from(ordinal).unwrap_or(u32::MAX);
                tracing::warn!(ordinal, %status, "worker exited on its own; starting it again");
                *child = self.spawn(ordinal)?;
            }
        }
        Ok(())
    }
}

fn terminate(child: &Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SIGTERM: the worker stops its replicas, inserting and committing
        // what they hold, releases their leases and deregisters.
        if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
            tracing::warn!(pid, error = %e, "could not signal a worker");
        }
    }
}

#[async_trait::async_trait]
impl FleetRuntime for LocalFleet {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn workers(&self) -> Result<u32, FleetError> {
        let mut children = self.children();
        self.restart_exited(&mut children)?;
        Ok(u32::try_from(children.len()).unwrap_or(u32::MAX))
    }

    fn hostname(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.config.hostname_prefix)
    }

    async fn scale(&self, workers: u32) -> Result<(), FleetError> {
        let stopped: Vec<Child> = {
            let mut children = self.children();
            while children.len() < workers as usize {
                let ordinal = u32::try_from(children.len()).unwrap_or(u32::MAX);
                let child = self.spawn(ordinal)?;
                children.push(child);
            }
            let keep = (workers as usize).min(children.len());
            children.split_off(keep)
        };
        for child in &stopped {
            terminate(child);
        }
        // Reap them in the background; a worker takes a few seconds to
        // flush and deregister.
        for mut child in stopped {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Ok(())
    }

    async fn shutdown(&self, grace: Duration) {
        let mut children = std::mem::take(&mut *self.children());
        for child in &children {
            terminate(child);
        }
        for child in &mut children {
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                tracing::warn!(pid = child.id(), "worker did not stop in time; killing it");
                let _ = child.kill().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sleep` stands in for the worker: the runtime only starts, counts
    /// and signals processes.
    fn fleet() -> LocalFleet {
        LocalFleet::new(LocalConfig {
            binary: PathBuf::from("sleep"),
            hostname_prefix: "test-worker".into(),
            millicpu: 1000,
            memory_mib: 4096,
            metrics_base_port: None,
        })
    }

    #[tokio::test]
    async fn grows_and_shrinks_from_the_highest_ordinal() {
        let fleet = LocalFleet::new(LocalConfig {
            binary: PathBuf::from("/bin/sh"),
            ..fleet().config
        });
        // sh with no script on a closed stdin exits at once: restarted.
        fleet.scale(1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fleet.workers().await.unwrap(), 1);
        fleet.shutdown(Duration::from_secs(1)).await;

        let fleet = fleet_of_sleepers();
        fleet.scale(3).await.unwrap();
        assert_eq!(fleet.workers().await.unwrap(), 3);
        let last_pid = fleet.children()[2].id().unwrap();
        fleet.scale(2).await.unwrap();
        assert_eq!(fleet.workers().await.unwrap(), 2);
        // The highest ordinal got SIGTERM and is gone.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!std::path::Path::new(&format!("/proc/{last_pid}")).exists());
        assert_eq!(fleet.hostname(1), "test-worker-1");
        fleet.shutdown(Duration::from_secs(1)).await;
        assert_eq!(fleet.workers().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_missing_binary_is_a_spawn_error_naming_the_ordinal() {
        let fleet = LocalFleet::new(LocalConfig {
            binary: PathBuf::from("/nonexistent/sluice-worker"),
            ..fleet().config
        });
        let error = fleet.scale(1).await.unwrap_err();
        assert!(
            error.to_string().starts_with("starting worker 0:"),
            "{error}"
        );
    }

    fn fleet_of_sleepers() -> LocalFleet {
        // `sleep` needs an argument; a wrapper script gives it one.
        let script =
            std::env::temp_dir().join(format!("sluice-fleet-sleeper-{}", std::process::id()));
        std::fs::write(&script, "#!/bin/sh\nexec sleep 60\n").unwrap();
        let mut permissions = std::fs::metadata(&script).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&script, permissions).unwrap();
        LocalFleet::new(LocalConfig {
            binary: script,
            ..fleet().config
        })
    }
}
