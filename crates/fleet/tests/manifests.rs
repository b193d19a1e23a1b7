//! What the `kubernetes` runtime assumes of `deploy/kubernetes/*.yaml`:
//! the scheduler may scale the StatefulSet it is told to scale, that
//! StatefulSet's pods register under the hostnames `KubernetesFleet`
//! predicts, and they advertise the worker size the scheduler plans with.
//! Every manifest is also read into its k8s-openapi type, which catches a
//! misplaced or mistyped field the way the API server would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, Namespace, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::serde::de::{Deserialize, DeserializeOwned};
use k8s_openapi::Resource;
use sluice_fleet::kubernetes::{DEFAULT_STATEFULSET, NAMESPACE_VAR, STATEFULSET_VAR};

const NAMESPACE: &str = "sluice";

fn manifest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// Every YAML document of every `*.yaml` file, with the file it came from.
fn documents() -> Vec<(String, serde_yaml::Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifest_dir())
        .expect("deploy/kubernetes exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/kubernetes");
    let mut docs = Vec::new();
    for path in files {
        let file = path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("the manifest is readable");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{file} is not valid YAML: {e}"));
            if !value.is_null() {
                docs.push((file.clone(), value));
            }
        }
    }
    docs
}

fn kind_of(doc: &serde_yaml::Value) -> &str {
    doc.get("kind").and_then(|k| k.as_str()).unwrap_or("")
}

fn name_of(doc: &serde_yaml::Value) -> &str {
    doc.get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("")
}

/// Every object of type `T` in the manifests (the Secret example included).
fn all<T: Resource + DeserializeOwned>() -> Vec<T> {
    documents()
        .into_iter()
        .filter(|(_, doc)| kind_of(doc) == T::KIND)
        .map(|(file, doc)| {
            serde_yaml::from_value(doc)
                .unwrap_or_else(|e| panic!("a {} in {file} does not parse: {e}", T::KIND))
        })
        .collect()
}

/// The one object of type `T` named `name`.
fn named<
    T: Resource
        + DeserializeOwned
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
>(
    name: &str,
) -> T {
    let mut found: Vec<T> = all::<T>()
        .into_iter()
        .filter(|o| o.metadata().name.as_deref() == Some(name))
        .collect();
    assert_eq!(found.len(), 1, "expected one {} named {name}", T::KIND);
    found.remove(0)
}

fn pod_spec_of_deployment(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("the Deployment has a pod spec")
}

fn pod_spec_of_statefulset(statefulset: &StatefulSet) -> &PodSpec {
    statefulset
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("the StatefulSet has a pod spec")
}

fn container<'a>(pod: &'a PodSpec, name: &str) -> &'a Container {
    pod.containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn env_var<'a>(container: &'a Container, name: &str) -> Option<&'a EnvVar> {
    container.env.iter().flatten().find(|e| e.name == name)
}

fn env_value<'a>(container: &'a Container, name: &str) -> &'a str {
    env_var(container, name)
        .and_then(|e| e.value.as_deref())
        .unwrap_or_else(|| panic!("{} sets no value for {name}", container.name))
}

/// Millicores of the CPU quantities the manifests use ("2", "500m").
fn millicpu(quantity: &str) -> u64 {
    match quantity.strip_suffix('m') {
        Some(milli) => milli.parse().expect("a number of millicores"),
        None => quantity.parse::<u64>().expect("a number of cores") * 1000,
    }
}

/// MiB of the memory quantities the manifests use ("8Gi", "512Mi").
fn memory_mib(quantity: &str) -> u64 {
    if let Some(gi) = quantity.strip_suffix("Gi") {
        gi.parse::<u64>().expect("a number of GiB") * 1024
    } else if let Some(mi) = quantity.strip_suffix("Mi") {
        mi.parse().expect("a number of MiB")
    } else {
        panic!("unexpected memory quantity {quantity}")
    }
}

