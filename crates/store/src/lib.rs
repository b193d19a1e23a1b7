//! Postgres access for the control plane. Queries are checked at compile
//! time against the committed metadata in `.sqlx/` (see
//! `scripts/sqlx-prepare.sh`), so building needs no database.

mod crypto;
mod destinations;
mod keys;
mod leases;
mod metrics;
mod pending;
mod pipes;
mod schemas;
mod shards;
mod workers;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use crypto::{Cipher, CryptoError, KeyError};
pub use destinations::DestinationRecord;
pub use keys::{ApiKeyRecord, NewApiKey, Role};
pub use leases::{
    Lease, PlacedReplica, ReplicaGauges, ReplicaReport, ReplicaStatus, ReplicaSummary,
};
pub use metrics::{MetricBucket, PipeActivity, PipeCounters, METRIC_BUCKET_SECONDS};
pub use pending::PendingBlock;
pub use pipes::{EventLevel, EventRecord, NewEvent, PipeRecord, PipeUpdate};
pub use schemas::{AddedColumn, PipeSchemaRecord};
pub use shards::ShardLeaseRecord;
pub use workers::{Leadership, WorkerRecord, WorkerReplica};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("applying database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored {what} {id} cannot be read: {reason}")]
    Corrupt {
        what: &'static str,
        id: String,
        reason: String,
    },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A page of a list, ordered by id; `next` is the id to continue after.
#[derive(Debug)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only tells
    /// that there is more.
    fn from_rows(mut items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> C) -> Self {
        let more = items.len() as i64 > limit;
        items.truncate(limit.max(0) as usize);
        let next = if more { items.last().map(cursor) } else { None };
        Page { items, next }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    cipher: std::sync::Arc<Cipher>,
}

impl Store {
    pub async fn connect(database_url: &str, cipher: Cipher) -> Result<Self> {
        let options: PgConnectOptions = database_url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool, cipher))
    }

    pub fn from_pool(pool: PgPool, cipher: Cipher) -> Self {
        Self {
            pool,
            cipher: std::sync::Arc::new(cipher),
        }
    }

    /// Applies the embedded migrations; safe to run from several processes
    /// at once (sqlx serializes them with an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("../../migrations").run(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23503"))
}
