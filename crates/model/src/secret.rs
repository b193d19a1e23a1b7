use std::fmt;

use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// A write-only value: a password, a private key, a secret access key.
///
/// It can be deserialized from a request but deliberately implements neither
/// `Serialize` nor a revealing `Debug`, so it cannot end up in a response, a
/// stored JSON document or a log line by accident. The store encrypts it
/// separately (see `sluice-store`'s secret bag).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The only way to read the value; grep for it when auditing secret use.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl PartialSchema for Secret {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .write_only(Some(true))
            .description(Some(
                "Write-only: stored encrypted and never returned by any endpoint.",
            ))
            .into()
    }
}

impl ToSchema for Secret {}