#[test]
fn every_manifest_is_a_valid_object_of_its_kind_in_the_sluice_namespace() {
    let docs = documents();
    for (file, doc) in &docs {
        let kind = kind_of(doc);
        let namespace = doc
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(|n| n.as_str());
        match kind {
            "Kustomization" | "Namespace" => continue,
            "Deployment" | "StatefulSet" | "Service" | "ServiceAccount" | "Role"
            | "RoleBinding" | "Secret" => {}
            other => panic!("{file}: unexpected kind {other:?}"),
        }
        assert_eq!(
            namespace,
            Some(NAMESPACE),
            "{file}: {kind} {} is not in namespace {NAMESPACE}",
            name_of(doc)
        );
    }
    // Reading each kind into its type is the check.
    assert_eq!(all::<Namespace>().len(), 1);
    assert_eq!(all::<Deployment>().len(), 2);
    assert_eq!(all::<StatefulSet>().len(), 1);
    assert_eq!(all::<Service>().len(), 2);
    assert_eq!(all::<ServiceAccount>().len(), 1);
    assert_eq!(all::<Role>().len(), 1);
    assert_eq!(all::<RoleBinding>().len(), 1);
    assert_eq!(all::<Secret>().len(), 1);
}

#[test]
fn the_scheduler_may_scale_exactly_the_statefulset_it_is_told_to() {
    let scheduler = named::<Deployment>("sluice-scheduler");
    let pod = pod_spec_of_deployment(&scheduler);
    let main = container(pod, "sluice-scheduler");
    assert_eq!(env_value(main, "SLUICE_FLEET"), "kubernetes");
    let target = env_value(main, STATEFULSET_VAR);
    assert_eq!(target, DEFAULT_STATEFULSET);
    // Unset, the runtime uses the pod's own namespace, where the Role is.
    assert!(env_var(main, NAMESPACE_VAR).is_none());

    let worker = named::<StatefulSet>(target);
    assert_eq!(worker.metadata.namespace.as_deref(), Some(NAMESPACE));

    let account = pod
        .service_account_name
        .as_deref()
        .expect("the scheduler runs under its own service account");
    named::<ServiceAccount>(account);

    let binding = named::<RoleBinding>("sluice-scheduler");
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.api_group, "rbac.authorization.k8s.io");
    assert!(
        binding
            .subjects
            .iter()
            .flatten()
            .any(|s| s.kind == "ServiceAccount"
                && s.name == account
                && s.namespace.as_deref() == Some(NAMESPACE)),
        "the RoleBinding does not bind {account}"
    );

    let role = named::<Role>(&binding.role_ref.name);
    let rules = role.rules.unwrap_or_default();
    let grants = |verb: &str| {
        rules.iter().any(|r| {
            r.api_groups.iter().flatten().any(|g| g == "apps")
                && r.resources
                    .iter()
                    .flatten()
                    .any(|res| res == "statefulsets/scale")
                && r.resource_names.iter().flatten().any(|n| n == target)
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    assert!(
        grants("get"),
        "the Role does not grant get on {target}/scale"
    );
    assert!(
        grants("patch"),
        "the Role does not grant patch on {target}/scale"
    );
    // Least privilege: nothing but the worker StatefulSet (and its scale).
    for rule in &rules {
        assert_eq!(
            rule.resource_names.as_deref(),
            Some(&[target.to_owned()][..]),
            "a rule reaches beyond {target}"
        );
        for resource in rule.resources.iter().flatten() {
            assert!(
                resource == "statefulsets/scale" || resource == "statefulsets",
                "the Role grants {resource}"
            );
        }
        assert!(rule
            .verbs
            .iter()
            .all(|v| ["get", "patch", "update"].contains(&v.as_str())));
    }
}

#[test]
fn workers_register_under_their_pod_names() {
    let worker = named::<StatefulSet>(DEFAULT_STATEFULSET);
    let spec = worker.spec.as_ref().expect("the StatefulSet has a spec");
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    let pod = pod_spec_of_statefulset(&worker);
    assert_eq!(pod.termination_grace_period_seconds, Some(60));

    let main = container(pod, "sluice-worker");
    let hostname = env_var(main, "HOSTNAME")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|from| from.field_ref.as_ref())
        .expect("HOSTNAME comes from a fieldRef");
    assert_eq!(hostname.field_path, "metadata.name");

    let headless = named::<Service>(&spec.service_name.clone().unwrap_or_default());
    assert_eq!(
        headless.spec.and_then(|s| s.cluster_ip).as_deref(),
        Some("None")
    );
}

#[test]
fn the_worker_statefulset_leaves_replicas_to_the_scheduler() {
    // kubectl apply would patch a `replicas` in the file back over the
    // scheduler's value, stopping workers it had not drained.
    let worker = named::<StatefulSet>(DEFAULT_STATEFULSET);
    let spec = worker.spec.as_ref().expect("the StatefulSet has a spec");
    assert_eq!(spec.replicas, None);
}

#[test]
fn workers_advertise_the_size_the_scheduler_plans_with() {
    let worker = named::<StatefulSet>(DEFAULT_STATEFULSET);
    let main = container(pod_spec_of_statefulset(&worker), "sluice-worker");

    let resource_ref = |var: &str| {
        env_var(main, var)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|from| from.resource_field_ref.clone())
            .unwrap_or_else(|| panic!("{var} comes from a resourceFieldRef"))
    };
    let cpu = resource_ref("SLUICE_WORKER_MILLICPU");
    assert_eq!(cpu.resource, "limits.cpu");
    assert_eq!(cpu.divisor.map(|q| q.0).as_deref(), Some("1m"));
    let memory = resource_ref("SLUICE_WORKER_MEMORY_MIB");
    assert_eq!(memory.resource, "limits.memory");
    assert_eq!(memory.divisor.map(|q| q.0).as_deref(), Some("1Mi"));

    let resources = main.resources.as_ref().expect("the worker sets resources");
    let limits = resources.limits.clone().unwrap_or_default();
    assert_eq!(
        resources.requests.clone().unwrap_or_default(),
        limits,
        "requests must equal limits (Guaranteed QoS)"
    );

    let scheduler = named::<Deployment>("sluice-scheduler");
    let planner = container(pod_spec_of_deployment(&scheduler), "sluice-scheduler");
    let planned_cpu: u64 = env_value(planner, "SLUICE_FLEET_WORKER_MILLICPU")
        .parse()
        .expect("a number");
    let planned_mib: u64 = env_value(planner, "SLUICE_FLEET_WORKER_MEMORY_MIB")
        .parse()
        .expect("a number");
    assert_eq!(millicpu(&limits["cpu"].0), planned_cpu);
    assert_eq!(memory_mib(&limits["memory"].0), planned_mib);
}

