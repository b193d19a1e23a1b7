//! The Terraform provider's acceptance tests: the real `terraform` CLI runs
//! the built `terraform-provider-sluice` (through a CLI configuration's
//! `dev_overrides`, no registry) against Sluice services of the test's own,
//! with a Kafka topic, a Kinesis stream and a ClickHouse database of its
//! own.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sluice_e2e::{
    binary, create_stream, create_topic, eventually, kafka_brokers, kinesis, kinesis_endpoint,
    produce, producer, ClickHouse, Services,
};

struct Workspace {
    dir: PathBuf,
    cli_config: PathBuf,
    endpoint: String,
    token: String,
}

struct Run {
    code: i32,
    output: String,
}

impl Workspace {
    fn new(services: &Services) -> Self {
        let dir = std::env::temp_dir().join(format!("sluice-tf-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let provider_dir = binary("terraform-provider-sluice")
            .parent()
            .unwrap()
            .to_path_buf();
        let cli_config = dir.join("cli.tfrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"registry.terraform.io/sluice/sluice\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                provider_dir.display()
            ),
        )
        .unwrap();
        Workspace {
            dir,
            cli_config,
            endpoint: services.api.clone(),
            token: services.token.clone(),
        }
    }

    /// A checked-in example, as is.
    fn copy_example(&self, name: &str) {
        let example = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../terraform-provider/examples")
            .join(name)
            .join("main.tf");
        std::fs::copy(&example, self.dir.join("main.tf"))
            .unwrap_or_else(|e| panic!("{}: {e}", example.display()));
    }

    fn write(&self, resources: &str) {
        let config = format!(
            "terraform {{\n  required_providers {{\n    sluice = {{ source = \"sluice/sluice\" }}\n  }}\n}}\n\nprovider \"sluice\" {{}}\n\n{resources}"
        );
        std::fs::write(self.dir.join("main.tf"), config).unwrap();
    }

    /// Runs terraform with the provider's settings in the environment (as
    /// users would, from SLUICE_*).
    fn run(&self, args: &[&str]) -> Run {
        let (key_id, secret) = self.token.split_once('.').unwrap();
        let output = Command::new("terraform")
            .args(args)
            .arg("-no-color")
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("SLUICE_ENDPOINT", &self.endpoint)
            .env("SLUICE_API_KEY_ID", key_id)
            .env("SLUICE_API_KEY_SECRET", secret)
            .output()
            .expect("terraform is on PATH");
        Run {
            code: output.status.code().unwrap_or(-1),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }

    fn apply(&self) -> String {
        let run = self.run(&["apply", "-auto-approve"]);
        assert_eq!(run.code, 0, "terraform apply failed:\n{}", run.output);
        run.output
    }

    /// `terraform plan -detailed-exitcode`: 0 no changes, 2 changes.
    fn plan(&self) -> Run {
        self.run(&["plan", "-detailed-exitcode"])
    }

    fn assert_no_changes(&self, after: &str) {
        let run = self.plan();
        assert_eq!(
            run.code, 0,
            "the plan after {after} is not empty:\n{}",
            run.output
        );
    }

    fn state_id(&self, address: &str) -> String {
        let run = self.run(&["state", "show", address]);
        run.output
            .lines()
            .find_map(|line| {
                let line = line.trim();
                line.strip_prefix("id")
                    .map(str::trim_start)
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_owned())
            })
            .unwrap_or_else(|| panic!("no id for {address}:\n{}", run.output))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn destination(clickhouse: &ClickHouse, extra: &str) -> String {
    format!(
        "resource \"sluice_destination\" \"ch\" {{\n  name = \"acceptance\"\n  url = \"{}\"\n  database = \"{}\"\n{extra}}}\n",
        clickhouse.url, clickhouse.database
    )
}

fn kafka_pipe(name: &str, topic: &str, table: &str, extra: &str) -> String {
    format!(
        r#"resource "sluice_pipe" "orders" {{
  name = "{name}"
  source = {{
    kafka = {{
      brokers = "{brokers}"
      topics  = ["{topic}"]
    }}
  }}
  destination = {{
    destination_id   = sluice_destination.ch.id
    table            = "{table}"
    managed_table    = true
    table_definition = {{ sorting_key = ["id"] }}
    columns = [
      {{ name = "id", type = "Int64" }},
      {{ name = "customer", type = "String" }},
    ]
  }}
  field_mappings = [{{ source_field = "customer.name", destination_field = "customer" }}]
{extra}}}
"#,
        brokers = kafka_brokers()
    )
}

fn kinesis_pipe(stream: &str) -> String {
    format!(
        r#"resource "sluice_pipe" "clicks" {{
  name = "clicks"
  source = {{
    kinesis = {{
      stream_name = "{stream}"
      region      = "us-east-1"
      endpoint    = "{endpoint}"
      access_key  = {{ access_key_id = "AKIAIOSFODNN7EXAMPLE", secret_key_wo = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" }}
    }}
  }}
  secrets_version = 1
  destination = {{
    destination_id   = sluice_destination.ch.id
    table            = "clicks"
    managed_table    = true
    table_definition = {{ sorting_key = ["n"] }}
    columns          = [{{ name = "n", type = "Int64" }}]
  }}
}}
"#,
        endpoint = kinesis_endpoint()
    )
}

async fn pipe_status(services: &Services, id: &str) -> serde_json::Value {
    services
        .call(Method::GET, &format!("/v1/pipes/{id}/status"), None)
        .await
        .1
}

fn contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in:\n{haystack}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_provider_manages_pipes_through_their_whole_life() {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (topic, other_topic, stream) = (
        format!("tf-orders-{suffix}"),
        format!("tf-orders-b-{suffix}"),
        format!("tf-clicks-{suffix}"),
    );
    create_topic(&topic, 2).await;
    create_topic(&other_topic, 1).await;
    create_stream(&kinesis().await, &stream, 1).await;
    let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..100)
        .map(|i| {
            (
                None,
                json!({"id": i, "customer": {"name": format!("c{i}")}})
                    .to_string()
                    .into_bytes(),
            )
        })
        .collect();
    produce(&producer(), &topic, &messages);
    let tf = Workspace::new(&services);

