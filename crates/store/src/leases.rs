//! Replica leases: which worker runs which replica of which pipe, fenced by
//! an epoch. The scheduler writes them (`assign_replica`, a new epoch on
//! every move); workers run what is assigned to them and renew it.

use std::time::Duration;

use sluice_model::PipeState;
use uuid::Uuid;

use crate::{NewEvent, PipeRecord, PipeUpdate, Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub pipe_id: Uuid,
    pub replica: i32,
    pub epoch: i64,
    pub generation: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaStatus {
    Starting,
    Running,
    Retrying,
    Failed,
}

impl ReplicaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaStatus::Starting => "starting",
            ReplicaStatus::Running => "running",
            ReplicaStatus::Retrying => "retrying",
            ReplicaStatus::Failed => "failed",
        }
    }
}

/// A running replica's latest gauges, reported with each lease renewal.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplicaGauges {
    /// Messages (Kafka) the replica's partitions are behind; `None` while
    /// unknown (nothing committed yet).
    pub lag_messages: Option<i64>,
    /// Milliseconds the replica's slowest shard (Kinesis) is behind the
    /// stream's newest record; `None` for Kafka and while unknown.
    pub lag_millis: Option<i64>,
    /// CPU the replica has used since it started on its worker.
    pub cpu_seconds: f64,
    /// Bytes the replica holds: its batch and the client's fetch queue.
    pub memory_bytes: i64,
    /// The topics' partitions (Kafka) or the stream's shards still to read
    /// (Kinesis), as the replica last saw them; `None` while unknown.
    pub source_units: Option<i32>,
}

/// One live replica of a pipe, as its worker last reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaReport {
    pub replica: i32,
    pub worker_id: Uuid,
    pub status: String,
    pub gauges: ReplicaGauges,
}

/// A replica lease as placement reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedReplica {
    pub pipe_id: Uuid,
    pub replica: i32,
    pub worker_id: Uuid,
    pub epoch: i64,
    pub generation: i64,
    pub live: bool,
}

/// What the leases of one pipe say, for the scheduler's observations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaSummary {
    pub live: i64,
    pub running: i64,
    pub failed_error: Option<String>,
    pub retrying_error: Option<String>,
}

