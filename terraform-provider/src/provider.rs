//! The tfplugin6 `Provider` service: decodes Terraform's requests, hands
//! them to the resource they name, encodes the answers. Resources work on
//! cty values and the API client; everything protocol-shaped stays here.

// tonic::Status is the error type of every RPC the generated trait
// declares; the helpers here return it too.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use magma_protocol::tfplugin6 as tf;
use tokio::sync::{watch, RwLock};
use tonic::{Request, Response, Status};

use crate::client::Client;
use crate::cty::{self, Type, Value};
use crate::resources::{self, Diag, Resource};
use crate::schema::{self, Attr, Presence};

pub const PROVIDER_NAME: &str = "sluice";

fn provider_attrs() -> Vec<Attr> {
    vec![
        Attr::string(
            "endpoint",
            Presence::Optional,
            "The Sluice API, e.g. `https://sluice.example.com`. Default: `SLUICE_ENDPOINT`.",
        ),
        Attr::string(
            "api_key_id",
            Presence::Optional,
            "The API key's id (`sk…`). Default: `SLUICE_API_KEY_ID`.",
        ),
        Attr {
            sensitive: true,
            ..Attr::string(
                "api_key_secret",
                Presence::Optional,
                "The API key's secret. Default: `SLUICE_API_KEY_SECRET`.",
            )
        },
    ]
}

pub struct SluiceProvider {
    resources: HashMap<String, Arc<dyn Resource>>,
    data_sources: HashMap<String, Arc<dyn resources::DataSource>>,
    client: RwLock<Option<Client>>,
    stop: Arc<watch::Sender<bool>>,
}

impl Default for SluiceProvider {
    fn default() -> Self {
        let resources = resources::all()
            .into_iter()
            .map(|r| (format!("{PROVIDER_NAME}_{}", r.name()), r))
            .collect();
        let data_sources = resources::data_sources()
            .into_iter()
            .map(|d| (format!("{PROVIDER_NAME}_{}", d.name()), d))
            .collect();
        SluiceProvider {
            resources,
            data_sources,
            client: RwLock::new(None),
            stop: Arc::new(watch::channel(false).0),
        }
    }
}

impl SluiceProvider {
    /// Resolves when Terraform asks the provider to stop.
    pub fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopped = self.stop.subscribe();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    }

    /// For go-plugin's controller: its Shutdown stops the server too.
    pub fn stopper(&self) -> Arc<watch::Sender<bool>> {
        self.stop.clone()
    }

    fn resource(&self, name: &str) -> Result<Arc<dyn Resource>, Status> {
        self.resources
            .get(name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no resource type {name} in this provider")))
    }

    async fn client(&self) -> Result<Client, Vec<tf::Diagnostic>> {
        self.client.read().await.clone().ok_or_else(|| {
            vec![diagnostic(&Diag::error(
                "The provider is not configured",
                "Terraform did not configure the sluice provider before using it.",
            ))]
        })
    }
}

pub fn diagnostic(diag: &Diag) -> tf::Diagnostic {
    tf::Diagnostic {
        severity: if diag.warning {
            tf::diagnostic::Severity::Warning
        } else {
            tf::diagnostic::Severity::Error
        } as i32,
        summary: diag.summary.clone(),
        detail: diag.detail.clone(),
        attribute: diag.path.as_ref().map(|path| attribute_path(path)),
    }
}

fn attribute_path(path: &[String]) -> tf::AttributePath {
    tf::AttributePath {
        steps: path
            .iter()
            .map(|step| tf::attribute_path::Step {
                selector: Some(match step.parse::<i64>() {
                    Ok(index) => tf::attribute_path::step::Selector::ElementKeyInt(index),
                    Err(_) => tf::attribute_path::step::Selector::AttributeName(step.clone()),
                }),
            })
            .collect(),
    }
}

fn diagnostics(diags: &[Diag]) -> Vec<tf::Diagnostic> {
    diags.iter().map(diagnostic).collect()
}

/// Decodes a request value; an absent one is null (no prior state on
/// create, no planned state on destroy).
fn decode(value: Option<&tf::DynamicValue>, ty: &Type) -> Result<Value, Status> {
    match value {
        None => Ok(Value::Null),
        Some(v) if !v.msgpack.is_empty() => cty::decode(&v.msgpack, ty)
            .map_err(|e| Status::invalid_argument(format!("a value Terraform sent: {e}"))),
        Some(v) if !v.json.is_empty() => {
            let json: serde_json::Value = serde_json::from_slice(&v.json).map_err(|e| {
                Status::invalid_argument(format!("a JSON value Terraform sent: {e}"))
            })?;
            cty::from_json(&json, ty)
                .map_err(|e| Status::invalid_argument(format!("a value Terraform sent: {e}")))
        }
        Some(_) => Ok(Value::Null),
    }
}

