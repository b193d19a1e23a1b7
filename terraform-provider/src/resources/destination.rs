//! `sluice_destination`: a ClickHouse endpoint pipes write to.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{Diag, Outcome, Resource};
use crate::client::Client;
use crate::cty::Value;
use crate::schema::{from_api, to_api, Attr, Presence};

pub struct DestinationResource {
    attrs: Vec<Attr>,
}

impl DestinationResource {
    pub fn new() -> Self {
        DestinationResource {
            attrs: vec![
                Attr::string("id", Presence::Computed, "The destination's id.").local(),
                Attr::string("name", Presence::Required, "A display name."),
                Attr::string(
                    "url",
                    Presence::Required,
                    "ClickHouse's HTTP(S) interface, e.g. `https://abc.clickhouse.cloud:8443`.",
                ),
                Attr::string(
                    "username",
                    Presence::OptionalComputed,
                    "Default: `default`.",
                ),
                Attr::string(
                    "password_wo",
                    Presence::Optional,
                    "The password. Write-only: sent to Sluice, never kept in the state. Sent again when `password_wo_version`, `url` or `username` changes (Sluice only sends a stored password to the server and user it was given for).",
                )
                .api("password")
                .secret(),
                Attr::number(
                    "password_wo_version",
                    Presence::Optional,
                    "Change it to send `password_wo` again (rotation).",
                )
                .local(),
                Attr::string(
                    "database",
                    Presence::OptionalComputed,
                    "The database pipes write to when they name none. Default: `default`.",
                ),
                Attr::string(
                    "ca_certificate",
                    Presence::Optional,
                    "PEM bundle trusted for the server's certificate (private CAs).",
                ),
                Attr::bool(
                    "has_password",
                    Presence::Computed,
                    "Whether Sluice holds a password for it.",
                ),
            ],
        }
    }

    fn state(&self, json: &Json, kept: &Value) -> Value {
        let id = json.get("id").and_then(Json::as_str).unwrap_or_default();
        let locals = BTreeMap::from([
            ("id", Value::string(id)),
            (
                "password_wo_version",
                kept.get("password_wo_version").clone(),
            ),
        ]);
        from_api(&self.attrs, json, &locals)
    }
}

fn path(id: &str) -> String {
    format!("/v1/destinations/{id}")
}

#[tonic::async_trait]
impl Resource for DestinationResource {
    fn name(&self) -> &'static str {
        "destination"
    }

    fn description(&self) -> &'static str {
        "A ClickHouse endpoint that pipes write to."
    }

    fn attrs(&self) -> &[Attr] {
        &self.attrs
    }

    async fn create(&self, client: &Client, planned: &Value, config: &Value) -> Outcome {
        let body = to_api(&self.attrs, planned, config, true);
        match client.post("/v1/destinations", &body).await {
            Ok(json) => (Some(self.state(&json, planned)), Vec::new()),
            Err(e) => (None, Diag::api("Creating the destination failed", &e)),
        }
    }

    async fn read(&self, client: &Client, current: &Value) -> Outcome {
        let id = current.get("id").as_str().unwrap_or_default();
        match client.get(&path(id)).await {
            Ok(Some(json)) => (Some(self.state(&json, current)), Vec::new()),
            Ok(None) => (None, Vec::new()),
            Err(e) => (
                Some(current.clone()),
                Diag::api("Reading the destination failed", &e),
            ),
        }
    }

    async fn update(
        &self,
        client: &Client,
        prior: &Value,
        planned: &Value,
        config: &Value,
    ) -> Outcome {
        let id = prior.get("id").as_str().unwrap_or_default();
        // The API refuses to move a stored password to another server or
        // user without it (422 secret-required), so such a change sends it.
        let rotate = prior.get("password_wo_version") != planned.get("password_wo_version")
            || prior.get("url") != planned.get("url")
            || prior.get("username") != planned.get("username");
        let mut body = to_api(&self.attrs, planned, config, rotate);
        // A merge patch: an attribute removed from the configuration is sent
        // as null, which resets it.
        if let Json::Object(fields) = &mut body {
            if planned.get("ca_certificate").is_null() {
                fields.insert("caCertificate".into(), Json::Null);
            }
        }
        match client.merge_patch(&path(id), &body).await {
            Ok(json) => (Some(self.state(&json, planned)), Vec::new()),
            Err(e) => (
                Some(prior.clone()),
                Diag::api("Updating the destination failed", &e),
            ),
        }
    }

    async fn delete(&self, client: &Client, prior: &Value) -> Vec<Diag> {
        let id = prior.get("id").as_str().unwrap_or_default();
        match client.delete(&path(id)).await {
            Ok(_) => Vec::new(),
            Err(e) => Diag::api("Deleting the destination failed", &e),
        }
    }

    async fn import(&self, client: &Client, id: &str) -> Outcome {
        match client.get(&path(id)).await {
            Ok(Some(json)) => (Some(self.state(&json, &Value::Null)), Vec::new()),
            Ok(None) => (None, Vec::new()),
            Err(e) => (None, Diag::api("Importing the destination failed", &e)),
        }
    }
}
