//! Getting the ClickHouse side ready for a replica: the managed table or the
//! existing one's schema, the error table, and the row plan.

use sluice_clickhouse::ddl::{self, ManagedTable};
use sluice_clickhouse::expr;
use sluice_clickhouse::{ChType, Endpoint, Sink, SinkError};
use sluice_formats::RowPlan;
use sluice_model::{Permissions, PipeSpec, TableEngine};

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The user must change something (table, mapping, types, credentials).
    #[error("{0}")]
    Permanent(String),
    /// Worth retrying (ClickHouse unreachable, overloaded).
    #[error("{0}")]
    Transient(String),
}

impl From<SinkError> for PrepareError {
    fn from(e: SinkError) -> Self {
        if e.is_permanent() {
            PrepareError::Permanent(e.to_string())
        } else {
            PrepareError::Transient(e.to_string())
        }
    }
}

pub struct Prepared {
    pub sink: Sink,
    pub database: String,
    pub table: String,
    pub plan: RowPlan,
    pub insert_statement: String,
    pub error_insert_statement: String,
    pub insert_settings: Vec<(&'static str, &'static str)>,
    /// The server takes `insert_deduplication_token` (older servers refuse
    /// the unknown setting).
    pub dedup_tokens: bool,
}

pub async fn prepare(
    spec: &PipeSpec,
    endpoint: Endpoint,
    timeout: std::time::Duration,
) -> Result<Prepared, PrepareError> {
    let sink = Sink::with_timeout(&endpoint, timeout)
        .map_err(|e| PrepareError::Permanent(format!("the destination: {e}")))?;
    let database = spec
        .destination
        .database
        .clone()
        .unwrap_or_else(|| endpoint.database.clone());
    let table = spec.destination.table.clone();
    let dedup_tokens = sink.has_setting("insert_deduplication_token").await?;
    if spec.exactly_once && !dedup_tokens {
        let version = sink.version().await?;
        return Err(PrepareError::Permanent(format!(
            "exactlyOnce needs insert deduplication tokens, which ClickHouse {version} does not have (they came in 22.2)"
        )));
    }

    let declared: Vec<(String, ChType)> = spec
        .destination
        .columns
        .iter()
        .map(|c| {
            ChType::parse(&c.column_type)
                .map(|t| (c.name.clone(), t))
                .map_err(|e| PrepareError::Permanent(format!("column `{}`: {e}", c.name)))
        })
        .collect::<Result<_, _>>()?;
    let families = sink.type_families().await?;
    for (name, ty) in &declared {
        if let Some(family) = ty.first_missing_family(&families) {
            let version = sink.version().await?;
            return Err(PrepareError::Permanent(format!(
                "column `{name}`: `{ty}` needs {family}, which the destination's ClickHouse {version} does not have"
            )));
        }
    }

    if spec.destination.managed_table {
        let definition = spec
            .destination
            .table_definition
            .clone()
            .unwrap_or_else(|| sluice_model::TableDefinition {
                engine: TableEngine::MergeTree,
                sorting_key: Vec::new(),
                partition_by: None,
                primary_key: None,
            });
        let engine = match definition.engine {
            TableEngine::MergeTree => "MergeTree",
            TableEngine::ReplacingMergeTree => "ReplacingMergeTree",
            TableEngine::SummingMergeTree => "SummingMergeTree",
            TableEngine::Null => "Null",
        };
        // The API refuses these already; parsed again because only the
        // tree, never the stored text, is rendered into the statement.
        let names: Vec<&str> = declared.iter().map(|(name, _)| name.as_str()).collect();
        let key = |field: &str, text: &Option<String>| {
            text.as_deref()
                .map(|text| {
                    expr::parse(text, &names).map_err(|e| {
                        PrepareError::Permanent(format!("tableDefinition.{field} `{text}`: {e}"))
                    })
                })
                .transpose()
        };
        let partition_by = key("partitionBy", &definition.partition_by)?;
        let primary_key = key("primaryKey", &definition.primary_key)?;
        sink.execute(&ddl::create_table(&ManagedTable {
            database: &database,
            table: &table,
            columns: &declared,
            engine,
            sorting_key: &definition.sorting_key,
            partition_by: partition_by.as_ref(),
            primary_key: primary_key.as_ref(),
            deduplication_window: spec.exactly_once.then_some(DEDUPLICATION_WINDOW),
        }))
        .await?;
    }
    if spec.exactly_once {
        check_deduplicates(&sink, &database, &table).await?;
    }

    let described = sink.describe(&database, &table).await?.ok_or_else(|| {
        PrepareError::Permanent(format!(
            "the destination table `{database}`.`{table}` does not exist; create it or set managedTable"
        ))
    })?;
    let mut columns = Vec::new();
    let mut defaulted = Vec::new();
    for column in described {
        if column.default_type == "DEFAULT" {
            defaulted.push(column.name.clone());
        }
        // MATERIALIZED and ALIAS columns are computed by ClickHouse and
        // cannot be inserted.
        if matches!(column.default_type.as_str(), "MATERIALIZED" | "ALIAS") {
            continue;
        }
        let ty = ChType::parse(&column.column_type).map_err(|e| {
            PrepareError::Permanent(format!("column `{}` of the table: {e}", column.name))
        })?;
        columns.push((column.name, ty));
    }
    check_declared_types(&declared, &columns)?;
    let mappings: Vec<(String, String)> = spec
        .field_mappings
        .iter()
        .map(|m| (m.source_field.clone(), m.destination_field.clone()))
        .collect();
    for (_, destination) in &mappings {
        if !columns.iter().any(|(name, _)| name == destination) {
            return Err(PrepareError::Permanent(format!(
                "field mapping to `{destination}`: the table `{database}`.`{table}` has no such column"
            )));
        }
    }

    if spec.destination.permissions == Permissions::TableOnly {
        table_only_ready(&sink, &database, &table, spec.exactly_once).await?;
    } else {
        create_error_table(&sink, &database, &table, spec.exactly_once).await?;
    }

    let mut plan = RowPlan::new(columns, &mappings);
    // DEFAULT expressions apply to missing fields where the server has
    // RowBinaryWithDefaults (23.x and later); older servers get zero values.
    if !defaulted.is_empty() && sink.has_input_format("RowBinaryWithDefaults").await? {
        plan = plan.with_defaults(&defaulted);
    }
    let names = plan.column_names();
    let insert_statement = ddl::insert_statement_as(&database, &table, &names, plan.format_name());
    let error_names: Vec<&str> = ddl::ERROR_TABLE_COLUMNS.iter().map(|(n, _)| *n).collect();
    let error_insert_statement =
        ddl::insert_statement(&database, &ddl::error_table_name(&table), &error_names);
    let mut insert_settings = Vec::new();
    if plan.has_json_column() {
        insert_settings.push(("input_format_binary_read_json_as_string", "1"));
    }
    if spec.exactly_once {
        // The token reaches the tables of the destination's materialized
        // views too, so a rebuilt block lands there once as well.
        insert_settings.push(("insert_deduplicate", "1"));
        insert_settings.push(("deduplicate_blocks_in_dependent_materialized_views", "1"));
    }
    Ok(Prepared {
        sink,
        database,
        table,
        plan,
        insert_statement,
        error_insert_statement,
        insert_settings,
        dedup_tokens,
    })
}

