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

/// Seconds per bucket of `pipe_metric_buckets`.
pub const METRIC_BUCKET_SECONDS: u32 = 10;

/// One ten-second bucket of a pipe's history: its replicas' counters added
/// up, Kafka lag summed over replicas, Kinesis lag the furthest behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricBucket {
    pub at: DateTime<Utc>,
    pub counters: PipeCounters,
    pub lag_messages: Option<i64>,
    pub lag_millis: Option<i64>,
}

/// What a pipe does now, for the pipes list.
#[derive(Debug, Clone, PartialEq)]
pub struct PipeActivity {
    pub pipe_id: Uuid,
    /// Over the last minute of complete buckets.
    pub rows_per_second: f64,
    pub bytes_per_second: f64,
    pub errors_last_hour: i64,
    pub lag_messages: Option<i64>,
    pub lag_millis: Option<i64>,
}

impl Store {
    /// Adds what a replica did since its last report to the pipe's totals and
    /// to the current ten-second bucket, and records its lag there. Lag
    /// `None` keeps what the bucket already holds. Nothing is written for a
    /// pipe that no longer exists.
    pub async fn record_replica_metrics(
        &self,
        pipe_id: Uuid,
        replica: i32,
        delta: PipeCounters,
        lag_messages: Option<i64>,
        lag_millis: Option<i64>,
    ) -> Result<()> {
        if delta.is_zero() && lag_messages.is_none() && lag_millis.is_none() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        if !delta.is_zero() {
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
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query!(
            "INSERT INTO pipe_metric_buckets
                 (pipe_id, bucket, replica, fetched_events, fetched_bytes, sent_rows, sent_bytes,
                  errors, lag_messages, lag_millis)
             SELECT $1, date_bin(make_interval(secs => $10), now(), TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                    $2, $3, $4, $5, $6, $7, $8, $9
             WHERE EXISTS (SELECT 1 FROM pipes WHERE id = $1)
             ON CONFLICT (pipe_id, bucket, replica) DO UPDATE SET
                 fetched_events = pipe_metric_buckets.fetched_events + EXCLUDED.fetched_events,
                 fetched_bytes = pipe_metric_buckets.fetched_bytes + EXCLUDED.fetched_bytes,
                 sent_rows = pipe_metric_buckets.sent_rows + EXCLUDED.sent_rows,
                 sent_bytes = pipe_metric_buckets.sent_bytes + EXCLUDED.sent_bytes,
                 errors = pipe_metric_buckets.errors + EXCLUDED.errors,
                 lag_messages = COALESCE(EXCLUDED.lag_messages, pipe_metric_buckets.lag_messages),
                 lag_millis = COALESCE(EXCLUDED.lag_millis, pipe_metric_buckets.lag_millis)",
            pipe_id,
            replica,
            delta.fetched_events,
            delta.fetched_bytes,
            delta.sent_rows,
            delta.sent_bytes,
            delta.errors,
            lag_messages,
            lag_millis,
            f64::from(METRIC_BUCKET_SECONDS)
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The pipe's buckets of the last `window`, oldest first; buckets without
    /// any report are absent.
    pub async fn metric_history(
        &self,
        pipe_id: Uuid,
        window: std::time::Duration,
    ) -> Result<Vec<MetricBucket>> {
        let rows = sqlx::query!(
            r#"SELECT bucket,
                      sum(fetched_events)::bigint AS "fetched_events!",
                      sum(fetched_bytes)::bigint AS "fetched_bytes!",
                      sum(sent_rows)::bigint AS "sent_rows!",
                      sum(sent_bytes)::bigint AS "sent_bytes!",
                      sum(errors)::bigint AS "errors!",
                      sum(lag_messages)::bigint AS lag_messages,
                      max(lag_millis) AS lag_millis
               FROM pipe_metric_buckets
               WHERE pipe_id = $1 AND bucket >= now() - make_interval(secs => $2)
               GROUP BY bucket ORDER BY bucket"#,
            pipe_id,
            window.as_secs_f64()
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| MetricBucket {
                at: r.bucket,
                counters: PipeCounters {
                    fetched_events: r.fetched_events,
                    fetched_bytes: r.fetched_bytes,
                    sent_rows: r.sent_rows,
                    sent_bytes: r.sent_bytes,
                    errors: r.errors,
                },
                lag_messages: r.lag_messages,
                lag_millis: r.lag_millis,
            })
            .collect())
    }

    /// Every pipe with a report in the last hour: its rates over the last
    /// minute of complete buckets, its errors in the hour, and the lag its
    /// live replicas report now.
    pub async fn pipe_activity(&self) -> Result<Vec<PipeActivity>> {
        let rows = sqlx::query!(
            r#"WITH now_bucket AS (
                   SELECT date_bin(make_interval(secs => $1), now(), TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b
               ),
               recent AS (
                   SELECT m.pipe_id,
                          coalesce(sum(m.sent_rows) FILTER (WHERE m.bucket >= n.b - interval '60 seconds' AND m.bucket < n.b), 0)::bigint AS rows_minute,
                          coalesce(sum(m.sent_bytes) FILTER (WHERE m.bucket >= n.b - interval '60 seconds' AND m.bucket < n.b), 0)::bigint AS bytes_minute,
                          sum(m.errors)::bigint AS errors_hour
                   FROM pipe_metric_buckets m, now_bucket n
                   WHERE m.bucket >= now() - interval '1 hour'
                   GROUP BY m.pipe_id
               ),
               lag AS (
                   SELECT pipe_id, sum(lag_messages)::bigint AS lag_messages, max(lag_millis) AS lag_millis
                   FROM replica_leases WHERE expires_at > now() GROUP BY pipe_id
               )
               SELECT r.pipe_id AS "pipe_id!", r.rows_minute AS "rows_minute!", r.bytes_minute AS "bytes_minute!",
                      r.errors_hour AS "errors_hour!", l.lag_messages AS "lag_messages?", l.lag_millis AS "lag_millis?"
               FROM recent r LEFT JOIN lag l USING (pipe_id)
               ORDER BY r.pipe_id"#,
            f64::from(METRIC_BUCKET_SECONDS)
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| PipeActivity {
                pipe_id: r.pipe_id,
                rows_per_second: r.rows_minute as f64 / 60.0,
                bytes_per_second: r.bytes_minute as f64 / 60.0,
                errors_last_hour: r.errors_hour,
                lag_messages: r.lag_messages,
                lag_millis: r.lag_millis,
            })
            .collect())
    }

    /// Drops buckets older than `keep`; returns how many rows went.
    pub async fn prune_metric_buckets(&self, keep: std::time::Duration) -> Result<u64> {
        let done = sqlx::query!(
            "DELETE FROM pipe_metric_buckets WHERE bucket < now() - make_interval(secs => $1)",
            keep.as_secs_f64()
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
