//! A source's message format and where its schemas come from: a
//! Confluent-compatible schema registry, an Avro schema or `.proto` files
//! given with the pipe. The fields are the same on Kafka and Kinesis
//! sources; `FormatFields` is the one place that validates them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::secret::Secret;
use crate::validate::{check_pem, Validation};

pub const MAX_SCHEMA_BYTES: usize = 1024 * 1024;
pub const MAX_PROTO_FILES: usize = 64;

/// How each message is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub enum Format {
    /// One JSON object per message.
    #[default]
    JSONEachRow,
    /// One Avro datum per message, without framing, all written with one
    /// schema: `avroSchema`, or the subject version `schemaRegistry.url`
    /// names.
    Avro,
    /// Confluent's framing: a zero byte and the writer schema's registry
    /// id, then the datum. Needs `schemaRegistry`.
    AvroConfluent,
    /// Confluent's framing (schema id and message indexes) with
    /// `schemaRegistry`, or plain messages of `messageType` from
    /// `protobufSchema`.
    Protobuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub enum RegistryAuthentication {
    #[default]
    #[serde(rename = "NONE")]
    None,
    /// HTTP basic authentication with `credentials`.
    #[serde(rename = "PLAIN")]
    Plain,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaRegistry {
    /// The registry's root (`https://registry:8081`): each message's schema
    /// id is looked up. A subject (`…/subjects/orders-value`, its latest
    /// version when the pipe starts), a subject version
    /// (`…/subjects/orders-value/versions/3`) or a schema
    /// (`…/schemas/ids/42`) pins a schema: for `Avro` the writer schema,
    /// for `AvroConfluent` the reader schema each message is resolved
    /// against. `Protobuf` takes the root only.
    #[schema(example = "https://registry.example.com:8081")]
    pub url: String,
    #[serde(default)]
    pub authentication: RegistryAuthentication,
    /// Required for PLAIN, refused for NONE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<RegistryCredentials>,
    /// PEM bundle trusted for the registry's certificate besides the
    /// public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryCredentials {
    pub username: String,
    /// Write-only: never returned. Sent again whenever `url` or `username`
    /// changes.
    #[serde(
        default,
        skip_serializing_if = "crate::secret::never_written",
        serialize_with = "crate::secret::refuse_to_write"
    )]
    pub password: Option<Secret>,
}

/// What a registry URL points at besides the registry itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinned {
    Nothing,
    /// A subject's version; `None` is its latest when the pipe starts.
    Subject {
        subject: String,
        version: Option<u32>,
    },
    Id(u32),
}

/// A registry URL split into the registry's root and what it pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUrl {
    pub root: String,
    pub pinned: Pinned,
}

impl RegistryUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("is not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must use http or https".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not embed credentials; use credentials".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query string or fragment".into());
        }
        let path = url.path().trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').collect();
        let find = |name: &str| segments.iter().rposition(|s| *s == name);
        let root_of = |at: usize| {
            let mut root = url.clone();
            root.set_path(&segments[..at].join("/"));
            root.as_str().trim_end_matches('/').to_owned()
        };
        let decode =
            |s: &str| percent_decode(s).ok_or_else(|| format!("`{s}` is not a valid subject name"));
        if let Some(at) = find("subjects") {
            let rest = &segments[at + 1..];
            let pinned = match rest {
                [subject] => Pinned::Subject {
                    subject: decode(subject)?,
                    version: None,
                },
                [subject, "versions", "latest"] => Pinned::Subject {
                    subject: decode(subject)?,
                    version: None,
                },
                [subject, "versions", version] => Pinned::Subject {
                    subject: decode(subject)?,
                    version: Some(version.parse().map_err(|_| {
                        format!("`{version}` is not a version number (or `latest`)")
                    })?),
                },
                _ => return Err(
                    "a subject URL is …/subjects/NAME, optionally /versions/N or /versions/latest"
                        .into(),
                ),
            };
            if matches!(&pinned, Pinned::Subject { subject, .. } if subject.is_empty()) {
                return Err("names an empty subject".into());
            }
            return Ok(RegistryUrl {
                root: root_of(at),
                pinned,
            });
        }
        if let Some(at) = segments
            .windows(2)
            .rposition(|pair| pair == ["schemas", "ids"])
        {
            let [id] = &segments[at + 2..] else {
                return Err("a schema URL is …/schemas/ids/N".into());
            };
            let id = id
                .parse()
                .map_err(|_| format!("`{id}` is not a schema id"))?;
            return Ok(RegistryUrl {
                root: root_of(at),
                pinned: Pinned::Id(id),
            });
        }
        Ok(RegistryUrl {
            root: url.as_str().trim_end_matches('/').to_owned(),
            pinned: Pinned::Nothing,
        })
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A source's format fields, borrowed from a Kafka or Kinesis source.
pub struct FormatFields<'a> {
    pub format: Format,
    pub schema_registry: Option<&'a SchemaRegistry>,
    pub avro_schema: Option<&'a str>,
    pub protobuf_schema: Option<&'a BTreeMap<String, String>>,
    pub message_type: Option<&'a str>,
}

