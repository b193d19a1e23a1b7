use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store};

/// Counters of one pipe's data plane. As a delta from a worker, or as the
/// pipe's cumulative totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipeCounters {
    pub fetched_events: i64,
    pub fetched_bytes: i64,
    pub sent_rows: i64,
    pub sent_bytes: i64,
    pub errors: i64,
}

impl PipeCounters {
    pub fn is_zero(&self) -> bool {
        *self == PipeCounters::default()
    }
}

impl Store {
    /// Adds a worker's deltas to the pipe's totals.
    pub async fn add_pipe_counters(&self, pipe_id: Uuid, delta: PipeCounters) -> Result<()> {
        sqlx::query!(
            "INSERT INTO pipe_metrics (pipe_id, fetched_events, fetched_bytes, sent_rows, sent_bytes, errors)
             SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM pipes WHERE id = $1)
             ON CONFLICT (pipe_id) DO UPDATE SET
                 fetched_events = pipe_metrics.fetched_events + EXCLUDED.fetched_events,
                 fetched_bytes = pipe_metrics.fetched_bytes + EXCLUDED.fetched_bytes,
                 sent_rows = pipe_metrics.sent_rows + EXCLUDED.sent_rows,
                 sent_bytes = pipe_metrics.sent_bytes + EXCLUDED.sent_bytes,
                 errors = pipe_metrics.errors + EXCLUDED.errors,
                 updated_at = now()",
            pipe_id,
            delta.fetched_events,
            delta.fetched_bytes,
            delta.sent_rows,
            delta.sent_bytes,
            delta.errors
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn pipe_counters(
        &self,
        pipe_id: Uuid,
    ) -> Result<(PipeCounters, Option<DateTime<Utc>>)> {
        let row = sqlx::query!(
            "SELECT fetched_events, fetched_bytes, sent_rows, sent_bytes, errors, updated_at
             FROM pipe_metrics WHERE pipe_id = $1",
            pipe_id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => (
                PipeCounters {
                    fetched_events: r.fetched_events,
                    fetched_bytes: r.fetched_bytes,
                    sent_rows: r.sent_rows,
                    sent_bytes: r.sent_bytes,
                    errors: r.errors,
                },
                Some(r.updated_at),
            ),
            None => (PipeCounters::default(), None),
        })
    }
}