/// How many recent insert tokens a managed table of an exactly-once pipe
/// remembers: far more than the blocks in flight between a crash and the
/// replay (one per partition or shard).
pub const DEDUPLICATION_WINDOW: u32 = 10_000;

#[derive(serde::Deserialize)]
struct TableEntry {
    engine: String,
    create_table_query: String,
}

/// An existing table of an exactly-once pipe must drop a block sent again.
async fn check_deduplicates(sink: &Sink, database: &str, table: &str) -> Result<(), PrepareError> {
    let sql = format!(
        "SELECT engine, create_table_query FROM system.tables WHERE database = {} AND name = {}",
        ddl::quote_literal(database),
        ddl::quote_literal(table)
    );
    let bytes = sink.fetch_text(&sql, "JSONEachRow").await?;
    let Some(line) = bytes.split(|&b| b == b'\n').find(|l| !l.is_empty()) else {
        return Ok(()); // Not there: `describe` below says so.
    };
    let found: TableEntry = serde_json::from_slice(line)
        .map_err(|e| PrepareError::Transient(format!("reading system.tables: {e}")))?;
    let query = found.create_table_query.replace(' ', "");
    let deduplicates =
        if found.engine.starts_with("Replicated") || found.engine.starts_with("Shared") {
            !query.contains("replicated_deduplication_window=0")
        } else if found.engine.ends_with("MergeTree") {
            query.contains("non_replicated_deduplication_window=")
                && !query.contains("non_replicated_deduplication_window=0")
        } else {
            // Null: nothing is stored; the tables of its views deduplicate.
            found.engine == "Null"
        };
    if deduplicates {
        Ok(())
    } else if found.engine.ends_with("MergeTree") {
        Err(PrepareError::Permanent(format!(
            "exactlyOnce: the table `{database}`.`{table}` ({}) keeps no insert tokens, so a block sent again would land twice; run `ALTER TABLE {} MODIFY SETTING non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}`",
            found.engine,
            ddl::qualified(database, table)
        )))
    } else {
        Err(PrepareError::Permanent(format!(
            "exactlyOnce: the table `{database}`.`{table}` has the engine {}, which does not deduplicate inserts",
            found.engine
        )))
    }
}

