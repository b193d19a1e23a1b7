//! The `kubernetes` runtime: the workers are the pods of one StatefulSet,
//! and the fleet's size is that StatefulSet's `replicas`.
//!
//! Only the scale subresource is used (`GET` and merge-`PATCH` on
//! `.../statefulsets/{name}/scale`), so the scheduler's Role can be limited
//! to `statefulsets/scale` for that one StatefulSet: it can resize the
//! fleet but not change what the workers run.
//!
//! A StatefulSet names its pods `{name}-{ordinal}` and removes the highest
//! ordinals first when it shrinks, which is the contract `FleetRuntime`
//! describes; the worker registers with its pod name as hostname
//! (`HOSTNAME` from `metadata.name` in `deploy/kubernetes/worker.yaml`).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{Api, Patch, PatchParams};

use crate::{FleetError, FleetRuntime};

/// The namespace of the StatefulSet; unset, the client's default namespace
/// (in a pod, the namespace of its service account).
pub const NAMESPACE_VAR: &str = "SLUICE_FLEET_NAMESPACE";
/// The name of the worker StatefulSet.
pub const STATEFULSET_VAR: &str = "SLUICE_FLEET_STATEFULSET";
/// The worker StatefulSet's name when `SLUICE_FLEET_STATEFULSET` is unset,
/// as in `deploy/kubernetes/worker.yaml`.
pub const DEFAULT_STATEFULSET: &str = "sluice-worker";
/// Recorded in the StatefulSet's managedFields, so `kubectl` shows who last
/// changed `replicas`.
const FIELD_MANAGER: &str = "sluice-scheduler";
/// API messages are short, but an error page from a proxy in front of the
/// API server can be a whole HTML document.
const MAX_MESSAGE_CHARS: usize = 512;

/// Scales one StatefulSet through the Kubernetes API.
pub struct KubernetesFleet {
    api: Api<StatefulSet>,
    namespace: String,
    statefulset: String,
}

impl std::fmt::Debug for KubernetesFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesFleet")
            .field("namespace", &self.namespace)
            .field("statefulset", &self.statefulset)
            .finish_non_exhaustive()
    }
}

impl KubernetesFleet {
    /// Scales StatefulSet `statefulset` in `namespace` through `client`.
    pub fn new(
        client: kube::Client,
        namespace: impl Into<String>,
        statefulset: impl Into<String>,
    ) -> Self {
        let namespace = namespace.into();
        Self {
            api: Api::namespaced(client, &namespace),
            namespace,
            statefulset: statefulset.into(),
        }
    }

    /// A client from the pod's service account (or a kubeconfig outside a
    /// cluster), scaling the StatefulSet named by `SLUICE_FLEET_NAMESPACE`
    /// and `SLUICE_FLEET_STATEFULSET`.
    pub async fn from_env() -> Result<Self, FleetError> {
        let client = kube::Client::try_default().await.map_err(|e| {
            FleetError::Config(format!(
                "no Kubernetes client configuration (a pod's service account or a kubeconfig): {}",
                error_chain(&e)
            ))
        })?;
        let (namespace, statefulset) = target_from_env(
            env(NAMESPACE_VAR),
            env(STATEFULSET_VAR),
            client.default_namespace(),
        )?;
        tracing::info!(%namespace, %statefulset, "the fleet is a Kubernetes StatefulSet");
        Ok(Self::new(client, namespace, statefulset))
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn statefulset(&self) -> &str {
        &self.statefulset
    }

    fn target(&self) -> String {
        format!("StatefulSet {}/{}", self.namespace, self.statefulset)
    }

    fn failed(&self, action: String, error: kube::Error) -> FleetError {
        classify(action, error, &self.namespace, &self.statefulset)
    }
}

#[async_trait::async_trait]
impl FleetRuntime for KubernetesFleet {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    async fn workers(&self) -> Result<u32, FleetError> {
        let action = format!("reading the replicas of {}", self.target());
        let scale = self
            .api
            .get_scale(&self.statefulset)
            .await
            .map_err(|e| self.failed(action.clone(), e))?;
        spec_replicas(&scale).map_err(|replicas| FleetError::Refused {
            action,
            message: format!("the scale subresource reports {replicas} replicas"),
        })
    }

    fn hostname(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.statefulset)
    }

