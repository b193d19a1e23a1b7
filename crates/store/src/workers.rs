use uuid::Uuid;

use crate::{Result, Store};

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
