//! The resources and data sources, each over the API client and cty values.

mod destination;
mod pipe;

use std::sync::Arc;

use crate::client::{Client, ClientError};
use crate::cty::Value;
use crate::schema::Attr;

/// A diagnostic for Terraform: an error unless `warning`, attached to an
/// attribute when `path` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Diag {
    pub warning: bool,
    pub summary: String,
    pub detail: String,
    pub path: Option<Vec<String>>,
}

impl Diag {
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Diag {
            warning: false,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        }
    }

    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Diag {
            warning: true,
            ..Diag::error(summary, detail)
        }
    }

    pub fn at(mut self, path: &[&str]) -> Self {
        self.path = Some(path.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// An API failure; field errors of a 422 point at the attribute their
    /// JSON Pointer names (camelCase fields become snake_case attributes).
    pub fn api(action: &str, error: &ClientError) -> Vec<Diag> {
        match error {
            ClientError::Problem { errors, .. } if !errors.is_empty() => errors
                .iter()
                .map(|(pointer, detail)| {
                    let path: Vec<String> = pointer
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(snake)
                        .collect();
                    Diag {
                        path: (!path.is_empty()).then_some(path),
                        ..Diag::error(format!("{action}: {detail}"), error.to_string())
                    }
                })
                .collect(),
            _ => vec![Diag::error(action, error.to_string())],
        }
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub type Outcome = (Option<Value>, Vec<Diag>);

#[tonic::async_trait]
pub trait Resource: Send + Sync {
    /// Without the provider prefix: `pipe` for `sluice_pipe`.
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn attrs(&self) -> &[Attr];

    fn validate(&self, _config: &Value) -> Vec<Diag> {
        Vec::new()
    }

    /// The planned value from Terraform's proposal (which already carries
    /// prior values of computed attributes the configuration leaves out).
    fn plan(&self, _prior: &Value, proposed: Value, _config: &Value) -> Value {
        proposed
    }

    /// Attribute paths whose change replaces the object: the attributes
    /// marked `replace`, unless a resource knows more.
    fn replacements(&self, prior: &Value, planned: &Value) -> Vec<Vec<String>> {
        crate::schema::replacements(self.attrs(), prior, planned)
    }

    async fn create(&self, client: &Client, planned: &Value, config: &Value) -> Outcome;
    /// `None` when the object is gone: Terraform then plans to create it.
    async fn read(&self, client: &Client, current: &Value) -> Outcome;
    async fn update(
        &self,
        client: &Client,
        prior: &Value,
        planned: &Value,
        config: &Value,
    ) -> Outcome;
    async fn delete(&self, client: &Client, prior: &Value) -> Vec<Diag>;
    async fn import(&self, client: &Client, id: &str) -> Outcome;
}

#[tonic::async_trait]
pub trait DataSource: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn attrs(&self) -> &[Attr];
    async fn read(&self, client: &Client, config: &Value) -> Outcome;
}

pub fn all() -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(destination::DestinationResource::new()),
        Arc::new(pipe::PipeResource::new()),
    ]
}

pub fn data_sources() -> Vec<Arc<dyn DataSource>> {
    vec![
        Arc::new(pipe::PipeDataSource::new()),
        Arc::new(pipe::PipesDataSource::new()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Kind;
    use serde_json::Value as Json;

    /// The properties an OpenAPI schema allows, through `$ref`, `oneOf`,
    /// `allOf` and array items.
    fn properties<'a>(doc: &'a Json, schema: &'a Json) -> Vec<(&'a str, &'a Json)> {
        let mut found = Vec::new();
        if let Some(reference) = schema.get("$ref").and_then(Json::as_str) {
            let name = reference.trim_start_matches("#/components/schemas/");
            return properties(doc, &doc["components"]["schemas"][name]);
        }
        if let Some(items) = schema.get("items") {
            found.extend(properties(doc, items));
        }
        for key in ["oneOf", "allOf", "anyOf"] {
            for variant in schema
                .get(key)
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                found.extend(properties(doc, variant));
            }
        }
        if let Some(props) = schema.get("properties").and_then(Json::as_object) {
            found.extend(props.iter().map(|(k, v)| (k.as_str(), v)));
        }
        found
    }

    /// Attributes the user sets are checked against the request schema,
    /// computed ones against the response (`hasPassword`).
    fn check(
        doc: &Json,
        attrs: &[Attr],
        (request, response): (&Json, &Json),
        path: &str,
        missing: &mut Vec<String>,
    ) {
        for attr in attrs {
            let Some(field) = attr.api_field() else {
                continue;
            };
            let schema = if attr.presence == crate::schema::Presence::Computed {
                response
            } else {
                request
            };
            let props = properties(doc, schema);
            let Some((_, property)) = props.iter().find(|(name, _)| *name == field) else {
                missing.push(format!("{path}/{field}"));
                continue;
            };
            if let Kind::Single(nested) | Kind::List(nested) = &attr.kind {
                let inner = (*property, *property);
                check(doc, nested, inner, &format!("{path}/{field}"), missing);
            }
        }
    }

    /// Every field the provider sends or reads is in the checked-in OpenAPI
    /// document, so the provider cannot drift from the API unnoticed.
    #[test]
    fn every_api_field_is_in_the_openapi_document() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../openapi/openapi.json"
        ))
        .expect("openapi/openapi.json");
        let doc: Json = serde_json::from_str(&text).expect("the OpenAPI document is JSON");
        let mut missing = Vec::new();
        for resource in all() {
            let (request, response) = match resource.name() {
                "destination" => ("DestinationSpec", "Destination"),
                "pipe" => ("PipeSpec", "Pipe"),
                other => panic!("no OpenAPI schema named for {other}"),
            };
            let (request, response) = (json_ref(request), json_ref(response));
            check(
                &doc,
                resource.attrs(),
                (&request, &response),
                resource.name(),
                &mut missing,
            );
        }
        assert!(missing.is_empty(), "not in openapi.json: {missing:?}");
    }

    fn json_ref(name: &str) -> Json {
        serde_json::json!({"$ref": format!("#/components/schemas/{name}")})
    }

    #[test]
    fn field_errors_point_at_attributes() {
        let error = ClientError::Problem {
            status: 422,
            title: "Validation failed".into(),
            detail: "1 invalid field".into(),
            errors: vec![("/source/kafka/consumerGroup".into(), "too long".into())],
        };
        let diags = Diag::api("Creating the pipe", &error);
        assert_eq!(
            diags[0].path.as_deref(),
            Some(
                &[
                    "source".to_owned(),
                    "kafka".to_owned(),
                    "consumer_group".to_owned()
                ][..]
            )
        );
        assert_eq!(diags[0].summary, "Creating the pipe: too long");
    }
}