fn proto_file_name_ok(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name.ends_with(".proto")
        && !name.starts_with('/')
        && !name.split('/').any(|part| part.is_empty() || part == "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
}

impl FormatFields<'_> {
    pub fn validate(&self, v: &mut Validation, p: &str) {
        let absent = |v: &mut Validation, present: bool, field: &str, why: &str| {
            v.check(!present, format!("{p}/{field}"), why);
        };
        let not_protobuf = |v: &mut Validation| {
            let why = "is only used with Protobuf";
            absent(v, self.protobuf_schema.is_some(), "protobufSchema", why);
            absent(v, self.message_type.is_some(), "messageType", why);
        };
        let registry_pin = match self.schema_registry {
            Some(registry) => self.validate_registry(v, &format!("{p}/schemaRegistry"), registry),
            None => None,
        };
        match self.format {
            Format::JSONEachRow => {
                let why = "is only used with Avro, AvroConfluent and Protobuf";
                absent(v, self.schema_registry.is_some(), "schemaRegistry", why);
                absent(
                    v,
                    self.avro_schema.is_some(),
                    "avroSchema",
                    "is only used with Avro and AvroConfluent",
                );
                not_protobuf(v);
            }
            Format::Avro => {
                match (self.avro_schema, registry_pin) {
                    (Some(_), Some(_)) => v.error(
                        format!("{p}/avroSchema"),
                        "give the writer schema here or as a subject version in schemaRegistry.url, not both",
                    ),
                    (None, None) | (None, Some(Pinned::Nothing)) => v.error(
                        format!("{p}/avroSchema"),
                        "Avro messages carry no schema id: give the writer schema here, or a subject version or schema id URL in schemaRegistry.url",
                    ),
                    _ => {}
                }
                not_protobuf(v);
            }
            Format::AvroConfluent => {
                v.check(
                    self.schema_registry.is_some(),
                    format!("{p}/schemaRegistry"),
                    "is required with AvroConfluent: each message names its schema by registry id",
                );
                if self.avro_schema.is_some()
                    && matches!(registry_pin, Some(Pinned::Subject { .. } | Pinned::Id(_)))
                {
                    v.error(
                        format!("{p}/avroSchema"),
                        "pins the reader schema, and so does schemaRegistry.url: keep one",
                    );
                }
                not_protobuf(v);
            }
            Format::Protobuf => {
                absent(
                    v,
                    self.avro_schema.is_some(),
                    "avroSchema",
                    "is only used with Avro and AvroConfluent",
                );
                match (self.schema_registry, self.protobuf_schema) {
                    (Some(_), Some(_)) => v.error(
                        format!("{p}/protobufSchema"),
                        "give either schemaRegistry (messages in Confluent's framing) or protobufSchema (plain messages), not both",
                    ),
                    (None, None) => v.error(
                        format!("{p}/protobufSchema"),
                        "is required with Protobuf unless schemaRegistry is given",
                    ),
                    (Some(_), None) => {
                        if !matches!(registry_pin, None | Some(Pinned::Nothing)) {
                            v.error(
                                format!("{p}/schemaRegistry/url"),
                                "must be the registry's root for Protobuf: each message names its schema and type",
                            );
                        }
                        absent(
                            v,
                            self.message_type.is_some(),
                            "messageType",
                            "is only used with protobufSchema: registry messages name their type",
                        );
                    }
                    (None, Some(files)) => self.validate_proto_files(v, p, files),
                }
            }
        }
        if let Some(schema) = self.avro_schema {
            if schema.len() > MAX_SCHEMA_BYTES {
                v.error(
                    format!("{p}/avroSchema"),
                    format!("must be at most {MAX_SCHEMA_BYTES} bytes"),
                );
            } else if let Err(e) = sluice_formats::avro::WriterSchema::parse(schema) {
                v.error(format!("{p}/avroSchema"), e.message);
            }
        }
    }

    fn validate_proto_files(&self, v: &mut Validation, p: &str, files: &BTreeMap<String, String>) {
        let pointer = format!("{p}/protobufSchema");
        if files.is_empty() || files.len() > MAX_PROTO_FILES {
            v.error(
                &pointer,
                format!("must hold 1 to {MAX_PROTO_FILES} .proto files by name"),
            );
            return;
        }
        let mut ok = true;
        for (name, text) in files {
            let escaped = name.replace('~', "~0").replace('/', "~1");
            if !proto_file_name_ok(name) {
                ok = false;
                v.error(
                    format!("{pointer}/{escaped}"),
                    "a file name is a relative path of ASCII letters, digits, `. _ - /` ending in .proto, as imports name it",
                );
            } else if text.len() > MAX_SCHEMA_BYTES {
                ok = false;
                v.error(
                    format!("{pointer}/{escaped}"),
                    format!("must be at most {MAX_SCHEMA_BYTES} bytes"),
                );
            }
        }
        let message_pointer = format!("{p}/messageType");
        let Some(message_type) = self.message_type else {
            v.error(
                message_pointer,
                "is required with protobufSchema: the fully qualified message type, e.g. shop.Order",
            );
            return;
        };
        let name_ok = (1..=512).contains(&message_type.len())
            && message_type.trim_start_matches('.').split('.').all(|part| {
                part.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !name_ok {
            v.error(
                message_pointer,
                "must be a fully qualified message type, e.g. shop.Order",
            );
            return;
        }
        if ok {
            if let Err(e) = sluice_formats::protobuf::compile_message(files, message_type) {
                let pointer = if e.message.starts_with("no message type") {
                    message_pointer
                } else {
                    pointer
                };
                v.error(pointer, e.message);
            }
        }
    }

    fn validate_registry(
        &self,
        v: &mut Validation,
        p: &str,
        registry: &SchemaRegistry,
    ) -> Option<Pinned> {
        let pinned = match RegistryUrl::parse(&registry.url) {
            Ok(url) => Some(url.pinned),
            Err(e) => {
                v.error(format!("{p}/url"), e);
                None
            }
        };
        let cp = format!("{p}/credentials");
        match (registry.authentication, &registry.credentials) {
            (RegistryAuthentication::None, Some(_)) => {
                v.error(&cp, "must be absent with authentication NONE")
            }
            (RegistryAuthentication::None, None) => {}
            (RegistryAuthentication::Plain, None) => {
                v.error(&cp, "is required with authentication PLAIN")
            }
            (RegistryAuthentication::Plain, Some(credentials)) => {
                v.check(
                    (1..=512).contains(&credentials.username.len())
                        && !credentials.username.contains(':'),
                    format!("{cp}/username"),
                    "must be 1 to 512 bytes without `:` (HTTP basic authentication)",
                );
                v.check(
                    credentials
                        .password
                        .as_ref()
                        .is_some_and(|s| (1..=4096).contains(&s.expose().len())),
                    format!("{cp}/password"),
                    "is required (1 to 4096 bytes) with authentication PLAIN",
                );
            }
        }
        if let Some(pem) = &registry.ca_certificate {
            check_pem(v, &format!("{p}/caCertificate"), pem, "certificate");
        }
        pinned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_urls_name_the_root_and_what_they_pin() {
        let root = |s: &str| RegistryUrl::parse(s).unwrap();
        assert_eq!(
            root("https://r.example:8081/"),
            RegistryUrl {
                root: "https://r.example:8081".into(),
                pinned: Pinned::Nothing
            }
        );
        assert_eq!(
            root("https://r.example/prefix/subjects/orders-value/versions/3"),
            RegistryUrl {
                root: "https://r.example/prefix".into(),
                pinned: Pinned::Subject {
                    subject: "orders-value".into(),
                    version: Some(3)
                }
            }
        );
        assert_eq!(
            root("http://r/subjects/a%2Fb/versions/latest").pinned,
            Pinned::Subject {
                subject: "a/b".into(),
                version: None
            }
        );
        assert_eq!(root("http://r/subjects/x").root, "http://r");
        assert_eq!(root("http://r/schemas/ids/42").pinned, Pinned::Id(42));
        for bad in [
            "ftp://r/",
            "http://u:p@r/",
            "http://r/?q=1",
            "http://r/subjects/x/versions/one",
            "http://r/subjects/x/extra",
            "http://r/schemas/ids/x",
            "http://r/schemas/ids/1/2",
        ] {
            assert!(RegistryUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proto_file_names_are_relative_import_paths() {
        assert!(proto_file_name_ok("orders.proto"));
        assert!(proto_file_name_ok("shop/v1/orders.proto"));
        for bad in [
            "/etc/x.proto",
            "../x.proto",
            "a//b.proto",
            "x.txt",
            "a b.proto",
        ] {
            assert!(!proto_file_name_ok(bad), "{bad}");
        }
    }
}
