-- Cumulative per-pipe counters, added to by workers (deltas at each lease
-- renewal), summarized by GET /v1/pipes/{id}/metrics.
CREATE TABLE pipe_metrics (
    pipe_id        uuid PRIMARY KEY REFERENCES pipes (id) ON DELETE CASCADE,
    fetched_events bigint NOT NULL DEFAULT 0,
    fetched_bytes  bigint NOT NULL DEFAULT 0,
    sent_rows      bigint NOT NULL DEFAULT 0,
    sent_bytes     bigint NOT NULL DEFAULT 0,
    errors         bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
