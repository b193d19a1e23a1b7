//! A client of a Confluent-compatible schema registry: schemas by id
//! (`GET /schemas/ids/{id}`) and by subject version
//! (`GET /subjects/{subject}/versions/{version}`), Avro and Protobuf (with
//! the schemas a Protobuf schema imports, given as references), with basic
//! auth, a private CA, a timeout on every request, retries while the
//! registry does not answer, the egress policy on every address it dials,
//! and a bounded cache, so each id is fetched once while it stays cached.
//!
//! It is the `SchemaSource` the Avro and Protobuf decoders read writer
//! schemas from. Decoding is synchronous (a record is decoded as it is
//! polled): a schema not in the cache is fetched on the spot, blocking that
//! replica's task for the request only (`block_in_place`, so the runtime's
//! other tasks go on); ids repeat, so this happens once per id.

pub mod pipe;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashlink::LruCache;
use serde::Deserialize;
use sluice_formats::avro::WriterSchema;
use sluice_formats::protobuf::ProtoSchema;
use sluice_formats::{RegisteredSchema, SchemaError, SchemaSource};
use sluice_model::format::{Pinned, RegistryUrl};
use sluice_model::EgressPolicy;

/// How many schemas a client keeps.
pub const DEFAULT_CACHE_CAPACITY: usize = 1000;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per schema while the registry does not answer, and the pause
/// before each next one; after them the replica stops and retries later.
const ATTEMPTS: u32 = 3;
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// References nest (a file importing a file importing …); this many is
/// more than any schema anyone wrote, and bounds a reference cycle.
const MAX_REFERENCES: usize = 100;

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
    /// Addresses the client may dial; none means any.
    pub egress: Option<Arc<EgressPolicy>>,
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
            egress: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("the schema registry is not configured correctly: {0}")]
    Config(String),
    /// The registry did not answer, answered 5xx, or refused our
    /// credentials: worth retrying, and no record's fault.
    #[error("the schema registry at {url} cannot be used: {reason}")]
    Unreachable { url: String, reason: String },
    /// The registry answered and has no such schema.
    #[error("the schema registry has no {what}: {body}")]
    NotFound { what: String, body: String },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
}

