use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::secret::Secret;
use crate::spec::check_http_url;
use crate::validate::{check_display_name, check_identifier, check_pem, FieldError, Validation};

/// A ClickHouse endpoint that pipes write to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationSpec {
    #[schema(example = "analytics")]
    pub name: String,
    /// The HTTP(S) interface, e.g. `https://abc.eu-west-1.aws.clickhouse.cloud:8443`.
    #[schema(example = "http://127.0.0.1:8123")]
    pub url: String,
    #[serde(default = "default_name")]
    #[schema(default = "default")]
    pub username: String,
    #[serde(
        default,
        skip_serializing_if = "crate::secret::never_written",
        serialize_with = "crate::secret::refuse_to_write"
    )]
    pub password: Option<Secret>,
    /// Database used when a pipe names none.
    #[serde(default = "default_name")]
    #[schema(default = "default")]
    pub database: String,
    /// PEM bundle trusted for the server's certificate, for private CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
}

fn default_name() -> String {
    "default".to_owned()
}

/// Body of `PATCH /v1/destinations/{id}`: a JSON merge patch (RFC 7396) of
/// the destination; absent fields keep their value, and the password is kept
/// unless a new one is sent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub database: Option<String>,
    pub ca_certificate: Option<String>,
}

impl DestinationSpec {
    pub fn secret_slots(&mut self) -> Vec<crate::spec::SecretSlot<'_>> {
        vec![("password", &mut self.password)]
    }

    /// Where the password goes and whose it is: changing either needs the
    /// password again (`crate::secret::secrets_to_resend`).
    pub fn secret_binding(&self) -> crate::secret::Binding {
        vec![
            ("url", Some(self.url.clone()), ""),
            ("username", Some(self.username.clone()), ""),
        ]
    }

    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Validation::new();
        check_display_name(&mut v, "/name", &self.name);
        check_http_url(&mut v, "/url", &self.url);
        v.check(
            !self.username.is_empty()
                && self.username.len() <= 256
                && !self.username.chars().any(char::is_control),
            "/username",
            "must be 1 to 256 bytes without control characters",
        );
        if let Some(password) = &self.password {
            v.check(
                password.expose().len() <= 4096,
                "/password",
                "must be at most 4096 bytes",
            );
        }
        check_identifier(&mut v, "/database", &self.database, false);
        if let Some(pem) = &self.ca_certificate {
            check_pem(&mut v, "/caCertificate", pem, "certificate");
        }
        v.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_write_only_password() {
        let spec: DestinationSpec = serde_json::from_str(
            r#"{"name":"ch","url":"http://127.0.0.1:8123","password":"pa55-secret"}"#,
        )
        .unwrap();
        assert_eq!(spec.username, "default");
        assert_eq!(spec.database, "default");
        assert_eq!(spec.validate(), Ok(()));
        let out = serde_json::to_string(&spec).unwrap();
        assert!(!out.contains("pa55-secret"));
        assert!(!out.contains("password"));
    }

    #[test]
    fn bad_values_are_reported() {
        let spec: DestinationSpec = serde_json::from_str(
            r#"{"name":"ch;","url":"gopher://x","database":"a-b","caCertificate":"nope"}"#,
        )
        .unwrap();
        let pointers: Vec<_> = spec
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.pointer)
            .collect();
        assert_eq!(pointers, ["/name", "/url", "/database", "/caCertificate"]);
    }
}
