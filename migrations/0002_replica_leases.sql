-- Replicas of live pipes, claimed by workers. The epoch increases with every
-- new owner, so a worker whose lease lapsed cannot renew or report under it.
CREATE TABLE replica_leases (
    pipe_id     uuid NOT NULL REFERENCES pipes (id) ON DELETE CASCADE,
    replica     integer NOT NULL,
    worker_id   uuid NOT NULL,
    epoch       bigint NOT NULL,
    generation  bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    -- starting | running | retrying | failed
    status      text NOT NULL DEFAULT 'starting',
    last_error  text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipe_id, replica)
);
CREATE INDEX replica_leases_worker ON replica_leases (worker_id);
