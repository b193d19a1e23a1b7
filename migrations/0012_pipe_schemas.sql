-- Writer schemas a pipe's messages named (AvroConfluent, Protobuf through a
-- registry), first seen when, and the columns each maps to: what
-- GET /v1/pipes/{id}/schema shows. One row per schema id and message type
-- (Protobuf schemas may hold several; Avro's is '').
CREATE TABLE pipe_schemas (
    pipe_id      uuid NOT NULL REFERENCES pipes (id) ON DELETE CASCADE,
    schema_id    bigint NOT NULL,
    message_type text NOT NULL DEFAULT '',
    kind         text NOT NULL,
    -- [{name, type, sourceField}]
    columns      jsonb NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipe_id, schema_id, message_type)
);

-- Columns schema evolution (`schemaEvolution: add_columns`) added to a
-- managed table. Kept beside the spec, not in it: the spec stays what the
-- user wrote (Terraform sees no drift), and replicas add these columns'
-- field mappings to the plan.
CREATE TABLE pipe_added_columns (
    pipe_id      uuid NOT NULL REFERENCES pipes (id) ON DELETE CASCADE,
    name         text NOT NULL,
    column_type  text NOT NULL,
    source_field text NOT NULL,
    schema_id    bigint NOT NULL,
    statement    text NOT NULL,
    added_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipe_id, name)
);