impl Store {
    /// Every replica lease: where each replica runs or last ran.
    pub async fn replica_placements(&self) -> Result<Vec<PlacedReplica>> {
        let rows = sqlx::query_as!(
            PlacedReplica,
            r#"SELECT pipe_id, replica, worker_id, epoch, generation,
                      expires_at > now() AS "live!"
               FROM replica_leases ORDER BY pipe_id, replica"#
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Gives a replica to a worker under a new epoch: whoever held it can
    /// no longer renew, report or commit under the old one. `expected`
    /// is the epoch the scheduler saw (None: no lease yet); false when the
    /// lease changed meanwhile (the next reconcile sees the new state).
    pub async fn assign_replica(
        &self,
        pipe_id: Uuid,
        replica: i32,
        worker_id: Uuid,
        generation: i64,
        expected: Option<i64>,
        ttl: Duration,
    ) -> Result<bool> {
        let done = match expected {
            None => sqlx::query!(
                "INSERT INTO replica_leases (pipe_id, replica, worker_id, epoch, generation, expires_at)
                 VALUES ($1, $2, $3, nextval('replica_lease_epochs'), $4,
                         now() + make_interval(secs => $5))
                 ON CONFLICT (pipe_id, replica) DO NOTHING",
                pipe_id,
                replica,
                worker_id,
                generation,
                ttl.as_secs_f64()
            )
            .execute(&self.pool)
            .await?,
            Some(epoch) => sqlx::query!(
                "UPDATE replica_leases
                 SET worker_id = $3, epoch = nextval('replica_lease_epochs'), generation = $4,
                     expires_at = now() + make_interval(secs => $6),
                     status = 'starting', last_error = NULL, updated_at = now()
                 WHERE pipe_id = $1 AND replica = $2 AND epoch = $5",
                pipe_id,
                replica,
                worker_id,
                generation,
                epoch,
                ttl.as_secs_f64()
            )
            .execute(&self.pool)
            .await?,
        };
        Ok(done.rows_affected() == 1)
    }

    /// Whether the lease is still held under its epoch.
    pub async fn lease_held(&self, lease: &Lease) -> Result<bool> {
        let row = sqlx::query!(
            r#"SELECT EXISTS (SELECT 1 FROM replica_leases
                              WHERE pipe_id = $1 AND replica = $2 AND epoch = $3) AS "held!""#,
            lease.pipe_id,
            lease.replica,
            lease.epoch
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.held)
    }

    /// The replicas assigned to a worker, to start those it does not run.
    pub async fn assigned_replicas(&self, worker_id: Uuid) -> Result<Vec<Lease>> {
        let rows = sqlx::query_as!(
            Lease,
            "SELECT pipe_id, replica, epoch, generation FROM replica_leases
             WHERE worker_id = $1 ORDER BY pipe_id, replica",
            worker_id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Extends a lease and records the replica's status; false when the
    /// lease is no longer this worker's (expired and taken, or released).
    pub async fn renew_lease(
        &self,
        lease: &Lease,
        worker_id: Uuid,
        ttl: Duration,
        status: ReplicaStatus,
        last_error: Option<&str>,
        gauges: ReplicaGauges,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE replica_leases SET expires_at = now() + make_interval(secs => $5),
                 status = $6, last_error = $7, lag_messages = $8, cpu_seconds = $9,
                 memory_bytes = $10, lag_millis = $11, source_units = $12, updated_at = now()
             WHERE pipe_id = $1 AND replica = $2 AND worker_id = $3 AND epoch = $4",
            lease.pipe_id,
            lease.replica,
            worker_id,
            lease.epoch,
            ttl.as_secs_f64(),
            status.as_str(),
            last_error,
            gauges.lag_messages,
            gauges.cpu_seconds,
            gauges.memory_bytes,
            gauges.lag_millis,
            gauges.source_units
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn release_lease(&self, lease: &Lease, worker_id: Uuid) -> Result<()> {
        sqlx::query!(
            "DELETE FROM replica_leases WHERE pipe_id = $1 AND replica = $2 AND worker_id = $3 AND epoch = $4",
            lease.pipe_id,
            lease.replica,
            worker_id,
            lease.epoch
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The pipe's live replicas with their latest gauges, by replica number.
    pub async fn replica_reports(&self, pipe_id: Uuid) -> Result<Vec<ReplicaReport>> {
        let rows = sqlx::query!(
            "SELECT replica, worker_id, status, lag_messages, lag_millis, cpu_seconds, memory_bytes,
                    source_units
             FROM replica_leases WHERE pipe_id = $1 AND expires_at > now() ORDER BY replica",
            pipe_id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ReplicaReport {
                replica: r.replica,
                worker_id: r.worker_id,
                status: r.status,
                gauges: ReplicaGauges {
                    lag_messages: r.lag_messages,
                    lag_millis: r.lag_millis,
                    cpu_seconds: r.cpu_seconds,
                    memory_bytes: r.memory_bytes,
                    source_units: r.source_units,
                },
            })
            .collect())
    }

    /// Forgets the replicas of a pipe that failed, so starting it again
    /// places fresh ones: a failed lease still within its term would
    /// otherwise make the restarted pipe look Failed at once. Their
    /// workers see the lease gone and stop them.
    pub async fn release_failed_replicas(&self, pipe_id: Uuid) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM replica_leases WHERE pipe_id = $1 AND status = 'failed'")
                .bind(pipe_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    pub async fn replica_summary(&self, pipe_id: Uuid) -> Result<ReplicaSummary> {
        let row = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE expires_at > now()) AS "live!",
                      count(*) FILTER (WHERE expires_at > now() AND status = 'running') AS "running!",
                      max(last_error) FILTER (WHERE expires_at > now() AND status = 'failed') AS failed_error,
                      max(last_error) FILTER (WHERE expires_at > now() AND status = 'retrying') AS retrying_error
               FROM replica_leases WHERE pipe_id = $1"#,
            pipe_id
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(ReplicaSummary {
            live: row.live,
            running: row.running,
            failed_error: row.failed_error,
            retrying_error: row.retrying_error,
        })
    }

    /// Records the autoscaler's new replica count with its event, unless
    /// the pipe's definition changed since `pipe` was read (the next tick
    /// decides again on the new one). Leaves the version alone: the user's
    /// definition did not change.
    pub async fn set_autoscaled_replicas(
        &self,
        pipe: &PipeRecord,
        replicas: u32,
        event: &NewEvent,
    ) -> Result<bool> {
        let replicas = i32::try_from(replicas).unwrap_or(i32::MAX);
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query!(
            "UPDATE pipes SET autoscaled_replicas = $3, autoscaled_at = now()
             WHERE id = $1 AND version = $2",
            pipe.id,
            pipe.version,
            replicas
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        crate::pipes::insert_event(&mut tx, pipe.id, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records what the data plane observed: the ready replica count, the
    /// last error, and a state change with its event when there is one.
    pub async fn observe_pipe(
        &self,
        pipe: &PipeRecord,
        ready_replicas: i32,
        last_error: Option<&str>,
        next_state: Option<(PipeState, NewEvent)>,
    ) -> Result<Option<PipeRecord>> {
        sqlx::query!(
            "UPDATE pipes SET ready_replicas = $2,
                 last_error = COALESCE($3, last_error),
                 last_error_at = CASE WHEN $3::text IS NULL OR $3 IS NOT DISTINCT FROM last_error
                                      THEN last_error_at ELSE now() END
             WHERE id = $1",
            pipe.id,
            ready_replicas,
            last_error
        )
        .execute(&self.pool)
        .await?;
        match next_state {
            None => Ok(None),
            Some((state, event)) => {
                self.update_pipe(
                    pipe.id,
                    pipe.version,
                    PipeUpdate {
                        spec: None,
                        state,
                        bump_generation: false,
                        reset_autoscaled_replicas: false,
                        event,
                    },
                )
                .await
            }
        }
    }
}
