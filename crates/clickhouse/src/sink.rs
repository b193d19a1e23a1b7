//! The I/O shell: a ClickHouse HTTP(S) endpoint, used for DDL, schema reads
//! and RowBinary inserts. Inserts always wait for the end of the query, so
//! an error is an error (18.16 otherwise reports failures after a 200).

use std::future::Future;
use std::time::Duration;

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
    /// PEM certificates trusted for the server besides the public roots
    /// (a private CA).
    pub ca_certificate: Option<String>,
    /// Where connections may go: every address a host name resolves to is
    /// checked when the connection is made, so a name cannot be pointed
    /// elsewhere between a check and a connection.
    pub egress: std::sync::Arc<sluice_model::EgressPolicy>,
}

impl Endpoint {
    /// The one way a destination becomes a client's endpoint, for the API
    /// (checks, browsing, pipe checks) and the workers alike. `spec` must
    /// hold its password (`SecretBag::fill`).
    pub fn of_destination(
        spec: &sluice_model::DestinationSpec,
        egress: std::sync::Arc<sluice_model::EgressPolicy>,
    ) -> Endpoint {
        Endpoint {
            url: spec.url.clone(),
            user: spec.username.clone(),
            password: spec
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default(),
            database: spec.database.clone(),
            ca_certificate: spec.ca_certificate.clone(),
            egress,
        }
    }
}

/// Resolves names for the ClickHouse connections and refuses any address
/// the egress policy denies. (Literal addresses are not resolved: the API
/// and the workers check them before connecting.)
#[derive(Clone)]
struct CheckedResolver {
    egress: std::sync::Arc<sluice_model::EgressPolicy>,
}

type Resolved = std::vec::IntoIter<std::net::SocketAddr>;

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for CheckedResolver {
    type Response = Resolved;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Resolved, std::io::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let egress = self.egress.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let denied = |e: sluice_model::EgressDenied| {
                std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string())
            };
            egress.check_host(&host).map_err(denied)?;
            let addresses: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &addresses {
                egress.check_resolved(&host, address.ip()).map_err(denied)?;
            }
            Ok(addresses.into_iter())
        })
    }
}

type Connector = hyper_rustls::HttpsConnector<
    hyper_util::client::legacy::connect::HttpConnector<CheckedResolver>,
>;

