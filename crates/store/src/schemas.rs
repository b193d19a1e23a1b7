//! Writer schemas a pipe has seen and the columns schema evolution added
//! (migration 0012). Queries are checked at run time (`sqlx::query`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::pipes::insert_event;
use crate::{NewEvent, Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct PipeSchemaRecord {
    pub schema_id: i64,
    /// Protobuf: the message type; Avro: empty.
    pub message_type: String,
    pub kind: String,
    /// `[{name, type, sourceField}]`
    pub columns: serde_json::Value,
    pub first_seen: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedColumn {
    pub name: String,
    pub column_type: String,
    pub source_field: String,
    pub schema_id: i64,
    pub statement: String,
}

impl Store {
    /// Records a writer schema the pipe's messages named; true when it was
    /// not known yet (so what it brings is reported once).
    pub async fn record_pipe_schema(
        &self,
        pipe_id: Uuid,
        schema: &PipeSchemaRecord,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO pipe_schemas (pipe_id, schema_id, message_type, kind, columns)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(pipe_id)
        .bind(schema.schema_id)
        .bind(&schema.message_type)
        .bind(&schema.kind)
        .bind(&schema.columns)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The writer schemas seen, oldest first.
    pub async fn pipe_schemas(&self, pipe_id: Uuid) -> Result<Vec<PipeSchemaRecord>> {
        let rows: Vec<(i64, String, String, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
            "SELECT schema_id, message_type, kind, columns, first_seen FROM pipe_schemas
             WHERE pipe_id = $1 ORDER BY first_seen, schema_id, message_type",
        )
        .bind(pipe_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(schema_id, message_type, kind, columns, first_seen)| PipeSchemaRecord {
                    schema_id,
                    message_type,
                    kind,
                    columns,
                    first_seen,
                },
            )
            .collect())
    }

    /// Records columns added to the pipe's table, with their event, and
    /// bumps the pipe's generation so every replica restarts with them.
    /// Columns already recorded (another replica was first) are kept.
    pub async fn add_pipe_columns(
        &self,
        pipe_id: Uuid,
        columns: &[AddedColumn],
        event: &NewEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for column in columns {
            added += sqlx::query(
                "INSERT INTO pipe_added_columns (pipe_id, name, column_type, source_field, schema_id, statement)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(pipe_id)
            .bind(&column.name)
            .bind(&column.column_type)
            .bind(&column.source_field)
            .bind(column.schema_id)
            .bind(&column.statement)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if added > 0 {
            sqlx::query(
                "UPDATE pipes SET generation = generation + 1, version = version + 1, updated_at = now()
                 WHERE id = $1",
            )
            .bind(pipe_id)
            .execute(&mut *tx)
            .await?;
            insert_event(&mut tx, pipe_id, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The columns schema evolution added, oldest first.
    pub async fn pipe_added_columns(&self, pipe_id: Uuid) -> Result<Vec<AddedColumn>> {
        let rows: Vec<(String, String, String, i64, String)> = sqlx::query_as(
            "SELECT name, column_type, source_field, schema_id, statement FROM pipe_added_columns
             WHERE pipe_id = $1 ORDER BY added_at, name",
        )
        .bind(pipe_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(name, column_type, source_field, schema_id, statement)| AddedColumn {
                    name,
                    column_type,
                    source_field,
                    schema_id,
                    statement,
                },
            )
            .collect())
    }
}