fn encode(value: &Value, ty: &Type) -> Result<tf::DynamicValue, Status> {
    Ok(tf::DynamicValue {
        msgpack: cty::encode(value, ty)
            .map_err(|e| Status::internal(format!("encoding a value for Terraform: {e}")))?,
        json: Vec::new(),
    })
}

fn config_string(config: &Value, attr: &str, env: &str) -> Option<String> {
    config
        .get(attr)
        .as_str()
        .map(str::to_owned)
        .or_else(|| std::env::var(env).ok())
        .filter(|v| !v.trim().is_empty())
}

/// The RPCs this provider has no use for (state stores, actions, list
/// resources, functions, ephemeral resources, identities). Spelled out as
/// `async_trait` expands methods, because the attribute does not see into
/// macro output.
macro_rules! unimplemented_rpcs {
    ($($method:ident: $module:ident),* $(,)?) => {
        $(
            fn $method<'life0, 'async_trait>(
                &'life0 self,
                _: Request<tf::$module::Request>,
            ) -> std::pin::Pin<
                Box<
                    dyn std::future::Future<
                            Output = Result<Response<tf::$module::Response>, Status>,
                        > + Send
                        + 'async_trait,
                >,
            >
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                Box::pin(async {
                    Err(Status::unimplemented(concat!(
                        stringify!($method),
                        " is not supported by the sluice provider"
                    )))
                })
            }
        )*
    };
}