    async fn scale(&self, workers: u32) -> Result<(), FleetError> {
        let replicas = i32::try_from(workers).map_err(|_| {
            FleetError::Config(format!(
                "{workers} workers is more than a StatefulSet can hold"
            ))
        })?;
        let action = format!("scaling {} to {workers} replicas", self.target());
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let scale = self
            .api
            .patch_scale(
                &self.statefulset,
                &params,
                &Patch::Merge(scale_patch(replicas)),
            )
            .await
            .map_err(|e| self.failed(action, e))?;
        tracing::debug!(
            namespace = %self.namespace,
            statefulset = %self.statefulset,
            replicas = ?scale.spec.and_then(|s| s.replicas),
            "patched the StatefulSet's scale"
        );
        Ok(())
    }
}

/// Like `sluice_runtime::env` (not a dependency here): a variable set to
/// the empty string, as a manifest with `value: ""` does, counts as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The namespace and StatefulSet name from the two variables' values, with
/// their defaults. Checking the names here turns a typo into an error that
/// names the variable, not a 404 or a malformed request path later.
pub fn target_from_env(
    namespace: Option<String>,
    statefulset: Option<String>,
    default_namespace: &str,
) -> Result<(String, String), FleetError> {
    let namespace = namespace.unwrap_or_else(|| default_namespace.to_owned());
    let statefulset = statefulset.unwrap_or_else(|| DEFAULT_STATEFULSET.to_owned());
    check_name(NAMESPACE_VAR, &namespace, 63)?;
    // Pod names, and so the workers' hostnames, are `{statefulset}-{ordinal}`,
    // which must also fit a DNS label.
    check_name(STATEFULSET_VAR, &statefulset, 63)?;
    Ok((namespace, statefulset))
}

/// A DNS-1123 label, as Kubernetes requires of namespaces and of the
/// StatefulSet names whose pods get hostnames.
fn check_name(var: &str, name: &str, max_len: usize) -> Result<(), FleetError> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let alnum_ends = !name.starts_with('-') && !name.ends_with('-');
    if name.is_empty() || name.len() > max_len || !valid_chars || !alnum_ends {
        return Err(FleetError::Config(format!(
            "{var}={name:?} is not a Kubernetes name (1 to {max_len} lowercase letters, digits and '-', \
             starting and ending with a letter or digit)"
        )));
    }
    Ok(())
}

/// The replicas a Scale asks for. autoscaling/v1 omits `spec.replicas`
/// when it is 0, so a missing value is 0; a negative one (which API
/// validation should make impossible) comes back as the error.
pub fn spec_replicas(scale: &Scale) -> Result<u32, i32> {
    let replicas = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    u32::try_from(replicas).map_err(|_| replicas)
}

/// The JSON merge patch that sets the replicas and leaves the rest alone.
pub fn scale_patch(replicas: i32) -> serde_json::Value {
    serde_json::json!({ "spec": { "replicas": replicas } })
}

/// An API answer with a Status is a refusal (what the server said, plus
/// what the operator likely has to fix); anything else is a failure to
/// talk to the server at all.
pub fn classify(
    action: String,
    error: kube::Error,
    namespace: &str,
    statefulset: &str,
) -> FleetError {
    match error {
        kube::Error::Api(status) => FleetError::Refused {
            action,
            message: describe_refusal(
                status.code,
                &status.reason,
                &status.message,
                namespace,
                statefulset,
            ),
        },
        other => FleetError::Unreachable {
            action,
            message: error_chain(&other),
        },
    }
}

