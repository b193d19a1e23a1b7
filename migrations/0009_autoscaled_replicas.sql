-- The replica count the autoscaler chose for a pipe with autoscaling on;
-- NULL until it first decides, and reset when the user sets `replicas`.
-- Kept apart from the spec so autoscaling never shows up as a change to
-- the user's definition (no version bump, no drift for Terraform).
-- `autoscaled_at` times the cooldowns, so they hold across a change of
-- scheduler leader.
ALTER TABLE pipes
    ADD COLUMN autoscaled_replicas integer
        CHECK (autoscaled_replicas IS NULL OR autoscaled_replicas BETWEEN 1 AND 10),
    ADD COLUMN autoscaled_at timestamptz;

-- The partitions of a Kafka replica's topics, or the open shards of a
-- Kinesis stream, as the replica last saw them: the autoscaler's ceiling.
ALTER TABLE replica_leases ADD COLUMN source_units integer;
