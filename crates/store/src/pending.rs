//! Pending blocks of exactly-once pipes (migration 0011): the range a
//! replica is about to insert for a partition or shard, so that whoever
//! reads it next rebuilds the same block. Queries are checked at run time
//! (`sqlx::query`), as they take the key lists as arrays.

use uuid::Uuid;

use crate::{Lease, Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBlock {
    pub source_key: String,
    pub generation: i64,
    pub first: String,
    pub last: String,
    pub bisecting: bool,
}

impl Store {
    /// The pending blocks of these keys (partitions as `topic/N`, shard ids).
    pub async fn pending_blocks(
        &self,
        pipe_id: Uuid,
        keys: &[String],
    ) -> Result<Vec<PendingBlock>> {
        let rows: Vec<(String, i64, String, String, bool)> = sqlx::query_as(
            "SELECT source_key, generation, first_position, last_position, bisecting
             FROM pending_blocks WHERE pipe_id = $1 AND source_key = ANY($2)",
        )
        .bind(pipe_id)
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(source_key, generation, first, last, bisecting)| PendingBlock {
                    source_key,
                    generation,
                    first,
                    last,
                    bisecting,
                },
            )
            .collect())
    }

    /// Records the blocks about to be inserted, replacing what a key had;
    /// a block already recorded with the same range keeps its `bisecting`
    /// mark. Written only while the replica still holds its lease: false
    /// when it does not (nothing was written).
    pub async fn record_pending_blocks(
        &self,
        lease: &Lease,
        generation: i64,
        blocks: &[(String, String, String)],
    ) -> Result<bool> {
        let keys: Vec<&str> = blocks.iter().map(|b| b.0.as_str()).collect();
        let firsts: Vec<&str> = blocks.iter().map(|b| b.1.as_str()).collect();
        let lasts: Vec<&str> = blocks.iter().map(|b| b.2.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        let held: Option<(i32,)> = sqlx::query_as(
            "SELECT 1 FROM replica_leases
             WHERE pipe_id = $1 AND replica = $2 AND epoch = $3 AND expires_at > now()
             FOR SHARE",
        )
        .bind(lease.pipe_id)
        .bind(lease.replica)
        .bind(lease.epoch)
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO pending_blocks (pipe_id, source_key, generation, first_position, last_position)
             SELECT $1, k, $2, f, l FROM UNNEST($3::text[], $4::text[], $5::text[]) AS b(k, f, l)
             ON CONFLICT (pipe_id, source_key) DO UPDATE SET
                 generation = EXCLUDED.generation,
                 first_position = EXCLUDED.first_position,
                 last_position = EXCLUDED.last_position,
                 bisecting = pending_blocks.bisecting
                     AND pending_blocks.generation = EXCLUDED.generation
                     AND pending_blocks.first_position = EXCLUDED.first_position
                     AND pending_blocks.last_position = EXCLUDED.last_position,
                 recorded_at = now()",
        )
        .bind(lease.pipe_id)
        .bind(generation)
        .bind(&keys)
        .bind(&firsts)
        .bind(&lasts)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a key's pending block as being halved.
    pub async fn mark_pending_bisecting(&self, pipe_id: Uuid, key: &str) -> Result<()> {
        sqlx::query(
            "UPDATE pending_blocks SET bisecting = true WHERE pipe_id = $1 AND source_key = $2",
        )
        .bind(pipe_id)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the pending blocks of keys whose end is committed.
    pub async fn clear_pending_blocks(&self, pipe_id: Uuid, keys: &[String]) -> Result<()> {
        sqlx::query("DELETE FROM pending_blocks WHERE pipe_id = $1 AND source_key = ANY($2)")
            .bind(pipe_id)
            .bind(keys)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