impl RegistryError {
    fn for_decoder(self) -> SchemaError {
        match self {
            RegistryError::Unreachable { .. } => SchemaError::transient(self.to_string()),
            other => SchemaError::permanent(other.to_string()),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    schema: String,
    /// Absent means AVRO.
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
    /// Subject version answers only.
    #[serde(default)]
    id: Option<u32>,
}

#[derive(Deserialize)]
struct Reference {
    name: String,
    subject: String,
    version: u32,
}

/// Refuses addresses the egress policy denies, after resolving the name.
struct CheckedResolver(Arc<EgressPolicy>);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            egress.check_host(&host)?;
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &addresses {
                egress.check_resolved(&host, address.ip())?;
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

pub struct Registry {
    http: reqwest::Client,
    base: String,
    username: Option<String>,
    password: Option<String>,
    cache: Mutex<LruCache<u32, Arc<RegisteredSchema>>>,
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
        if let Some(egress) = &config.egress {
            // Literal addresses are not resolved: check them here.
            let host = url::Url::parse(&config.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .ok_or_else(|| RegistryError::Config(format!("`{}` names no host", config.url)))?;
            egress
                .check_host(&host)
                .map_err(|e| RegistryError::Config(e.to_string()))?;
            http = http.dns_resolver(Arc::new(CheckedResolver(egress.clone())));
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

    fn cached(&self, id: u32) -> Option<Arc<RegisteredSchema>> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// One GET, retried while the registry does not answer.
    async fn get(&self, path: &str, what: &str) -> Result<Answer, RegistryError> {
        let mut pause = FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            match self.get_once(path, what).await {
                Err(RegistryError::Unreachable { reason, .. }) if attempt < ATTEMPTS => {
                    tracing::warn!(registry = %self.base, %reason, attempt, "schema registry did not answer; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 4;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn get_once(&self, path: &str, what: &str) -> Result<Answer, RegistryError> {
        let url = format!("{}/{path}", self.base);
        let mut request = self.http.get(&url).header(
            reqwest::header::ACCEPT,
            "application/vnd.schemaregistry.v1+json, application/json",
        );
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
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                what: what.to_owned(),
                body: cut(&body),
            });
        }
        if !status.is_success() {
            // 401/403 too: every record would fail the same way until the
            // credentials are fixed, so the pipe waits rather than filling
            // the error table.
            return Err(unreachable(format!("HTTP {status}: {}", cut(&body))));
        }
        serde_json::from_str(&body).map_err(|e| RegistryError::Invalid {
            what: what.to_owned(),
            reason: format!("the registry's answer is not a schema: {e}"),
        })
    }

    /// The files a Protobuf schema imports, by import name, fetched from
    /// the subject versions its references name (and theirs, in turn).
    async fn references(
        &self,
        first: Vec<Reference>,
        what: &str,
    ) -> Result<BTreeMap<String, String>, RegistryError> {
        let mut files = BTreeMap::new();
        let mut pending = first;
        while let Some(reference) = pending.pop() {
            if files.contains_key(&reference.name) {
                continue;
            }
            if files.len() >= MAX_REFERENCES {
                return Err(RegistryError::Invalid {
                    what: what.to_owned(),
                    reason: format!("it references more than {MAX_REFERENCES} schemas"),
                });
            }
            let answer = self
                .get(
                    &format!(
                        "subjects/{}/versions/{}",
                        encode(&reference.subject),
                        reference.version
                    ),
                    &format!(
                        "version {} of subject {} (imported as {})",
                        reference.version, reference.subject, reference.name
                    ),
                )
                .await?;
            pending.extend(answer.references);
            files.insert(reference.name, answer.schema);
        }
        Ok(files)
    }

    async fn parse(&self, answer: Answer, what: &str) -> Result<RegisteredSchema, RegistryError> {
        let invalid = |e: SchemaError| RegistryError::Invalid {
            what: what.to_owned(),
            reason: e.message,
        };
        match answer.schema_type.as_deref().unwrap_or("AVRO") {
            "AVRO" => Ok(RegisteredSchema::Avro(
                WriterSchema::parse(&answer.schema).map_err(invalid)?,
            )),
            "PROTOBUF" => {
                let references = self.references(answer.references, what).await?;
                Ok(RegisteredSchema::Protobuf(
                    ProtoSchema::from_registry(&answer.schema, &references).map_err(invalid)?,
                ))
            }
            other => Err(RegistryError::Invalid {
                what: what.to_owned(),
                reason: format!("it is a {other} schema; Sluice reads Avro and Protobuf"),
            }),
        }
    }

    fn remember(&self, id: u32, schema: RegisteredSchema) -> Arc<RegisteredSchema> {
        let schema = Arc::new(schema);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, schema.clone());
        tracing::info!(schema_id = id, registry = %self.base, kind = schema.kind(), "writer schema fetched");
        schema
    }

    /// The schema registered under `id`, from the cache or the registry.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let what = format!("schema id {id}");
        let answer = self.get(&format!("schemas/ids/{id}"), &what).await?;
        let schema = self.parse(answer, &what).await?;
        Ok(self.remember(id, schema))
    }

    /// The schema a registry URL pins (`Pinned::Nothing` pins none), with
    /// its id: a subject's version (its latest now when none is named), or
    /// an id.
    pub async fn pinned(
        &self,
        pinned: &Pinned,
    ) -> Result<Option<(u32, Arc<RegisteredSchema>)>, RegistryError> {
        match pinned {
            Pinned::Nothing => Ok(None),
            Pinned::Id(id) => Ok(Some((*id, self.schema_by_id(*id).await?))),
            Pinned::Subject { subject, version } => {
                let version_text = version.map_or("latest".to_owned(), |v| v.to_string());
                let what = format!("version {version_text} of subject {subject}");
                let answer = self
                    .get(
                        &format!("subjects/{}/versions/{version_text}", encode(subject)),
                        &what,
                    )
                    .await?;
                let id = answer.id.ok_or_else(|| RegistryError::Invalid {
                    what: what.clone(),
                    reason: "the answer has no schema id".into(),
                })?;
                let schema = self.parse(answer, &what).await?;
                Ok(Some((id, self.remember(id, schema))))
            }
        }
    }
}

/// A registry client for a pipe's `schemaRegistry`, and what its URL pins.
pub fn for_pipe(
    registry: &sluice_model::SchemaRegistry,
    egress: Option<Arc<EgressPolicy>>,
) -> Result<(Registry, Pinned), RegistryError> {
    let url = RegistryUrl::parse(&registry.url).map_err(RegistryError::Config)?;
    let mut config = RegistryConfig::new(url.root);
    if let Some(credentials) = &registry.credentials {
        config.username = Some(credentials.username.clone());
        config.password = credentials.password.as_ref().map(|p| p.expose().to_owned());
    }
    config.ca_certificate = registry.ca_certificate.clone();
    config.egress = egress;
    Ok((Registry::new(config)?, url.pinned))
}

impl SchemaSource for Registry {
    fn schema(&self, id: u32) -> Result<Arc<RegisteredSchema>, SchemaError> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| SchemaError::transient("no async runtime to reach the registry from"))?;
        // block_in_place would panic on a single-threaded runtime.
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
            return Err(SchemaError::transient(format!(
                "schema id {id} is not cached, and a single-threaded runtime cannot wait for the registry"
            )));
        }
        tokio::task::block_in_place(|| handle.block_on(self.schema_by_id(id)))
            .map_err(RegistryError::for_decoder)
    }
}

/// A subject name as one path segment.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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