/// `403 Forbidden: <the server's message> (<hint>)`.
pub fn describe_refusal(
    code: u16,
    reason: &str,
    message: &str,
    namespace: &str,
    statefulset: &str,
) -> String {
    let mut out = String::new();
    if code != 0 {
        out.push_str(&code.to_string());
    }
    if !reason.is_empty() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(reason);
    }
    let message = truncate(message.trim(), MAX_MESSAGE_CHARS);
    if !message.is_empty() {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&message);
    }
    let hint = match code {
        401 => Some("the API server did not accept the pod's service account token".to_owned()),
        403 => Some(format!(
            "the scheduler's service account needs get and patch on statefulsets/scale \
             for {statefulset} in namespace {namespace}: see the Role in \
             deploy/kubernetes/scheduler.yaml"
        )),
        404 => Some(format!(
            "there is no StatefulSet {statefulset} in namespace {namespace}: check \
             {STATEFULSET_VAR} and {NAMESPACE_VAR}"
        )),
        _ => None,
    };
    if let Some(hint) = hint {
        out.push_str(" (");
        out.push_str(&hint);
        out.push(')');
    }
    out
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// An error with its sources, since kube's errors often say only "service
/// error" on top and keep the cause (DNS, TLS, refused connection) below.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::autoscaling::v1::ScaleSpec;

    fn scale_with(replicas: Option<i32>) -> Scale {
        Scale {
            spec: Some(ScaleSpec { replicas }),
            ..Scale::default()
        }
    }

    #[test]
    fn spec_replicas_reads_the_spec_and_treats_omitted_as_zero() {
        assert_eq!(spec_replicas(&scale_with(Some(3))), Ok(3));
        assert_eq!(spec_replicas(&scale_with(None)), Ok(0));
        assert_eq!(spec_replicas(&Scale::default()), Ok(0));
        assert_eq!(spec_replicas(&scale_with(Some(-1))), Err(-1));
    }

    #[test]
    fn scale_patch_sets_only_the_replicas() {
        assert_eq!(
            scale_patch(4).to_string(),
            r#"{"spec":{"replicas":4}}"#.to_owned()
        );
    }

    #[test]
    fn target_defaults_to_the_client_namespace_and_sluice_worker() {
        let (ns, sts) = target_from_env(None, None, "sluice").expect("defaults are valid");
        assert_eq!((ns.as_str(), sts.as_str()), ("sluice", "sluice-worker"));
        let (ns, sts) = target_from_env(Some("ingest".into()), Some("workers".into()), "sluice")
            .expect("explicit names are valid");
        assert_eq!((ns.as_str(), sts.as_str()), ("ingest", "workers"));
    }

    #[test]
    fn target_rejects_names_kubernetes_would_not_accept() {
        for bad in [
            "Sluice-Worker",
            "sluice_worker",
            "-worker",
            "worker-",
            "a/b",
            "",
        ] {
            let err = target_from_env(None, Some(bad.to_owned()), "sluice")
                .expect_err("an invalid name is rejected");
            let text = err.to_string();
            assert!(text.contains(STATEFULSET_VAR), "{text}");
            assert!(matches!(err, FleetError::Config(_)));
        }
        let long = "w".repeat(64);
        assert!(target_from_env(Some(long), None, "sluice").is_err());
    }

    #[test]
    fn refusals_carry_code_reason_message_and_a_hint() {
        let forbidden = describe_refusal(
            403,
            "Forbidden",
            "statefulsets.apps \"sluice-worker\" is forbidden",
            "sluice",
            "sluice-worker",
        );
        assert!(
            forbidden
                .starts_with("403 Forbidden: statefulsets.apps \"sluice-worker\" is forbidden ("),
            "{forbidden}"
        );
        assert!(forbidden.contains("statefulsets/scale"), "{forbidden}");

        let missing = describe_refusal(404, "NotFound", "not found", "sluice", "sluice-workers");
        assert!(
            missing.contains("no StatefulSet sluice-workers in namespace sluice"),
            "{missing}"
        );

        assert_eq!(
            describe_refusal(422, "Invalid", "bad", "sluice", "w"),
            "422 Invalid: bad"
        );
        assert_eq!(describe_refusal(0, "", "", "sluice", "w"), "");
    }

    #[test]
    fn long_error_pages_are_cut() {
        let page = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let text = describe_refusal(502, "", &page, "sluice", "w");
        assert_eq!(text.chars().count(), "502: ".len() + MAX_MESSAGE_CHARS + 1);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn error_chain_adds_causes_not_already_shown() {
        #[derive(Debug, thiserror::Error)]
        #[error("service error")]
        struct Outer(#[source] std::io::Error);
        let inner =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(
            error_chain(&Outer(inner)),
            "service error: connection refused"
        );

        #[derive(Debug, thiserror::Error)]
        #[error("service error: {0}")]
        struct Repeats(#[source] std::io::Error);
        let inner = std::io::Error::other("tls handshake eof");
        assert_eq!(
            error_chain(&Repeats(inner)),
            "service error: tls handshake eof"
        );
    }
}
