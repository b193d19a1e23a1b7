//! sluice-worker: registers itself with its capacity and heartbeats. Running
//! pipe replicas (source, decode, batch, insert, commit) arrives with the
//! data-plane issue; this is the process that will host them.

use std::time::Duration;

use anyhow::Context;
use sluice_runtime::env;

const HEARTBEAT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sluice_runtime::init_tracing();
    let store = sluice_runtime::open_store().await?;
    let id = uuid::Uuid::now_v7();
    let millicpu: i32 = env("SLUICE_WORKER_MILLICPU")
        .map(|v| v.parse())
        .transpose()
        .context("SLUICE_WORKER_MILLICPU must be a whole number")?
        .unwrap_or(2000);
    let memory_mib: i64 = env("SLUICE_WORKER_MEMORY_MIB")
        .map(|v| v.parse())
        .transpose()
        .context("SLUICE_WORKER_MEMORY_MIB must be a whole number")?
        .unwrap_or(8192);
    let hostname = env("HOSTNAME").unwrap_or_else(|| "localhost".to_owned());
    let span = tracing::info_span!("worker", worker_id = %id);
    let _enter = span.enter();
    tracing::info!(millicpu, memory_mib, "sluice-worker registered");
    let shutdown = sluice_runtime::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        if let Err(e) = store
            .heartbeat_worker(id, &hostname, millicpu, memory_mib)
            .await
        {
            tracing::warn!(error = %e, "heartbeat failed; retrying");
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
    store.deregister_worker(id).await.context("deregistering")?;
    Ok(())
}
