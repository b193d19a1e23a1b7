//! Schema evolution: the writer schemas a replica's messages name are
//! recorded (`GET /v1/pipes/{id}/schema`) and compared with the table once
//! each; with `schemaEvolution: add_columns`, new fields become Nullable
//! columns of the managed table.

use sluice_clickhouse::ddl;
use sluice_clickhouse::ChType;
use sluice_formats::columns::nullable;
use sluice_formats::fit_to_server;
use sluice_registry::pipe::SeenSchema;
use sluice_store::{AddedColumn, NewEvent, PipeSchemaRecord};

use crate::destination::Prepared;
use crate::replica::{Replica, RunError};

fn columns_json(seen: &SeenSchema) -> serde_json::Value {
    seen.columns
        .iter()
        .map(|c| {
            serde_json::json!({"name": c.name, "type": c.column_type, "sourceField": c.source_field})
        })
        .collect()
}

/// Records schemas seen for the first time; what one brings that the
/// table does not take (new fields without `add_columns`, fields the
/// table's columns read that it lacks) is reported once, as an event.
pub async fn record_schemas(replica: &Replica, reports: Vec<SeenSchema>) {
    let pipe_id = replica.lease.pipe_id;
    for seen in reports {
        let record = PipeSchemaRecord {
            schema_id: i64::from(seen.schema_id),
            message_type: seen.message_type.clone(),
            kind: seen.kind.to_owned(),
            columns: columns_json(&seen),
            first_seen: chrono::Utc::now(),
        };
        let first = match replica.store.record_pipe_schema(pipe_id, &record).await {
            Ok(first) => first,
            Err(e) => {
                tracing::warn!(error = %e, schema_id = seen.schema_id, "recording a writer schema failed");
                continue;
            }
        };
        if !first {
            continue;
        }
        let mut notes = Vec::new();
        if !seen.new_columns.is_empty() {
            let fields: Vec<&str> = seen
                .new_columns
                .iter()
                .map(|c| c.source_field.as_str())
                .collect();
            notes.push(format!(
                "its fields {} have no column and are not loaded (schemaEvolution is none)",
                fields.join(", ")
            ));
        }
        if !seen.missing_fields.is_empty() {
            notes.push(format!(
                "it lacks {}, which the table's columns read: they get their default (no column is dropped or altered)",
                seen.missing_fields.join(", ")
            ));
        }
        let message = if notes.is_empty() {
            format!(
                "writer schema id {} ({}) seen; it matches the table",
                seen.schema_id, seen.kind
            )
        } else {
            format!(
                "writer schema id {} ({}): {}",
                seen.schema_id,
                seen.kind,
                notes.join("; ")
            )
        };
        let event = if notes.is_empty() {
            NewEvent::info("schema_seen", message)
        } else {
            NewEvent::warning("schema_changed", message)
        };
        if let Err(e) = replica.store.insert_pipe_event(pipe_id, &event).await {
            tracing::warn!(error = %e, "recording the schema event failed");
        }
    }
}

/// Adds a column per new field of `seen` to the managed table (Nullable,
/// as older messages lack it), records them and the statement, and bumps
/// the pipe's generation so every replica reads on with them.
pub async fn add_columns(
    replica: &Replica,
    prepared: &Prepared,
    seen: SeenSchema,
) -> Result<(), RunError> {
    let destination = |what: &str, e: &dyn std::fmt::Display| {
        RunError::Destination(format!("schema evolution, {what}: {e}"))
    };
    let families = prepared
        .sink
        .type_families()
        .await
        .map_err(|e| destination("reading the server's types", &e))?;
    let has = |family: &str| families.iter().any(|(name, _)| name == family);
    let existing: Vec<String> = prepared
        .sink
        .describe(&prepared.database, &prepared.table)
        .await
        .map_err(|e| destination("reading the table", &e))?
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect();
    let mut columns = Vec::new();
    for column in &seen.new_columns {
        if existing.contains(&column.name) {
            continue;
        }
        let ty = ChType::parse(&column.column_type)
            .map_err(|e| destination(&format!("column `{}`", column.name), &e))?;
        columns.push((column.name.clone(), nullable(fit_to_server(&ty, &has))));
    }
    let statement = ddl::add_columns(&prepared.database, &prepared.table, &columns);
    if !columns.is_empty() {
        prepared
            .sink
            .execute(&statement)
            .await
            .map_err(|e| destination("adding the columns", &e))?;
    }
    let added: Vec<AddedColumn> = seen
        .new_columns
        .iter()
        .map(|c| AddedColumn {
            name: c.name.clone(),
            column_type: columns
                .iter()
                .find(|(name, _)| *name == c.name)
                .map_or_else(|| c.column_type.clone(), |(_, ty)| ty.to_string()),
            source_field: c.source_field.clone(),
            schema_id: i64::from(seen.schema_id),
            statement: statement.clone(),
        })
        .collect();
    let fields: Vec<&str> = seen
        .new_columns
        .iter()
        .map(|c| c.source_field.as_str())
        .collect();
    let event = NewEvent::info(
        "schema_evolved",
        format!(
            "writer schema id {} adds {}: {statement}",
            seen.schema_id,
            fields.join(", ")
        ),
    );
    replica
        .store
        .add_pipe_columns(replica.lease.pipe_id, &added, &event)
        .await
        .map_err(|e| RunError::Source(format!("recording the added columns: {e}")))?;
    tracing::info!(schema_id = seen.schema_id, %statement, "table evolved");
    Ok(())
}
