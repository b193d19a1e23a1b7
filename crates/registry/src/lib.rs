//! A client of a Confluent-compatible schema registry: writer schemas by
//! id (`GET /schemas/ids/{id}`), with basic auth, a private CA, a timeout
//! on every request and a bounded cache, so each id is fetched once while
//! it stays in the cache.
//!
//! It is the `SchemaSource` the Avro decoder reads writer schemas from.
//! Decoding is synchronous (a record is decoded as it is polled): a schema
//! not in the cache is fetched on the spot, blocking that replica's task
//! for the request only (`block_in_place`, so the runtime's other tasks go
//! on); ids repeat, so this happens once per id.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashlink::LruCache;
use serde::Deserialize;
use sluice_formats::avro::{SchemaError, SchemaSource, WriterSchema};

/// How many schemas a client keeps.
pub const DEFAULT_CACHE_CAPACITY: usize = 1000;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The registry's root, e.g. `https://registry.example.com:8081`.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM certificates trusted for the registry besides the public roots.
    pub ca_certificate: Option<String>,
    pub timeout: Duration,
    pub cache_capacity: usize,
}

impl RegistryConfig {
    pub fn new(url: impl Into<String>) -> Self {
        RegistryConfig {
            url: url.into(),
            username: None,
            password: None,
            ca_certificate: None,
            timeout: DEFAULT_TIMEOUT,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("the schema registry is not configured correctly: {0}")]
    Config(String),
    /// The registry did not answer, or answered 5xx: worth retrying.
    #[error("the schema registry at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    /// The registry answered and has no such schema (or refused us).
    #[error("the schema registry answered {status} for schema id {id}: {body}")]
    Refused { id: u32, status: u16, body: String },
    #[error("schema id {id}: {reason}")]
    Invalid { id: u32, reason: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaById {
    schema: String,
    /// Absent means AVRO.
    #[serde(default)]
    schema_type: Option<String>,
}

pub struct Registry {
    http: reqwest::Client,
    base: String,
    username: Option<String>,
    password: Option<String>,
    cache: Mutex<LruCache<u32, Arc<WriterSchema>>>,
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let mut http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &config.ca_certificate {
            let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| RegistryError::Config(format!("the CA certificate: {e}")))?;
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http
            .build()
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        Ok(Registry {
            http,
            base: config.url.trim_end_matches('/').to_owned(),
            username: config.username,
            password: config.password,
            cache: Mutex::new(LruCache::new(config.cache_capacity.max(1))),
        })
    }

    fn cached(&self, id: u32) -> Option<Arc<WriterSchema>> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// The writer schema registered under `id`, from the cache or the
    /// registry.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<WriterSchema>, RegistryError> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let url = format!("{}/schemas/ids/{id}", self.base);
        let mut request = self.http.get(&url);
        if let Some(user) = &self.username {
            request = request.basic_auth(user, self.password.as_deref());
        }
        let unreachable = |reason: String| RegistryError::Unreachable {
            url: self.base.clone(),
            reason,
        };
        let response = request.send().await.map_err(|e| unreachable(chain(&e)))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| unreachable(chain(&e)))?;
        if status.is_server_error() {
            return Err(unreachable(format!("HTTP {status}: {}", cut(&body))));
        }
        if !status.is_success() {
            return Err(RegistryError::Refused {
                id,
                status: status.as_u16(),
                body: cut(&body),
            });
        }
        let found: SchemaById =
            serde_json::from_str(&body).map_err(|e| RegistryError::Invalid {
                id,
                reason: format!("the registry's answer is not a schema: {e}"),
            })?;
        if let Some(kind) = found.schema_type.filter(|k| k != "AVRO") {
            return Err(RegistryError::Invalid {
                id,
                reason: format!("it is a {kind} schema, not Avro"),
            });
        }
        let schema =
            Arc::new(
                WriterSchema::parse(&found.schema).map_err(|e| RegistryError::Invalid {
                    id,
                    reason: e.to_string(),
                })?,
            );
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, schema.clone());
        tracing::info!(schema_id = id, registry = %self.base, "writer schema fetched");
        Ok(schema)
    }
}

impl SchemaSource for Registry {
    fn schema(&self, id: u32) -> Result<Arc<WriterSchema>, SchemaError> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| SchemaError("no async runtime to reach the registry from".into()))?;
        // block_in_place would panic on a single-threaded runtime.
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
            return Err(SchemaError(format!(
                "schema id {id} is not cached, and a single-threaded runtime cannot wait for the registry"
            )));
        }
        tokio::task::block_in_place(|| handle.block_on(self.schema_by_id(id)))
            .map_err(|e| SchemaError(e.to_string()))
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

fn cut(body: &str) -> String {
    body.chars().take(500).collect()
}