/// The HTTP(S) connector under the ClickHouse client: the public web roots,
/// plus the endpoint's own CA when it has one (rustls, ring).
fn connector(endpoint: &Endpoint) -> Result<Connector, SinkError> {
    let ca_certificate = endpoint.ca_certificate.as_deref();
    use hyper_util::client::legacy::connect::HttpConnector;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_certificate {
        let mut added = 0;
        for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let certificate = certificate.map_err(|e| {
                SinkError::Protocol(format!("the CA certificate cannot be read: {e}"))
            })?;
            roots.add(certificate).map_err(|e| {
                SinkError::Protocol(format!("the CA certificate cannot be used: {e}"))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(SinkError::Protocol(
                "the CA certificate holds no PEM certificate".into(),
            ));
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SinkError::Protocol(format!("TLS set-up failed: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new_with_resolver(CheckedResolver {
        egress: endpoint.egress.clone(),
    });
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
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

#[derive(Debug, Clone, thiserror::Error)]
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

/// What a failed request says about what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server was unreachable, overloaded or slow: send the same
    /// request again after a pause.
    Transient,
    /// The server refused rows of the block (a value it cannot hold, a
    /// constraint, a materialized view's exception): the same block fails
    /// again, smaller blocks find the rows.
    Rejected,
    /// Only a change to the pipe or the destination fixes it
    /// (authentication, a missing table or column, a type mismatch).
    Permanent,
}

/// ClickHouse error codes that no retry fixes: UNKNOWN_IDENTIFIER,
/// NO_SUCH_COLUMN_IN_TABLE, THERE_IS_NO_COLUMN, NOT_FOUND_COLUMN_IN_BLOCK,
/// TYPE_MISMATCH, UNKNOWN_TABLE, SYNTAX_ERROR, UNKNOWN_FORMAT,
/// UNKNOWN_DATABASE, UNKNOWN_SETTING, READONLY, UNKNOWN_USER,
/// WRONG_PASSWORD, REQUIRED_PASSWORD, IP_ADDRESS_NOT_ALLOWED,
/// ACCESS_DENIED, AUTHENTICATION_FAILED.
const PERMANENT_CODES: &[u32] = &[
    8, 10, 16, 47, 53, 60, 62, 73, 81, 115, 164, 192, 193, 194, 195, 497, 516,
];

/// Codes caused by the values of some rows: CANNOT_PARSE_TEXT,
/// CANNOT_PARSE_QUOTED_STRING, CANNOT_PARSE_INPUT_ASSERTION_FAILED,
/// ATTEMPT_TO_READ_AFTER_EOF, CANNOT_READ_ALL_DATA, BAD_ARGUMENTS,
/// CANNOT_PARSE_DATE, CANNOT_PARSE_DATETIME, ILLEGAL_TYPE_OF_ARGUMENT,
/// ILLEGAL_COLUMN, ARGUMENT_OUT_OF_BOUND, CANNOT_CONVERT_TYPE,
/// CANNOT_PARSE_NUMBER, INCORRECT_DATA, TOO_LARGE_STRING_SIZE,
/// ILLEGAL_DIVISION, SIZES_OF_ARRAYS_DONT_MATCH,
/// VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE, CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN,
/// FUNCTION_THROW_IF_VALUE_IS_NON_ZERO, DECIMAL_OVERFLOW,
/// VIOLATED_CONSTRAINT, UNKNOWN_ELEMENT_OF_ENUM.
const REJECTED_CODES: &[u32] = &[
    6, 26, 27, 32, 33, 36, 38, 41, 43, 44, 69, 70, 72, 117, 131, 153, 190, 321, 349, 395, 407, 469,
    691,
];

impl SinkError {
    pub fn failure(&self) -> Failure {
        match self {
            SinkError::Server { code, .. } if PERMANENT_CODES.contains(code) => Failure::Permanent,
            SinkError::Server { code, .. } if REJECTED_CODES.contains(code) => Failure::Rejected,
            // TOO_MANY_PARTS is the server falling behind with merges, but
            // "too many partitions for a single INSERT block" is the rows.
            SinkError::Server { code: 252, message }
                if message.contains("partitions for single INSERT block") =>
            {
                Failure::Rejected
            }
            _ => Failure::Transient,
        }
    }

    /// Errors that retrying the same request cannot fix.
    pub fn is_permanent(&self) -> bool {
        self.failure() == Failure::Permanent
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

/// How long a request may take when the caller does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Sink {
    client: Client,
    /// The longest any request may take, connecting included: a server
    /// that accepts the connection and never answers must not hold a
    /// replica.
    timeout: Duration,
}

impl Sink {
    pub fn new(endpoint: &Endpoint) -> Result<Self, SinkError> {
        Self::with_timeout(endpoint, DEFAULT_TIMEOUT)
    }

    /// Fails only on a CA certificate that cannot be used.
    pub fn with_timeout(endpoint: &Endpoint, timeout: Duration) -> Result<Self, SinkError> {
        // ClickHouse closes idle connections after 3 s.
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(2))
                .build(connector(endpoint)?);
        let client = Client::with_http_client(http)
            .with_url(&endpoint.url)
            .with_user(&endpoint.user)
            .with_password(&endpoint.password)
            .with_database(&endpoint.database)
            .with_validation(false)
            .with_compression(clickhouse::Compression::Lz4)
            .with_setting("wait_end_of_query", "1");
        Ok(Sink { client, timeout })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn bounded<T>(
        &self,
        request: impl Future<Output = Result<T, SinkError>>,
    ) -> Result<T, SinkError> {
        tokio::time::timeout(self.timeout, request)
            .await
            .unwrap_or_else(|_| {
                Err(SinkError::Unreachable(format!(
                    "no answer within {} s",
                    self.timeout.as_secs_f64()
                )))
            })
    }

    pub async fn execute(&self, sql: &str) -> Result<(), SinkError> {
        self.bounded(async {
            self.client
                .query(sql)
                .execute()
                .await
                .map_err(SinkError::from_client)
        })
        .await
    }

    pub async fn fetch_text(&self, sql: &str, format: &str) -> Result<Bytes, SinkError> {
        self.bounded(async {
            let mut cursor = self
                .client
                .query(sql)
                .fetch_bytes(format)
                .map_err(SinkError::from_client)?;
            cursor.collect().await.map_err(SinkError::from_client)
        })
        .await
    }

    /// Whether the server takes `insert_deduplication_token` (22.x on);
    /// older servers refuse unknown settings, so it is sent only then.
    pub async fn has_setting(&self, name: &str) -> Result<bool, SinkError> {
        let sql = format!(
            "SELECT count() FROM system.settings WHERE name = '{}'",
            name.replace(['\\', '\''], "")
        );
        let bytes = self.fetch_text(&sql, "TabSeparated").await?;
        Ok(String::from_utf8_lossy(&bytes).trim() == "1")
    }

    /// Whether the user may insert into the table: an insert of no rows,
    /// which the server checks like any other and which writes nothing.
    /// (Sent as a query: an insert with no data is never sent at all.)
    pub async fn can_insert(&self, database: &str, table: &str) -> Result<(), SinkError> {
        self.execute(&format!(
            "INSERT INTO {} FORMAT RowBinary",
            crate::ddl::qualified(database, table)
        ))
        .await
    }

    /// The server's `system.data_type_families`: (name, case_insensitive).
    pub async fn type_families(&self) -> Result<Vec<(String, bool)>, SinkError> {
        let bytes = self
            .fetch_text(
                "SELECT name, case_insensitive FROM system.data_type_families",
                "TabSeparated",
            )
            .await?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| {
                let (name, case_insensitive) = line.split_once('\t')?;
                Some((name.to_owned(), case_insensitive == "1"))
            })
            .collect())
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
    /// With a token, a server that deduplicates inserts keeps one copy of
    /// the block however often it is sent.
    pub async fn insert_rowbinary(
        &self,
        statement: &str,
        chunks: Vec<Bytes>,
        settings: &[(&str, &str)],
        token: Option<&str>,
    ) -> Result<(), SinkError> {
        self.bounded(self.insert_unbounded(statement, chunks, settings, token))
            .await
    }

    async fn insert_unbounded(
        &self,
        statement: &str,
        chunks: Vec<Bytes>,
        settings: &[(&str, &str)],
        token: Option<&str>,
    ) -> Result<(), SinkError> {
        let mut insert = self.client.insert_formatted_with(statement.to_owned());
        for (name, value) in settings {
            insert = insert.with_setting(*name, *value);
        }
        if let Some(token) = token {
            insert = insert.with_setting("insert_deduplication_token", token);
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

    #[test]
    fn failures_are_classified() {
        let server = |code: u32, message: &str| SinkError::Server {
            code,
            message: message.into(),
        };
        assert_eq!(server(395, "throwIf").failure(), Failure::Rejected);
        assert_eq!(server(469, "constraint").failure(), Failure::Rejected);
        assert_eq!(server(516, "auth").failure(), Failure::Permanent);
        assert_eq!(server(60, "no table").failure(), Failure::Permanent);
        assert_eq!(server(241, "memory").failure(), Failure::Transient);
        assert_eq!(
            server(
                252,
                "Too many parts (300). Merges are processing significantly slower than inserts"
            )
            .failure(),
            Failure::Transient
        );
        assert_eq!(
            server(
                252,
                "Too many partitions for single INSERT block (more than 100)"
            )
            .failure(),
            Failure::Rejected
        );
        assert_eq!(
            SinkError::Unreachable("refused".into()).failure(),
            Failure::Transient
        );
    }
}