#[test]
fn services_read_only_keys_the_example_secret_provides() {
    let example = named::<Secret>("sluice");
    let provided: BTreeSet<String> = example
        .string_data
        .unwrap_or_default()
        .into_keys()
        .collect();
    assert_eq!(
        provided,
        BTreeSet::from(["database-url".to_owned(), "master-key".to_owned()])
    );

    let mut pods: BTreeMap<String, PodSpec> = BTreeMap::new();
    for deployment in all::<Deployment>() {
        let name = deployment.metadata.name.clone().unwrap_or_default();
        pods.insert(name, pod_spec_of_deployment(&deployment).clone());
    }
    for statefulset in all::<StatefulSet>() {
        let name = statefulset.metadata.name.clone().unwrap_or_default();
        pods.insert(name, pod_spec_of_statefulset(&statefulset).clone());
    }
    for (name, pod) in &pods {
        let main = container(pod, name);
        for var in ["SLUICE_DATABASE_URL", "SLUICE_MASTER_KEY"] {
            assert!(env_var(main, var).is_some(), "{name} does not set {var}");
        }
        for var in main.env.iter().flatten() {
            let Some(secret) = var
                .value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref())
            else {
                continue;
            };
            assert_eq!(secret.name, "sluice", "{name}: {}", var.name);
            assert!(
                secret.optional == Some(true) || provided.contains(&secret.key),
                "{name}: {} reads key {} the Secret does not have",
                var.name,
                secret.key
            );
        }
    }
}
