-- Kinesis lag: the largest MillisBehindLatest over the shards a replica
-- reads (Kafka replicas leave it empty and report lag_messages).
ALTER TABLE replica_leases ADD COLUMN lag_millis bigint;
