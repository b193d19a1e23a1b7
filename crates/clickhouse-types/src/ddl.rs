//! SQL text for the tables Sluice manages, all of it printed from parsed
//! values: identifiers backquoted, types from `ChType`, key expressions from
//! their tree (`crate::expr`), so user input never becomes syntax.

use crate::expr::Expr;
use crate::types::ChType;

pub fn quote_ident(name: &str) -> String {
    // Dotted names are nested columns, quoted as one identifier.
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// A string literal: backslashes and quotes escaped, so a name read from a
/// request can be compared against in `system.tables` without becoming SQL.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub fn qualified(database: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(database), quote_ident(table))
}

/// `ALTER TABLE … ADD COLUMN …` for each column (schema evolution).
pub fn add_columns(database: &str, table: &str, columns: &[(String, ChType)]) -> String {
    let adds: Vec<String> = columns
        .iter()
        .map(|(name, ty)| format!("ADD COLUMN {} {ty}", quote_ident(name)))
        .collect();
    format!(
        "ALTER TABLE {} {}",
        qualified(database, table),
        adds.join(", ")
    )
}

pub struct ManagedTable<'a> {
    pub database: &'a str,
    pub table: &'a str,
    pub columns: &'a [(String, ChType)],
    pub engine: &'a str,
    pub sorting_key: &'a [String],
    pub partition_by: Option<&'a Expr>,
    pub primary_key: Option<&'a Expr>,
    /// Keep the tokens of this many recent inserts, so a block sent again
    /// is dropped (`non_replicated_deduplication_window`; Replicated and
    /// Shared engines deduplicate by default).
    pub deduplication_window: Option<u32>,
}

pub fn create_table(t: &ManagedTable<'_>) -> String {
    let columns: Vec<String> = t
        .columns
        .iter()
        .map(|(name, ty)| format!("    {} {ty}", quote_ident(name)))
        .collect();
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n) ENGINE = {}",
        qualified(t.database, t.table),
        columns.join(",\n"),
        t.engine
    );
    if t.engine == "Null" {
        return sql;
    }
    sql.push_str("()");
    if let Some(partition) = t.partition_by {
        sql.push_str(&format!(" PARTITION BY {partition}"));
    }
    let order: Vec<String> = t.sorting_key.iter().map(|c| quote_ident(c)).collect();
    sql.push_str(&format!(" ORDER BY ({})", order.join(", ")));
    if let Some(primary) = t.primary_key {
        sql.push_str(&format!(" PRIMARY KEY ({primary})"));
    }
    if let Some(window) = t.deduplication_window {
        sql.push_str(&format!(
            " SETTINGS non_replicated_deduplication_window = {window}"
        ));
    }
    sql
}

/// Longest raw message kept in the error table; longer ones are cut and
/// flagged `raw_truncated`.
pub const ERROR_RAW_MAX_BYTES: usize = 64 * 1024;

pub fn error_table_name(table: &str) -> String {
    format!("{table}_sluice_errors")
}

/// The error table beside a destination. `with_ttl` is false for servers
/// older than 19.6, which have no TTL.
pub fn create_error_table(database: &str, table: &str, with_ttl: bool) -> String {
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (\n    pipe_id String,\n    source String,\n    partition Int64,\n    offset Int64,\n    key String,\n    error_code String,\n    error String,\n    raw_message String,\n    raw_truncated UInt8,\n    raw_size UInt64,\n    at DateTime\n) ENGINE = MergeTree() PARTITION BY toYYYYMMDD(at) ORDER BY (pipe_id, at)",
        qualified(database, &error_table_name(table))
    );
    if with_ttl {
        sql.push_str(" TTL at + INTERVAL 7 DAY");
    }
    sql
}

pub const ERROR_TABLE_COLUMNS: [(&str, ChType); 11] = [
    ("pipe_id", ChType::String),
    ("source", ChType::String),
    ("partition", ChType::Int64),
    ("offset", ChType::Int64),
    ("key", ChType::String),
    ("error_code", ChType::String),
    ("error", ChType::String),
    ("raw_message", ChType::String),
    ("raw_truncated", ChType::UInt8),
    ("raw_size", ChType::UInt64),
    ("at", ChType::DateTime(None)),
];

pub fn insert_statement(database: &str, table: &str, columns: &[&str]) -> String {
    insert_statement_as(database, table, columns, "RowBinary")
}

pub fn insert_statement_as(database: &str, table: &str, columns: &[&str], format: &str) -> String {
    let columns: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    format!(
        "INSERT INTO {} ({}) FORMAT {format}",
        qualified(database, table),
        columns.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_columns_are_quoted_and_typed_from_the_tree() {
        assert_eq!(
            add_columns(
                "db",
                "t",
                &[
                    ("region".into(), ChType::parse("Nullable(String)").unwrap()),
                    ("a`; DROP".into(), ChType::Int64),
                ]
            ),
            "ALTER TABLE `db`.`t` ADD COLUMN `region` Nullable(String), ADD COLUMN `a\\`; DROP` Int64"
        );
    }

    #[test]
    fn literals_cannot_break_out() {
        assert_eq!(quote_literal("shop"), "'shop'");
        assert_eq!(quote_literal("a'b"), "'a\\'b'");
        assert_eq!(quote_literal("a\\' OR 1"), "'a\\\\\\' OR 1'");
    }

    #[test]
    fn statements() {
        let columns = vec![
            ("id".to_owned(), ChType::UInt64),
            ("a.b".to_owned(), ChType::parse("Nullable(String)").unwrap()),
        ];
        let sql = create_table(&ManagedTable {
            database: "db",
            table: "t",
            columns: &columns,
            engine: "ReplacingMergeTree",
            sorting_key: &["id".to_owned()],
            partition_by: Some(&crate::expr::parse("id % 4", &["id", "a.b"]).unwrap()),
            primary_key: None,
            deduplication_window: None,
        });
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS `db`.`t` (\n    `id` UInt64,\n    `a.b` Nullable(String)\n) ENGINE = ReplacingMergeTree() PARTITION BY (`id` % 4) ORDER BY (`id`)"
        );
        assert_eq!(quote_ident("we`ird"), "`we\\`ird`");
        assert_eq!(
            insert_statement("db", "t", &["id", "x"]),
            "INSERT INTO `db`.`t` (`id`, `x`) FORMAT RowBinary"
        );
        assert!(create_error_table("db", "t", true).contains("`t_sluice_errors`"));
        assert!(create_error_table("db", "t", true).ends_with("TTL at + INTERVAL 7 DAY"));
        assert!(!create_error_table("db", "t", false).contains("TTL"));
    }
}
