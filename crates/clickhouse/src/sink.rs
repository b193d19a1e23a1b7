//! The I/O shell: a ClickHouse HTTP(S) endpoint, used for DDL, schema reads
//! and RowBinary inserts. Inserts always wait for the end of the query, so
//! an error is an error (18.16 otherwise reports failures after a 200).

use bytes::Bytes;
use clickhouse::Client;
use serde::Deserialize;

const SEND_PIECE_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct Endpoint {
    pub url: String,
    pub user: String,
    pub password: String,
    pub database: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// ClickHouse answered with an error; `code` is its numeric code.
    #[error("ClickHouse error {code}: {message}")]
    Server { code: u32, message: String },
    /// The server could not be reached or the connection broke.
    #[error("ClickHouse unreachable: {0}")]
    Unreachable(String),
    #[error("unexpected answer from ClickHouse: {0}")]
    Protocol(String),
}

impl SinkError {
    /// Errors that retrying the same request cannot fix: authentication,
    /// unknown tables or columns, type mismatches.
    pub fn is_permanent(&self) -> bool {
        match self {
            SinkError::Server { code, .. } => matches!(
                code,
                16 | 47 | 53 | 60 | 81 | 192 | 193 | 194 | 195 | 497 | 516
            ),
            _ => false,
        }
    }

    fn from_client(error: clickhouse::error::Error) -> Self {
        let text = error.to_string();
        match error {
            clickhouse::error::Error::BadResponse(message) => parse_server_error(&message),
            clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
                SinkError::Unreachable(chain(&text, &error))
            }
            _ => SinkError::Protocol(text),
        }
    }
}

fn chain(text: &str, error: &dyn std::error::Error) -> String {
    let mut out = text.to_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !out.contains(&cause_text) {
            out.push_str(": ");
            out.push_str(&cause_text);
        }
        source = cause.source();
    }
    out
}

/// `Code: N, e.displayText() = ...` (old servers) or `Code: N. DB::Exception: ...`.
pub fn parse_server_error(message: &str) -> SinkError {
    let code = message
        .find("Code: ")
        .and_then(|i| {
            message[i + 6..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|d| d.parse().ok())
        })
        .unwrap_or(0);
    SinkError::Server {
        code,
        message: message.trim().to_owned(),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TableColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: String,
    #[serde(default)]
    pub default_type: String,
    #[serde(default)]
    pub default_expression: String,
}

#[derive(Clone)]
pub struct Sink {
    client: Client,
}

impl Sink {
    pub fn new(endpoint: &Endpoint) -> Self {
        let client = Client::default()
            .with_url(&endpoint.url)
            .with_user(&endpoint.user)
            .with_password(&endpoint.password)
            .with_database(&endpoint.database)
            .with_validation(false)
            .with_compression(clickhouse::Compression::Lz4)
            .with_setting("wait_end_of_query", "1");
        Sink { client }
    }

    pub async fn execute(&self, sql: &str) -> Result<(), SinkError> {
        self.client
            .query(sql)
            .execute()
            .await
            .map_err(SinkError::from_client)
    }

    pub async fn fetch_text(&self, sql: &str, format: &str) -> Result<Bytes, SinkError> {
        let mut cursor = self
            .client
            .query(sql)
            .fetch_bytes(format)
            .map_err(SinkError::from_client)?;
        cursor.collect().await.map_err(SinkError::from_client)
    }

    pub async fn version(&self) -> Result<String, SinkError> {
        let bytes = self.fetch_text("SELECT version()", "TabSeparated").await?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
    }

    /// Whether the server knows an input format (`system.formats` exists
    /// from 19.x on; older servers answer no).
    pub async fn has_input_format(&self, name: &str) -> Result<bool, SinkError> {
        let sql = format!(
            "SELECT count() FROM system.formats WHERE name = '{}' AND is_input",
            name.replace(['\\', '\''], "")
        );
        match self.fetch_text(&sql, "TabSeparated").await {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).trim() == "1"),
            Err(SinkError::Server { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The table's columns, or `None` when it does not exist.
    pub async fn describe(
        &self,
        database: &str,
        table: &str,
    ) -> Result<Option<Vec<TableColumn>>, SinkError> {
        let sql = format!("DESCRIBE TABLE {}", crate::ddl::qualified(database, table));
        match self.fetch_text(&sql, "JSONEachRow").await {
            Ok(bytes) => bytes
                .split(|&b| b == b'\n')
                .filter(|line| !line.is_empty())
                .map(|line| {
                    serde_json::from_slice(line).map_err(|e| SinkError::Protocol(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Err(SinkError::Server { code: 60, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends RowBinary rows; returns once ClickHouse has acknowledged them.
    pub async fn insert_rowbinary(
        &self,
        statement: &str,
        chunks: Vec<Bytes>,
        settings: &[(&str, &str)],
    ) -> Result<(), SinkError> {
        let mut insert = self.client.insert_formatted_with(statement.to_owned());
        for (name, value) in settings {
            insert = insert.with_setting(*name, *value);
        }
        // Sent in 1 MiB pieces: each is compressed on its own, so the
        // compressed copy in flight stays small next to the batch.
        for chunk in chunks {
            let mut start = 0;
            while start < chunk.len() {
                let end = (start + SEND_PIECE_BYTES).min(chunk.len());
                insert
                    .send(chunk.slice(start..end))
                    .await
                    .map_err(SinkError::from_client)?;
                start = end;
            }
        }
        insert.end().await.map_err(SinkError::from_client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_of_both_generations() {
        let old = parse_server_error("Code: 60, e.displayText() = DB::Exception: Table db.t doesn't exist., e.what() = DB::Exception");
        assert!(matches!(old, SinkError::Server { code: 60, .. }));
        assert!(old.is_permanent());
        let new = parse_server_error(
            "Code: 241. DB::Exception: Memory limit exceeded (MEMORY_LIMIT_EXCEEDED)",
        );
        assert!(matches!(new, SinkError::Server { code: 241, .. }));
        assert!(!new.is_permanent());
    }
}
