//! Start-up shared by sluice-api, sluice-scheduler and sluice-worker.

use std::path::PathBuf;

use anyhow::Context;
use sluice_store::{Cipher, PipeRecord, Store};
use tracing_subscriber::EnvFilter;

/// Logs to stderr, as text or (with `SLUICE_LOG_FORMAT=json`) JSON lines;
/// `RUST_LOG` filters, `info` by default.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if env("SLUICE_LOG_FORMAT").as_deref() == Some("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A variable's value, treating an empty one as unset.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn database_url() -> anyhow::Result<String> {
    env("SLUICE_DATABASE_URL")
        .or_else(|| env("DATABASE_URL"))
        .context("SLUICE_DATABASE_URL is not set (e.g. postgres://user@127.0.0.1:5432/sluice)")
}

/// The master key that seals secrets: `SLUICE_MASTER_KEY`, or the file at
/// `SLUICE_MASTER_KEY_FILE` (default `sluice-master.key`), created on first
/// start.
pub fn load_cipher() -> anyhow::Result<Cipher> {
    let file = PathBuf::from(
        env("SLUICE_MASTER_KEY_FILE").unwrap_or_else(|| "sluice-master.key".to_owned()),
    );
    Cipher::load(env("SLUICE_MASTER_KEY").as_deref(), &file).context("loading the master key")
}

/// Connects to Postgres and applies pending migrations.
pub async fn open_store() -> anyhow::Result<Store> {
    let url = database_url()?;
    let store = Store::connect(&url, load_cipher()?)
        .await
        .context("connecting to Postgres (SLUICE_DATABASE_URL)")?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = interrupt => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down");
}

/// What a pipe holds at its source beyond its definition: a Kinesis
/// stream consumer for enhanced fan-out. Failing to remove it does not keep
/// the pipe from being deleted (its credentials may be revoked); it is
/// logged with the consumer's name for an operator.
pub async fn release_source_resources(store: &Store, record: &PipeRecord) {
    if !record.spec.source.uses_stream_consumer() {
        return;
    }
    let spec = match record.opened_spec(store) {
        Ok(spec) => spec,
        Err(e) => {
            tracing::warn!(pipe_id = %record.id, error = %e, "could not open the pipe's credentials to remove its stream consumer");
            return;
        }
    };
    match sluice_kinesis::fanout::remove_pipe_consumer(&spec, record.id).await {
        Ok(removed) => tracing::info!(pipe_id = %record.id, removed, "stream consumer released"),
        Err(e) => {
            tracing::warn!(pipe_id = %record.id, error = %e, "the pipe's stream consumer could not be deregistered; remove it by hand")
        }
    }
}
