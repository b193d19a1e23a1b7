-- One lease per (pipe, Kinesis shard), in the design of the Kinesis Client
-- Library. The owner is a replica of the pipe under the epoch of its replica
-- lease: when that replica lease lapses or changes hands, the shard lease
-- reads as free, without a renewal of its own. `counter` changes with every
-- change of owner and conditions the next one and every checkpoint, so a
-- replica never writes a checkpoint under a lease it no longer holds.
CREATE TABLE shard_leases (
    pipe_id        uuid NOT NULL REFERENCES pipes (id) ON DELETE CASCADE,
    shard_id       text NOT NULL,
    parent_ids     text[] NOT NULL DEFAULT '{}',
    owner_replica  integer,
    owner_epoch    bigint,
    counter        bigint NOT NULL DEFAULT 0,
    -- The sequence number of the last record ClickHouse acknowledged.
    checkpoint     text,
    -- Read to SHARD_END and everything before it acknowledged.
    finished       boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipe_id, shard_id)
);
