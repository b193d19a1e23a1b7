-- Exactly-once pipes: the block a replica is about to insert for a
-- partition or shard, recorded before the insert and cleared once its end
-- is committed, so whoever reads the partition next rebuilds exactly the
-- same block (same rows, same order, same deduplication token).
CREATE TABLE pending_blocks (
    pipe_id         uuid NOT NULL REFERENCES pipes (id) ON DELETE CASCADE,
    source_key      text NOT NULL,
    generation      bigint NOT NULL,
    first_position  text NOT NULL,
    last_position   text NOT NULL,
    -- ClickHouse refused the whole block: the next owner goes straight to
    -- halving it (the whole block, resent with its token, may be dropped by
    -- deduplication without reaching the table's views).
    bisecting       boolean NOT NULL DEFAULT false,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipe_id, source_key)
);
