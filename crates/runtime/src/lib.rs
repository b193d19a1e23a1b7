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

/// The egress policy's I/O side: names are resolved and every address they
/// resolve to is checked (`sluice_model::egress` holds the rules). Called
/// before each connection a request or a pipe makes; a name that does not
/// resolve is let through, and the connection reports that failure itself.
pub mod egress {
    use std::time::Duration;

    use sluice_model::{EgressDenied, EgressPolicy};

    const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

    pub async fn check(policy: &EgressPolicy, host: &str, port: u16) -> Result<(), EgressDenied> {
        policy.check_host(host)?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_ok() {
            return Ok(());
        }
        let resolved =
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((bare, port))).await;
        if let Ok(Ok(addresses)) = resolved {
            for address in addresses {
                policy.check_resolved(bare, address.ip())?;
            }
        }
        Ok(())
    }

    /// An http(s) URL (a destination, a Kinesis endpoint).
    pub async fn check_url(policy: &EgressPolicy, raw: &str) -> Result<(), EgressDenied> {
        let Ok(url) = url::Url::parse(raw) else {
            return Ok(());
        };
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        check(policy, host, url.port_or_known_default().unwrap_or(443)).await
    }

    /// A Kafka bootstrap list: `host:port` entries, comma-separated.
    pub async fn check_brokers(policy: &EgressPolicy, brokers: &str) -> Result<(), EgressDenied> {
        for entry in brokers.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = entry.split_once("://").map_or(entry, |(_, rest)| rest);
            let (host, port) = match entry.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().unwrap_or(9092)),
                None => (entry, 9092),
            };
            check(policy, host, port).await?;
        }
        Ok(())
    }
}
