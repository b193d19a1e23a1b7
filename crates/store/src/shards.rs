//! Kinesis shard leases (migration 0005): the store side of
//! `sluice_kinesis::leases`.

use uuid::Uuid;

use crate::{Lease, Result, Store};

/// A shard lease as stored, with its owner's liveness resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLeaseRecord {
    pub shard_id: String,
    pub parent_ids: Vec<String>,
    /// The owning replica, only while its replica lease is live under the
    /// epoch the shard was taken with.
    pub live_owner: Option<i32>,
    pub counter: i64,
    pub checkpoint: Option<String>,
    pub finished: bool,
}

impl Store {
    /// Records shards the stream has (new ones appear after a split or a
    /// merge); existing leases are left as they are.
    pub async fn sync_shards(&self, pipe_id: Uuid, shards: &[(String, Vec<String>)]) -> Result<()> {
        let ids: Vec<String> = shards.iter().map(|(id, _)| id.clone()).collect();
        // Postgres arrays cannot nest ragged lists; parents go as one
        // comma-joined string per shard (shard ids contain no commas).
        let parents: Vec<String> = shards.iter().map(|(_, p)| p.join(",")).collect();
        sqlx::query!(
            "INSERT INTO shard_leases (pipe_id, shard_id, parent_ids)
             SELECT $1, id, CASE WHEN parents = '' THEN '{}'::text[] ELSE string_to_array(parents, ',') END
             FROM unnest($2::text[], $3::text[]) AS s(id, parents)
             ON CONFLICT (pipe_id, shard_id) DO NOTHING",
            pipe_id,
            &ids,
            &parents
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn shard_leases(&self, pipe_id: Uuid) -> Result<Vec<ShardLeaseRecord>> {
        let rows = sqlx::query!(
            r#"SELECT s.shard_id, s.parent_ids, s.counter, s.checkpoint, s.finished,
                      CASE WHEN r.pipe_id IS NOT NULL THEN s.owner_replica END AS live_owner
               FROM shard_leases s
               LEFT JOIN replica_leases r
                 ON r.pipe_id = s.pipe_id AND r.replica = s.owner_replica
                AND r.epoch = s.owner_epoch AND r.expires_at > now()
               WHERE s.pipe_id = $1 ORDER BY s.shard_id"#,
            pipe_id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ShardLeaseRecord {
                shard_id: r.shard_id,
                parent_ids: r.parent_ids,
                live_owner: r.live_owner,
                counter: r.counter,
                checkpoint: r.checkpoint,
                finished: r.finished,
            })
            .collect())
    }

    /// The pipe's replicas with a live lease.
    pub async fn live_replicas(&self, pipe_id: Uuid) -> Result<Vec<i32>> {
        Ok(sqlx::query_scalar!(
            "SELECT replica FROM replica_leases WHERE pipe_id = $1 AND expires_at > now() ORDER BY replica",
            pipe_id
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Takes the shard for the replica if its counter is still `seen`;
    /// returns the new counter, or `None` when someone else changed it.
    pub async fn take_shard(
        &self,
        lease: &Lease,
        shard_id: &str,
        seen: i64,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar!(
            "UPDATE shard_leases SET owner_replica = $3, owner_epoch = $4, counter = counter + 1,
                 updated_at = now()
             WHERE pipe_id = $1 AND shard_id = $2 AND counter = $5 AND NOT finished
             RETURNING counter",
            lease.pipe_id,
            shard_id,
            lease.replica,
            lease.epoch,
            seen
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Writes the checkpoint only while the replica still holds the shard
    /// under `counter`; false when the lease was lost.
    pub async fn checkpoint_shard(
        &self,
        lease: &Lease,
        shard_id: &str,
        counter: i64,
        sequence_number: &str,
        finished: bool,
    ) -> Result<bool> {
        let done = sqlx::query!(
            "UPDATE shard_leases SET checkpoint = $6, finished = $7, updated_at = now()
             WHERE pipe_id = $1 AND shard_id = $2 AND owner_replica = $3 AND owner_epoch = $4
               AND counter = $5",
            lease.pipe_id,
            shard_id,
            lease.replica,
            lease.epoch,
            counter,
            sequence_number,
            finished
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