type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl tf::provider_server::Provider for SluiceProvider {
    async fn get_metadata(
        &self,
        _: Request<tf::get_metadata::Request>,
    ) -> Result<Response<tf::get_metadata::Response>, Status> {
        Ok(Response::new(tf::get_metadata::Response {
            server_capabilities: Some(tf::ServerCapabilities {
                plan_destroy: false,
                get_provider_schema_optional: false,
                ..Default::default()
            }),
            resources: self
                .resources
                .keys()
                .map(|name| tf::get_metadata::ResourceMetadata {
                    type_name: name.clone(),
                })
                .collect(),
            data_sources: self
                .data_sources
                .keys()
                .map(|name| tf::get_metadata::DataSourceMetadata {
                    type_name: name.clone(),
                })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<tf::get_provider_schema::Request>,
    ) -> Result<Response<tf::get_provider_schema::Response>, Status> {
        Ok(Response::new(tf::get_provider_schema::Response {
            provider: Some(schema::tf_schema(
                &provider_attrs(),
                "Sluice: Kafka and Kinesis pipes into ClickHouse.",
            )),
            resource_schemas: self
                .resources
                .iter()
                .map(|(name, r)| (name.clone(), schema::tf_schema(r.attrs(), r.description())))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(name, d)| (name.clone(), schema::tf_schema(d.attrs(), d.description())))
                .collect(),
            server_capabilities: Some(tf::ServerCapabilities::default()),
            ..Default::default()
        }))
    }

    async fn validate_provider_config(
        &self,
        _: Request<tf::validate_provider_config::Request>,
    ) -> Result<Response<tf::validate_provider_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn validate_resource_config(
        &self,
        request: Request<tf::validate_resource_config::Request>,
    ) -> Result<Response<tf::validate_resource_config::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let config = decode(
            request.config.as_ref(),
            &schema::object_type(resource.attrs()),
        )?;
        Ok(Response::new(tf::validate_resource_config::Response {
            diagnostics: diagnostics(&resource.validate(&config)),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        _: Request<tf::validate_data_resource_config::Request>,
    ) -> Result<Response<tf::validate_data_resource_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<tf::upgrade_resource_state::Request>,
    ) -> Result<Response<tf::upgrade_resource_state::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let ty = schema::object_type(resource.attrs());
        let json = request
            .raw_state
            .map(|raw| raw.json)
            .filter(|json| !json.is_empty())
            .ok_or_else(|| Status::invalid_argument("the stored state has no JSON form"))?;
        let json: serde_json::Value = serde_json::from_slice(&json)
            .map_err(|e| Status::invalid_argument(format!("the stored state: {e}")))?;
        // Schema version 0 is the only one so far: the stored JSON is
        // already in the current shape (attributes added since read as null).
        let value = cty::from_json(&json, &ty)
            .map_err(|e| Status::invalid_argument(format!("the stored state: {e}")))?;
        Ok(Response::new(tf::upgrade_resource_state::Response {
            upgraded_state: Some(encode(&value, &ty)?),
            diagnostics: Vec::new(),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<tf::configure_provider::Request>,
    ) -> Result<Response<tf::configure_provider::Response>, Status> {
        let request = request.into_inner();
        let config = decode(
            request.config.as_ref(),
            &schema::object_type(&provider_attrs()),
        )?;
        let endpoint = config_string(&config, "endpoint", "SLUICE_ENDPOINT");
        let key_id = config_string(&config, "api_key_id", "SLUICE_API_KEY_ID");
        let secret = config_string(&config, "api_key_secret", "SLUICE_API_KEY_SECRET");
        let mut diags = Vec::new();
        for (value, attr, env) in [
            (&endpoint, "endpoint", "SLUICE_ENDPOINT"),
            (&key_id, "api_key_id", "SLUICE_API_KEY_ID"),
            (&secret, "api_key_secret", "SLUICE_API_KEY_SECRET"),
        ] {
            if value.is_none() {
                diags.push(
                    Diag::error(
                        format!("Missing {attr}"),
                        format!(
                            "Set `{attr}` in the provider block or the {env} environment variable."
                        ),
                    )
                    .at(&[attr]),
                );
            }
        }
        if let (Some(endpoint), Some(key_id), Some(secret)) = (endpoint, key_id, secret) {
            match Client::new(&endpoint, &key_id, &secret) {
                Ok(client) => *self.client.write().await = Some(client),
                Err(e) => diags.push(Diag::error("Cannot set up the API client", e.to_string())),
            }
        }
        Ok(Response::new(tf::configure_provider::Response {
            diagnostics: diagnostics(&diags),
        }))
    }

    async fn read_resource(
        &self,
        request: Request<tf::read_resource::Request>,
    ) -> Result<Response<tf::read_resource::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let ty = schema::object_type(resource.attrs());
        let current = decode(request.current_state.as_ref(), &ty)?;
        let client = match self.client().await {
            Ok(client) => client,
            Err(diagnostics) => {
                return Ok(Response::new(tf::read_resource::Response {
                    diagnostics,
                    ..Default::default()
                }))
            }
        };
        let (state, diags) = resource.read(&client, &current).await;
        Ok(Response::new(tf::read_resource::Response {
            new_state: Some(encode(&state.unwrap_or(Value::Null), &ty)?),
            diagnostics: diagnostics(&diags),
            private: request.private,
            ..Default::default()
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<tf::plan_resource_change::Request>,
    ) -> Result<Response<tf::plan_resource_change::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let attrs = resource.attrs();
        let ty = schema::object_type(attrs);
        let prior = decode(request.prior_state.as_ref(), &ty)?;
        let proposed = decode(request.proposed_new_state.as_ref(), &ty)?;
        let config = decode(request.config.as_ref(), &ty)?;
        if proposed.is_null() {
            // Destroy: nothing to decide.
            return Ok(Response::new(tf::plan_resource_change::Response {
                planned_state: Some(encode(&Value::Null, &ty)?),
                planned_private: request.prior_private,
                ..Default::default()
            }));
        }
        // Write-only values are in the proposal but never in a plan; leaving
        // them out first keeps them from reading as a change.
        let proposed = schema::without_write_only(attrs, &proposed);
        let planned = resource.plan(&prior, proposed, &config);
        let planned = schema::unknown_computed(attrs, &planned);
        let requires_replace = if prior.is_null() {
            Vec::new()
        } else {
            resource
                .replacements(&prior, &planned)
                .iter()
                .map(|p| attribute_path(p))
                .collect()
        };
        Ok(Response::new(tf::plan_resource_change::Response {
            planned_state: Some(encode(&planned, &ty)?),
            requires_replace,
            planned_private: request.prior_private,
            ..Default::default()
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<tf::apply_resource_change::Request>,
    ) -> Result<Response<tf::apply_resource_change::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let ty = schema::object_type(resource.attrs());
        let prior = decode(request.prior_state.as_ref(), &ty)?;
        let planned = decode(request.planned_state.as_ref(), &ty)?;
        let config = decode(request.config.as_ref(), &ty)?;
        let client = match self.client().await {
            Ok(client) => client,
            Err(diagnostics) => {
                return Ok(Response::new(tf::apply_resource_change::Response {
                    new_state: request.prior_state,
                    diagnostics,
                    ..Default::default()
                }))
            }
        };
        let (state, diags) = if planned.is_null() {
            let diags = resource.delete(&client, &prior).await;
            // A failed delete keeps the resource in state.
            let kept = diags.iter().any(|d| !d.warning).then_some(prior);
            (kept, diags)
        } else if prior.is_null() {
            resource.create(&client, &planned, &config).await
        } else {
            resource.update(&client, &prior, &planned, &config).await
        };
        Ok(Response::new(tf::apply_resource_change::Response {
            new_state: Some(encode(&state.unwrap_or(Value::Null), &ty)?),
            private: request.planned_private,
            diagnostics: diagnostics(&diags),
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<tf::import_resource_state::Request>,
    ) -> Result<Response<tf::import_resource_state::Response>, Status> {
        let request = request.into_inner();
        let resource = self.resource(&request.type_name)?;
        let ty = schema::object_type(resource.attrs());
        let client = match self.client().await {
            Ok(client) => client,
            Err(diagnostics) => {
                return Ok(Response::new(tf::import_resource_state::Response {
                    diagnostics,
                    ..Default::default()
                }))
            }
        };
        let (state, mut diags) = resource.import(&client, &request.id).await;
        let imported_resources = match state {
            Some(state) => vec![tf::import_resource_state::ImportedResource {
                type_name: request.type_name.clone(),
                state: Some(encode(&state, &ty)?),
                ..Default::default()
            }],
            None => {
                if diags.is_empty() {
                    diags.push(Diag::error(
                        "Cannot import a resource that does not exist",
                        format!("No {} with id {:?}.", request.type_name, request.id),
                    ));
                }
                Vec::new()
            }
        };
        Ok(Response::new(tf::import_resource_state::Response {
            imported_resources,
            diagnostics: diagnostics(&diags),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<tf::read_data_source::Request>,
    ) -> Result<Response<tf::read_data_source::Response>, Status> {
        let request = request.into_inner();
        let source = self
            .data_sources
            .get(&request.type_name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no data source {}", request.type_name)))?;
        let ty = schema::object_type(source.attrs());
        let config = decode(request.config.as_ref(), &ty)?;
        let client = match self.client().await {
            Ok(client) => client,
            Err(diagnostics) => {
                return Ok(Response::new(tf::read_data_source::Response {
                    diagnostics,
                    ..Default::default()
                }))
            }
        };
        let (state, diags) = source.read(&client, &config).await;
        Ok(Response::new(tf::read_data_source::Response {
            state: Some(encode(&state.unwrap_or(Value::Null), &ty)?),
            diagnostics: diagnostics(&diags),
            ..Default::default()
        }))
    }

    async fn stop_provider(
        &self,
        _: Request<tf::stop_provider::Request>,
    ) -> Result<Response<tf::stop_provider::Response>, Status> {
        let _ = self.stop.send(true);
        Ok(Response::new(Default::default()))
    }

    unimplemented_rpcs!(
        get_resource_identity_schemas: get_resource_identity_schemas,
        upgrade_resource_identity: upgrade_resource_identity,
        move_resource_state: move_resource_state,
        generate_resource_config: generate_resource_config,
        validate_ephemeral_resource_config: validate_ephemeral_resource_config,
        open_ephemeral_resource: open_ephemeral_resource,
        renew_ephemeral_resource: renew_ephemeral_resource,
        close_ephemeral_resource: close_ephemeral_resource,
        validate_list_resource_config: validate_list_resource_config,
        get_functions: get_functions,
        call_function: call_function,
        validate_state_store_config: validate_state_store,
        configure_state_store: configure_state_store,
        lock_state: lock_state,
        unlock_state: unlock_state,
        get_states: get_states,
        delete_state: delete_state,
        plan_action: plan_action,
        validate_action_config: validate_action_config,
    );

    type ListResourceStream = Stream<tf::list_resource::Event>;
    async fn list_resource(
        &self,
        _: Request<tf::list_resource::Request>,
    ) -> Result<Response<Self::ListResourceStream>, Status> {
        Err(Status::unimplemented("list resources are not supported"))
    }

    type ReadStateBytesStream = Stream<tf::read_state_bytes::Response>;
    async fn read_state_bytes(
        &self,
        _: Request<tf::read_state_bytes::Request>,
    ) -> Result<Response<Self::ReadStateBytesStream>, Status> {
        Err(Status::unimplemented("state stores are not supported"))
    }

    async fn write_state_bytes(
        &self,
        _: Request<tonic::Streaming<tf::write_state_bytes::RequestChunk>>,
    ) -> Result<Response<tf::write_state_bytes::Response>, Status> {
        Err(Status::unimplemented("state stores are not supported"))
    }

    type InvokeActionStream = Stream<tf::invoke_action::Event>;
    async fn invoke_action(
        &self,
        _: Request<tf::invoke_action::Request>,
    ) -> Result<Response<Self::InvokeActionStream>, Status> {
        Err(Status::unimplemented("actions are not supported"))
    }
}