    // Apply: a destination, a Kafka pipe and a Kinesis pipe; rows land.
    let base = destination(&clickhouse, "");
    let data_sources = r#"
data "sluice_pipe" "orders" { id = sluice_pipe.orders.id }
data "sluice_pipes" "all" { depends_on = [sluice_pipe.orders, sluice_pipe.clicks] }
output "orders_table" { value = data.sluice_pipe.orders.destination.table }
output "pipe_names" { value = sort([for p in data.sluice_pipes.all.pipes : p.name]) }
"#;
    tf.write(&format!(
        "{base}\n{}\n{}\n{data_sources}",
        kafka_pipe("orders", &topic, "orders", ""),
        kinesis_pipe(&stream)
    ));
    tf.apply();
    let outputs = tf.run(&["output", "-json"]);
    let outputs: serde_json::Value = serde_json::from_str(&outputs.output).expect(&outputs.output);
    assert_eq!(outputs["orders_table"]["value"], "orders", "{outputs}");
    assert_eq!(
        outputs["pipe_names"]["value"],
        json!(["clicks", "orders"]),
        "{outputs}"
    );
    eventually(
        "the Kafka pipe's rows",
        Duration::from_secs(120),
        || async { clickhouse.count("orders").await == 100 },
    )
    .await;
    tf.assert_no_changes("the first apply");
    let orders = tf.state_id("sluice_pipe.orders");
    let state = std::fs::read_to_string(tf.dir.join("terraform.tfstate")).unwrap();
    assert!(
        !state.contains("wJalrXUtnFEMI"),
        "a write-only secret reached the state"
    );

