use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRecord {
    pub id: Uuid,
    pub hostname: String,
    pub millicpu: i32,
    pub memory_mib: i64,
    pub draining: bool,
    pub heartbeat_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerReplica {
    pub worker_id: Uuid,
    pub pipe_id: Uuid,
    pub replica: i32,
    pub status: String,
    pub replica_size: String,
}

impl Store {
    /// Registers a worker or refreshes its heartbeat.
    pub async fn heartbeat_worker(
        &self,
        id: Uuid,
        hostname: &str,
        millicpu: i32,
        memory_mib: i64,
    ) -> Result<()> {
        sqlx::query!(
            "INSERT INTO workers (id, hostname, millicpu, memory_mib) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
            id,
            hostname,
            millicpu,
            memory_mib
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Workers heard from within `silence`: the fleet placement uses.
    pub async fn live_workers(&self, silence: Duration) -> Result<Vec<WorkerRecord>> {
        let rows = sqlx::query_as!(
            WorkerRecord,
            "SELECT id, hostname, millicpu, memory_mib, draining, heartbeat_at FROM workers
             WHERE heartbeat_at > now() - make_interval(secs => $1) ORDER BY id",
            silence.as_secs_f64()
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Marks a worker as draining: the scheduler moves its replicas away
    /// and gives it no new ones. False when no such worker is registered.
    pub async fn drain_worker(&self, id: Uuid) -> Result<bool> {
        self.set_worker_draining(id, true).await
    }

    /// Sets or clears a worker's draining flag; false when no such worker
    /// is registered.
    pub async fn set_worker_draining(&self, id: Uuid, draining: bool) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE workers SET draining = $2 WHERE id = $1",
            id,
            draining
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes workers silent for longer than `silence`: a worker killed
    /// without deregistering would otherwise stay listed for ever. Their
    /// replica leases have long been placed elsewhere.
    pub async fn forget_silent_workers(&self, silence: Duration) -> Result<u64> {
        let done = sqlx::query!(
            "DELETE FROM workers WHERE heartbeat_at < now() - make_interval(secs => $1)",
            silence.as_secs_f64()
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The live replicas on each worker, with their pipe's replica size
    /// (as stored, e.g. `XS`), for the workers view.
    pub async fn replicas_by_worker(&self) -> Result<Vec<WorkerReplica>> {
        let rows = sqlx::query_as!(
            WorkerReplica,
            r#"SELECT l.worker_id, l.pipe_id, l.replica, l.status,
                      COALESCE(p.spec -> 'scaling' ->> 'replicaSize', 'XS') AS "replica_size!"
               FROM replica_leases l JOIN pipes p ON p.id = l.pipe_id
               WHERE l.expires_at > now()
               ORDER BY l.worker_id, l.pipe_id, l.replica"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn deregister_worker(&self, id: Uuid) -> Result<()> {
        sqlx::query!("DELETE FROM workers WHERE id = $1", id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Held by the one active scheduler. The advisory lock belongs to this
/// connection's session, which is kept out of the pool: dropping the
/// leadership closes the session and so releases the lock.
pub struct Leadership {
    connection: sqlx::PgConnection,
}

impl Leadership {
    /// Fails when the lock-holding session is gone (Postgres restarted, the
    /// network dropped): the caller is then no longer the leader.
    pub async fn confirm(&mut self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&mut self.connection)
            .await?;
        Ok(())
    }
}

/// Arbitrary but fixed: the advisory lock key of the scheduler leader.
const SCHEDULER_LOCK: i64 = 0x736c_7569_6365;

impl Store {
    /// Tries to become the active scheduler; `None` while another holds it.
    pub async fn try_lead_scheduler(&self) -> Result<Option<Leadership>> {
        let mut connection = self.pool.acquire().await?;
        let acquired = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_lock($1) AS "acquired!""#,
            SCHEDULER_LOCK
        )
        .fetch_one(&mut *connection)
        .await?;
        Ok(acquired.then(|| Leadership {
            connection: connection.detach(),
        }))
    }
}
