-- The latest gauges of each running replica, written with every lease
-- renewal: what GET /v1/pipes/{id}/metrics shows per replica, and the lag
-- the scheduler will autoscale on.
ALTER TABLE replica_leases
    ADD COLUMN lag_messages bigint,
    ADD COLUMN cpu_seconds double precision NOT NULL DEFAULT 0,
    ADD COLUMN memory_bytes bigint NOT NULL DEFAULT 0;
