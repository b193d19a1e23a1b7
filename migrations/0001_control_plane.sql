-- The control plane's state: API keys, ClickHouse destinations, pipes and
-- their events, and the worker registry.

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'developer', 'viewer')),
    -- SHA-256 of the secret: secrets are 256 random bits, so a fast hash is
    -- as strong as a slow one and keeps authentication cheap.
    secret_hash  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE destinations (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    -- The spec without its secrets; those are sealed in `secrets`.
    spec       jsonb NOT NULL,
    secrets    bytea,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pipes (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    destination_id   uuid NOT NULL REFERENCES destinations (id) ON DELETE RESTRICT,
    spec             jsonb NOT NULL,
    secrets          bytea,
    state            text NOT NULL CHECK (state IN
                         ('Provisioning', 'Running', 'Degraded', 'Stopping', 'Stopped', 'Failed', 'Deleting')),
    -- Bumped whenever the data path changes (source, mappings, scaling,
    -- settings, secrets): replicas restart on a newer generation.
    generation       bigint NOT NULL DEFAULT 1,
    -- Bumped on every change; the ETag of the pipe.
    version          bigint NOT NULL DEFAULT 1,
    ready_replicas   integer NOT NULL DEFAULT 0,
    last_error       text,
    last_error_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    state_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipes_destination_id ON pipes (destination_id);
CREATE INDEX pipes_state ON pipes (state);

CREATE TABLE pipe_events (
    id      bigserial PRIMARY KEY,
    pipe_id uuid NOT NULL REFERENCES pipes (id) ON DELETE CASCADE,
    at      timestamptz NOT NULL DEFAULT now(),
    level   text NOT NULL CHECK (level IN ('info', 'warning', 'error')),
    kind    text NOT NULL,
    message text NOT NULL
);
CREATE INDEX pipe_events_pipe_id ON pipe_events (pipe_id, id DESC);

CREATE TABLE workers (
    id           uuid PRIMARY KEY,
    hostname     text NOT NULL,
    millicpu     integer NOT NULL,
    memory_mib   bigint NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