    // Update in place: name, replicas.
    tf.write(&format!(
        "{base}\n{}\n{}",
        kafka_pipe(
            "orders renamed",
            &topic,
            "orders",
            "  scaling = { replicas = 2 }\n"
        ),
        kinesis_pipe(&stream)
    ));
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.output);
    contains(&plan.output, "update in-place");
    contains(&plan.output, "0 to add, 1 to change, 0 to destroy");
    tf.apply();
    tf.assert_no_changes("an update in place");
    assert_eq!(
        tf.state_id("sluice_pipe.orders"),
        orders,
        "updated, not replaced"
    );
    let scaled = services
        .call(Method::GET, &format!("/v1/pipes/{orders}"), None)
        .await
        .1;
    assert_eq!(scaled["scaling"]["replicas"], 2, "{scaled}");

    // An immutable change: the plan says it forces a replacement.
    tf.write(&format!(
        "{base}\n{}\n{}",
        kafka_pipe(
            "orders renamed",
            &other_topic,
            "orders",
            "  scaling = { replicas = 2 }\n"
        ),
        kinesis_pipe(&stream)
    ));
    let plan = tf.plan();
    contains(&plan.output, "# forces replacement");
    contains(&plan.output, "1 to add, 0 to change, 1 to destroy");
    tf.apply();
    tf.assert_no_changes("a replacement");
    let orders = tf.state_id("sluice_pipe.orders");

    // Stop through `stopped = true`.
    tf.write(&format!(
        "{base}\n{}\n{}",
        kafka_pipe(
            "orders renamed",
            &other_topic,
            "orders",
            "  scaling = { replicas = 2 }\n  stopped = true\n"
        ),
        kinesis_pipe(&stream)
    ));
    tf.apply();
    tf.assert_no_changes("stopping");
    assert_eq!(
        pipe_status(&services, &orders).await["desiredState"],
        "stopped"
    );

    // Import by id; the plan afterwards is empty (secrets are not imported:
    // write-only values are never in state).
    let clicks = tf.state_id("sluice_pipe.clicks");
    assert_eq!(tf.run(&["state", "rm", "sluice_pipe.clicks"]).code, 0);
    let run = tf.run(&["import", "sluice_pipe.clicks", &clicks]);
    assert_eq!(run.code, 0, "{}", run.output);
    // Secrets are not imported (write-only values never are), so the first
    // plan sets `secrets_version`, which sends them again; nothing else.
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.output);
    // Terraform aligns `=` over the block's attributes: spacing is not
    // what this checks.
    let changed: Vec<String> = plan
        .output
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('+') || l.starts_with('~') || l.starts_with('-'))
        .filter(|l| l.contains(" = "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        changed,
        [
            "+ secrets_version = 1",
            "~ state = \"Running\" -> (known after apply)"
        ],
        "{}",
        plan.output
    );
    assert_eq!(tf.state_id("sluice_pipe.clicks"), clicks);
    tf.apply();
    tf.assert_no_changes("an import");

    // A change through the API is drift.
    services
        .call(
            Method::PATCH,
            &format!("/v1/pipes/{clicks}"),
            Some(json!({"name": "renamed outside"})),
        )
        .await;
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.output);
    contains(&plan.output, "\"renamed outside\" -> \"clicks\"");
    tf.apply();
    tf.assert_no_changes("correcting drift");

    // Destroy: everything is gone.
    let run = tf.run(&["destroy", "-auto-approve"]);
    assert_eq!(run.code, 0, "{}", run.output);
    for id in [&orders, &clicks] {
        let (status, _) = services
            .call(Method::GET, &format!("/v1/pipes/{id}"), None)
            .await;
        assert_eq!(status, 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_pipe_is_reported_then_updated_and_destroyed() {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let topic = format!("tf-failing-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 1).await;
    let tf = Workspace::new(&services);
    // The test ClickHouse's `default` user has no password: with one, every
    // insert is refused, which fails the pipe for good.
    let wrong = destination(
        &clickhouse,
        "  password_wo = \"wrong\"\n  password_wo_version = 1\n",
    );
    tf.write(&format!(
        "{wrong}\n{}",
        kafka_pipe("failing", &topic, "failing", "  stopped = true\n")
    ));
    tf.apply();
    let id = tf.state_id("sluice_pipe.orders");

    tf.write(&format!(
        "{wrong}\n{}",
        kafka_pipe("failing", &topic, "failing", "")
    ));
    let run = tf.run(&["apply", "-auto-approve"]);
    assert_ne!(run.code, 0, "{}", run.output);
    contains(&run.output, "The pipe failed to start");
    contains(&run.output, "Failed");
    assert_eq!(pipe_status(&services, &id).await["state"], "Failed");

    // A Failed pipe can be changed...
    tf.write(&format!(
        "{wrong}\n{}",
        kafka_pipe("failing renamed", &topic, "failing", "")
    ));
    let run = tf.run(&["apply", "-auto-approve"]);
    assert_eq!(run.code, 0, "updating a Failed pipe:\n{}", run.output);
    let renamed = services
        .call(Method::GET, &format!("/v1/pipes/{id}"), None)
        .await
        .1;
    assert_eq!(renamed["name"], "failing renamed", "{renamed}");

    // ...and destroyed.
    let run = tf.run(&["destroy", "-auto-approve"]);
    assert_eq!(run.code, 0, "destroying a Failed pipe:\n{}", run.output);
    let (status, _) = services
        .call(Method::GET, &format!("/v1/pipes/{id}"), None)
        .await;
    assert_eq!(status, 404);
}

/// Every example in terraform-provider/examples applies as written, its plan
/// right after is empty, and it destroys.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_examples_apply_with_an_empty_plan_and_destroy() {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (topic, stream) = (
        format!("tf-example-{suffix}"),
        format!("tf-example-{suffix}"),
    );
    create_topic(&topic, 1).await;
    create_stream(&kinesis().await, &stream, 1).await;
    let common = [
        format!("clickhouse_url={}", clickhouse.url),
        format!("clickhouse_database={}", clickhouse.database),
    ];
    let examples = [
        (
            "kafka",
            vec![
                format!("kafka_brokers={}", kafka_brokers()),
                format!("topic={topic}"),
            ],
        ),
        (
            "kinesis",
            vec![
                format!("stream={stream}"),
                "region=us-east-1".to_owned(),
                format!("kinesis_endpoint={}", kinesis_endpoint()),
                "aws_access_key_id=AKIAIOSFODNN7EXAMPLE".to_owned(),
                "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
            ],
        ),
    ];
    for (example, vars) in examples {
        let tf = Workspace::new(&services);
        tf.copy_example(example);
        let mut args: Vec<String> = Vec::new();
        for var in common.iter().chain(&vars) {
            args.push("-var".to_owned());
            args.push(var.clone());
        }
        let with = |command: &[&str]| {
            let mut all: Vec<&str> = command.to_vec();
            all.extend(args.iter().map(String::as_str));
            tf.run(&all)
        };
        let run = with(&["apply", "-auto-approve"]);
        assert_eq!(run.code, 0, "{example}: apply failed:\n{}", run.output);
        let run = with(&["plan", "-detailed-exitcode"]);
        assert_eq!(
            run.code, 0,
            "{example}: the plan after apply is not empty:\n{}",
            run.output
        );
        let run = with(&["destroy", "-auto-approve"]);
        assert_eq!(run.code, 0, "{example}: destroy failed:\n{}", run.output);
    }
}
