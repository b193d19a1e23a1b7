-- Ten-second buckets of each replica's counters and lag, for the charts of
-- the last hours (GET /v1/pipes/{id}/metrics/history) and the pipes list's
-- rates. One row per replica and bucket: counters are added to, the lag is
-- the replica's latest, so a pipe's lag in a bucket is the sum (Kafka) or the
-- maximum (Kinesis) over its replicas. The scheduler prunes rows older than
-- a day.
CREATE TABLE pipe_metric_buckets (
    pipe_id        uuid NOT NULL REFERENCES pipes (id) ON DELETE CASCADE,
    bucket         timestamptz NOT NULL,
    replica        integer NOT NULL,
    fetched_events bigint NOT NULL DEFAULT 0,
    fetched_bytes  bigint NOT NULL DEFAULT 0,
    sent_rows      bigint NOT NULL DEFAULT 0,
    sent_bytes     bigint NOT NULL DEFAULT 0,
    errors         bigint NOT NULL DEFAULT 0,
    lag_messages   bigint,
    lag_millis     bigint,
    PRIMARY KEY (pipe_id, bucket, replica)
);

CREATE INDEX pipe_metric_buckets_bucket ON pipe_metric_buckets (bucket);