/// A pipe's declared column types must be writable to the table's: equal,
/// or both numeric, or the table's a String.
fn check_declared_types(
    declared: &[(String, ChType)],
    table: &[(String, ChType)],
) -> Result<(), PrepareError> {
    fn strip(t: &ChType) -> &ChType {
        match t {
            ChType::Nullable(inner) | ChType::LowCardinality(inner) => strip(inner),
            other => other,
        }
    }
    for (name, declared_type) in declared {
        let Some((_, table_type)) = table.iter().find(|(n, _)| n == name) else {
            return Err(PrepareError::Permanent(format!(
                "column `{name}` is declared by the pipe but the table has no such column"
            )));
        };
        let (a, b) = (strip(declared_type), strip(table_type));
        let compatible =
            a == b || (a.is_numeric() && b.is_numeric()) || matches!(b, ChType::String);
        if !compatible {
            return Err(PrepareError::Permanent(format!(
                "column `{name}`: the pipe declares {declared_type} but the table has {table_type}, which it cannot be converted to"
            )));
        }
    }
    Ok(())
}

/// Sluice's own error table beside the destination, created (or, on an
/// exactly-once pipe, given the token window its rows need).
async fn create_error_table(
    sink: &Sink,
    database: &str,
    table: &str,
    exactly_once: bool,
) -> Result<(), PrepareError> {
    let with_ttl = match sink
        .execute(&ddl::create_error_table(database, table, true))
        .await
    {
        Ok(()) => true,
        // Servers before 19.6 have no TTL: keep the table without it.
        Err(SinkError::Server { code: 62, .. }) => {
            sink.execute(&ddl::create_error_table(database, table, false))
                .await?;
            false
        }
        Err(e) => return Err(e.into()),
    };
    if !with_ttl {
        tracing::warn!("this ClickHouse has no TTL: rows in the error table are not expired");
    }
    if exactly_once {
        // The error rows of a rebuilt block are sent again with the same
        // token: the error table, Sluice's own, must remember tokens too.
        sink.execute(&format!(
            "ALTER TABLE {} MODIFY SETTING non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}",
            ddl::qualified(database, &ddl::error_table_name(table))
        ))
        .await?;
    }
    Ok(())
}

/// `permissions: table_only`: Sluice runs no DDL, so the table and its
/// error table must exist and take inserts from the destination's user.
async fn table_only_ready(
    sink: &Sink,
    database: &str,
    table: &str,
    exactly_once: bool,
) -> Result<(), PrepareError> {
    let errors = ddl::error_table_name(table);
    if sink.describe(database, &errors).await?.is_none() {
        return Err(PrepareError::Permanent(format!(
            "permissions is table_only, so Sluice creates no table, and the error table `{database}`.`{errors}` does not exist; create it with: {}",
            ddl::create_error_table(database, table, true)
        )));
    }
    for name in [table, errors.as_str()] {
        if let Err(e) = sink.can_insert(database, name).await {
            return Err(match e {
                SinkError::Server { .. } => PrepareError::Permanent(format!(
                    "permissions is table_only: the destination's user needs INSERT on `{database}`.`{name}`: {e}"
                )),
                other => other.into(),
            });
        }
    }
    if exactly_once {
        check_deduplicates(sink, database, &errors).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_must_convert() {
        let t = |s: &str| ChType::parse(s).unwrap();
        let table = vec![
            ("id".to_owned(), t("UInt64")),
            ("name".to_owned(), t("String")),
            ("at".to_owned(), t("DateTime")),
        ];
        assert!(check_declared_types(&[("id".into(), t("Int32"))], &table).is_ok());
        assert!(check_declared_types(&[("name".into(), t("UUID"))], &table).is_ok());
        assert!(check_declared_types(&[("at".into(), t("Nullable(DateTime)"))], &table).is_ok());
        let error = check_declared_types(&[("at".into(), t("UUID"))], &table)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`at`") && error.contains("UUID") && error.contains("DateTime"),
            "{error}"
        );
        assert!(check_declared_types(&[("missing".into(), t("UInt8"))], &table).is_err());
    }
}
