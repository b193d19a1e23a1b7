//! Starts the Sluice services as processes against a database of their own
//! and reaches the test stack's Kafka and ClickHouse.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use sluice_testkit::TestDatabase;

pub fn kafka_brokers() -> String {
    std::env::var("SLUICE_TEST_KAFKA_BROKERS")
        .expect("SLUICE_TEST_KAFKA_BROKERS is not set: run the tests with `make test`")
}

pub fn kinesis_endpoint() -> String {
    std::env::var("SLUICE_TEST_KINESIS_ENDPOINT")
        .expect("SLUICE_TEST_KINESIS_ENDPOINT is not set: run the tests with `make test`")
}

/// A Kinesis client for the emulator (it accepts any signed credentials).
pub async fn kinesis() -> aws_sdk_kinesis::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(kinesis_endpoint())
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "test", "test", None, None, "e2e",
        ))
        .load()
        .await;
    aws_sdk_kinesis::Client::new(&config)
}

/// Deletes a test's stream (and its consumers), best effort: the emulator
/// keeps every record of every stream in memory.
pub async fn delete_stream(client: &aws_sdk_kinesis::Client, name: &str) {
    let _ = client
        .delete_stream()
        .stream_name(name)
        .enforce_consumer_deletion(true)
        .send()
        .await;
}

/// Creates a stream and waits until it is ACTIVE.
pub async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("CreateStream");
    wait_for_stream(client, name).await;
}

pub async fn wait_for_stream(client: &aws_sdk_kinesis::Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .expect("DescribeStreamSummary");
        let status = summary.stream_description_summary.map(|s| s.stream_status);
        if status == Some(aws_sdk_kinesis::types::StreamStatus::Active) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stream {name} not ACTIVE: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Puts records (partition key, data) in batches of 500, retrying what the
/// emulator refuses, in order per call.
pub async fn put_records(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    records: &[(String, Vec<u8>)],
) {
    for chunk in records.chunks(500) {
        let mut pending: Vec<&(String, Vec<u8>)> = chunk.iter().collect();
        while !pending.is_empty() {
            let entries = pending
                .iter()
                .map(|(key, data)| {
                    aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                        .partition_key(key)
                        .data(aws_sdk_kinesis::primitives::Blob::new(data.clone()))
                        .build()
                        .expect("entry")
                })
                .collect::<Vec<_>>();
            let response = client
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries))
                .send()
                .await
                .expect("PutRecords");
            pending = pending
                .into_iter()
                .zip(response.records)
                .filter(|(_, result)| result.error_code.is_some())
                .map(|(record, _)| record)
                .collect();
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

pub fn binary(name: &str) -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` first (make test does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Services {
    pub api: String,
    pub token: String,
    pub worker_metrics: String,
    env: Vec<(String, String)>,
    api_process: Child,
    scheduler: Child,
    worker: Option<Child>,
    /// Extra workers and standby schedulers.
    extras: Vec<Child>,
    pub http: reqwest::Client,
    pub db: TestDatabase,
}

impl Services {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra_env: &[(&str, &str)]) -> Self {
        Self::start_services(extra_env, true).await
    }

    /// The API and a scheduler, no worker: for a scheduler that runs its
    /// own fleet (`SLUICE_FLEET=local`).
    pub async fn start_without_workers(extra_env: &[(&str, &str)]) -> Self {
        Self::start_services(extra_env, false).await
    }

    async fn start_services(extra_env: &[(&str, &str)], with_worker: bool) -> Self {
        let db = TestDatabase::create().await;
        let api_port = free_port();
        let metrics_port = free_port();
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        let token = format!(
            "sk{}.{}",
            uuid::Uuid::new_v4().simple().to_string().get(..20).unwrap(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(uuid::Uuid::new_v4().as_bytes().repeat(2))
        );
        let mut env = vec![
            ("SLUICE_DATABASE_URL".to_owned(), db.url.clone()),
            (
                "SLUICE_MASTER_KEY".to_owned(),
                base64::engine::general_purpose::STANDARD.encode(key),
            ),
            (
                "SLUICE_API_ADDR".to_owned(),
                format!("127.0.0.1:{api_port}"),
            ),
            ("SLUICE_BOOTSTRAP_ADMIN_KEY".to_owned(), token.clone()),
            (
                "SLUICE_WORKER_METRICS_ADDR".to_owned(),
                format!("127.0.0.1:{metrics_port}"),
            ),
            (
                "RUST_LOG".to_owned(),
                std::env::var("SLUICE_TEST_RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            ),
        ];
        for (k, v) in extra_env {
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let api_process = spawn("sluice-api", &env);
        let services = Services {
            api: format!("http://127.0.0.1:{api_port}"),
            token,
            worker_metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
            scheduler: spawn("sluice-scheduler", &env),
            worker: with_worker.then(|| spawn("sluice-worker", &env)),
            extras: Vec::new(),
            env,
            api_process,
            http: reqwest::Client::new(),
            db,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = services
                .http
                .get(format!("{}/readyz", services.api))
                .send()
                .await
            {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "sluice-api did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        services
    }

    /// SIGKILL: no flush, no commit, no lease release.
    pub fn kill_worker(&mut self) {
        if let Some(mut worker) = self.worker.take() {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }

    /// Another worker process, stopped with the services.
    pub fn start_extra_worker(&mut self) {
        let mut env = self.env.clone();
        for (key, value) in &mut env {
            if key == "SLUICE_WORKER_METRICS_ADDR" {
                *value = format!("127.0.0.1:{}", free_port());
            }
        }
        self.extras.push(spawn("sluice-worker", &env));
    }

    /// A second scheduler, standing by while the first one leads.
    pub fn start_standby_scheduler(&mut self) {
        self.extras.push(spawn("sluice-scheduler", &self.env));
    }

    /// SIGKILL the first scheduler (the leader, if it was started first).
    pub fn kill_scheduler(&mut self) {
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
    }

    /// Sends a signal (`STOP`, `CONT`, …) to the first worker.
    pub fn signal_worker(&self, signal: &str) {
        let worker = self.worker.as_ref().expect("a worker is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(worker.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    pub fn start_worker(&mut self) {
        assert!(self.worker.is_none());
        self.worker = Some(spawn("sluice-worker", &self.env));
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API reachable");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn create_destination(&self, clickhouse: &ClickHouse) -> String {
        self.create_destination_at(clickhouse, &clickhouse.url)
            .await
    }

    /// A destination for `clickhouse`'s database and credentials, reached
    /// at `url` (a fault proxy in front of it, say).
    pub async fn create_destination_at(&self, clickhouse: &ClickHouse, url: &str) -> String {
        let mut destination =
            json!({"name": "test clickhouse", "url": url, "database": clickhouse.database});
        if let Some((user, password)) = &clickhouse.credentials {
            destination["username"] = json!(user);
            destination["password"] = json!(password);
        }
        let (status, body) = self
            .call(reqwest::Method::POST, "/v1/destinations", Some(destination))
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn create_and_start(&self, pipe: Value) -> String {
        let (status, body) = self
            .call(reqwest::Method::POST, "/v1/pipes", Some(pipe))
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let (status, body) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/pipes/{id}/state"),
                Some(json!({"command": "start"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        id
    }

    pub async fn metrics(&self, pipe: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/pipes/{pipe}/metrics"),
            None,
        )
        .await
        .1
    }

    pub async fn status(&self, pipe: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/pipes/{pipe}/status"),
            None,
        )
        .await
        .1
    }
}

fn spawn(name: &str, env: &[(String, String)]) -> Child {
    let log_dir = std::env::var("SLUICE_TEST_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join(format!("e2e-{name}.log")))
        .expect("log file");
    // A process group of its own, so the workers a scheduler starts go
    // with it when the test ends.
    std::os::unix::process::CommandExt::process_group(&mut Command::new(binary(name)), 0)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

impl Drop for Services {
    fn drop(&mut self) {
        for child in [
            Some(&mut self.api_process),
            Some(&mut self.scheduler),
            self.worker.as_mut(),
        ]
        .into_iter()
        .flatten()
        .chain(self.extras.iter_mut())
        {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A database of its own on the test ClickHouse.
pub struct ClickHouse {
    pub url: String,
    pub database: String,
    /// User and password, where the server wants them (the chdb front).
    pub credentials: Option<(String, String)>,
    http: reqwest::Client,
}

impl ClickHouse {
    /// A database of its own on the test server (Debian's 18.16).
    pub async fn create() -> Self {
        Self::create_on(sluice_testkit::clickhouse_url(), None).await
    }

    /// A database of its own on the modern engine: the ClickHouse 26.x
    /// engine (chdb) behind the test stack's HTTP front (tests/chdb-front,
    /// test scaffolding).
    pub async fn create_modern() -> Self {
        let url = std::env::var("SLUICE_TEST_CHDB_URL")
            .expect("SLUICE_TEST_CHDB_URL is not set: run the tests with `make test`");
        let password = std::env::var("SLUICE_TEST_CHDB_PASSWORD").unwrap_or_default();
        Self::create_on(url, Some(("default".to_owned(), password))).await
    }

    async fn create_on(url: String, credentials: Option<(String, String)>) -> Self {
        let database = format!("e2e_{}", uuid::Uuid::new_v4().simple());
        let ch = ClickHouse {
            url,
            database,
            credentials,
            http: reqwest::Client::builder()
                // ClickHouse closes idle keep-alive connections after 3 s;
                // a pooled one reused just then fails the request.
                .pool_idle_timeout(Duration::from_secs(1))
                .build()
                .expect("HTTP client"),
        };
        let created = ch
            .authorized(ch.http.post(&ch.url))
            .body(format!("CREATE DATABASE {}", ch.database))
            .send()
            .await
            .expect("ClickHouse reachable");
        assert!(
            created.status().is_success(),
            "{}",
            created.text().await.unwrap_or_default()
        );
        ch
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    pub async fn query(&self, sql: &str) -> Result<String, String> {
        let response = self
            .authorized(
                self.http
                    .post(format!("{}/?database={}", self.url, self.database)),
            )
            .body(sql.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// Rows in `table`; 0 while the table does not exist yet (a pipe
    /// creates its table when it starts). Any other error fails the test.
    pub async fn count(&self, table: &str) -> u64 {
        self.landed_in(table, "count()").await.0
    }

    /// (rows, distinct ids) of `table`, with the same rules as `count`.
    pub async fn landed(&self, table: &str) -> (u64, u64) {
        self.landed_in(table, "count(), uniqExact(id)").await
    }

    async fn landed_in(&self, table: &str, what: &str) -> (u64, u64) {
        let text = match self
            .query(&format!("SELECT {what} FROM {table} FORMAT TSV"))
            .await
        {
            Ok(text) => text,
            Err(e) if e.contains("Code: 60") => return (0, 0),
            Err(e) => panic!("counting {table}: {e}"),
        };
        let fields: Vec<u64> = text
            .split_whitespace()
            .map(|f| {
                f.parse()
                    .unwrap_or_else(|_| panic!("counting {table}: {text}"))
            })
            .collect();
        (fields[0], fields.get(1).copied().unwrap_or(0))
    }
}

pub async fn create_topic(topic: &str, partitions: i32) {
    create_topic_on(&kafka_brokers(), topic, partitions).await;
}

pub async fn create_topic_on(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic");
    for result in results {
        result.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// One record per batch: tansu 0.6's in-memory engine answers a fetch from
/// an offset inside a multi-record batch with the *next* batch, so any
/// consumer resuming mid-batch (a new group member starting at a committed
/// offset) would silently skip records. Single-record batches keep the
/// broker out of the tests' way; Sluice logs such jumps (see the worker's
/// replica pipeline).
pub fn producer() -> BaseProducer {
    producer_for(&kafka_brokers())
}

pub fn producer_for(brokers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .set("batch.num.messages", "1")
        .set("message.max.bytes", "40000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .expect("producer")
}

/// Sends and waits for every acknowledgement.
pub fn produce(producer: &BaseProducer, topic: &str, messages: &[(Option<Vec<u8>>, Vec<u8>)]) {
    produce_to(producer, topic, None, messages);
}

/// Sends to one partition (or, with `None`, where the key hashes) and waits
/// for every acknowledgement.
pub fn produce_to(
    producer: &BaseProducer,
    topic: &str,
    partition: Option<i32>,
    messages: &[(Option<Vec<u8>>, Vec<u8>)],
) {
    for (key, payload) in messages {
        let mut record = BaseRecord::to(topic).payload(payload);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => panic!("producing: {e}"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("all messages acknowledged");
}

/// (committed offset, end of partition) per partition of the topic, for the group.
pub fn committed_and_end(topic: &str, group: &str, partitions: i32) -> Vec<(i64, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| {
            let offset = committed
                .find_partition(topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(-1);
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            (offset, high)
        })
        .collect()
}

/// Polls `check` until it returns true or the timeout passes.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the fault proxy does with the traffic it relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Relays both ways.
    None = 0,
    /// Takes requests and never answers (nor relays) them.
    Stall = 1,
    /// Relays the request, and drops the connection when the answer comes:
    /// the server applied it, the client never learns.
    LoseResponse = 2,
    /// Closes every connection at once: the server is down.
    Refuse = 3,
}

/// A TCP proxy on a loopback port in front of `upstream` (`host:port`),
/// injecting the fault it is set to. Connections are relayed as they are,
/// so keep-alive connections see a fault set after they opened.
pub struct FaultProxy {
    pub url: String,
    fault: std::sync::Arc<std::sync::atomic::AtomicU8>,
    /// Answers the server sent that never reached the client.
    pub lost_responses: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Connections closed at once while refusing.
    pub refused: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl FaultProxy {
    pub async fn start(upstream_url: &str) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = upstream_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let fault = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(Fault::None as u8));
        let lost_responses = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let refused = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let current = fault.clone();
        let (lost, refusals) = (lost_responses.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if current.load(Ordering::SeqCst) == Fault::Refuse as u8 {
                    refusals.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                let fault = current.clone();
                let lost = lost.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let up_fault = fault.clone();
                    let up = tokio::spawn(async move {
                        let mut buffer = vec![0u8; 64 * 1024];
                        while let Ok(n) = client_read.read(&mut buffer).await {
                            let now = up_fault.load(Ordering::SeqCst);
                            if n == 0 || now == Fault::Refuse as u8 {
                                break;
                            }
                            if now == Fault::Stall as u8 {
                                continue;
                            }
                            if server_write.write_all(&buffer[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n) = server_read.read(&mut buffer).await {
                        let now = fault.load(Ordering::SeqCst);
                        if n > 0 && now == Fault::LoseResponse as u8 {
                            lost.fetch_add(1, Ordering::SeqCst);
                        }
                        if n == 0 || now != Fault::None as u8 {
                            break;
                        }
                        if client_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    if fault.load(Ordering::SeqCst) == Fault::Stall as u8 {
                        // Keep the client's connection open, unanswered.
                        let _ = up.await;
                    } else {
                        up.abort();
                    }
                    drop(client_write);
                });
            }
        });
        FaultProxy {
            url,
            fault,
            lost_responses,
            refused,
        }
    }

    pub fn set(&self, fault: Fault) {
        self.fault
            .store(fault as u8, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A tansu broker of the test's own, on durable storage (an SQLite file in
/// a fresh directory), for what the shared broker cannot be used for:
/// changing a topic under a running pipe, TLS, SASL users (made while the
/// broker is open, then kept across a restart with authentication on).
/// Stopped when dropped.
pub struct OwnBroker {
    child: Child,
    /// What clients connect to: the broker, or its TLS front.
    pub brokers: String,
    /// Where tansu itself listens.
    listen_port: u16,
    storage: PathBuf,
    tls_front: Option<TlsFront>,
}

fn tansu_binary() -> String {
    std::env::var("SLUICE_TEST_TANSU")
        .expect("SLUICE_TEST_TANSU (the tansu binary) is not set: run the tests with `make test`")
}

/// The test stack's CA (scripts/stack.sh `make_test_ca`): `ca.crt` and a
/// `server.crt`/`server.key` for 127.0.0.1.
pub fn test_tls_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("SLUICE_TEST_TLS_DIR")
            .expect("SLUICE_TEST_TLS_DIR is not set: run the tests with `make test`"),
    )
}

impl OwnBroker {
    pub async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("sluice-broker-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("broker directory");
        let port = free_port();
        let mut broker = OwnBroker {
            child: Self::spawn(&dir, port, port, false),
            brokers: format!("127.0.0.1:{port}"),
            listen_port: port,
            storage: dir.join("tansu.db"),
            tls_front: None,
        };
        broker.wait_listening().await;
        broker
    }

    fn spawn(dir: &std::path::Path, port: u16, advertised: u16, authentication: bool) -> Child {
        let log_dir = std::env::var("SLUICE_TEST_LOG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(format!("e2e-tansu-{port}.log")))
            .expect("log file");
        let mut command = Command::new(tansu_binary());
        command.args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{advertised}"),
            // tansu reads the URL's path as relative to its working
            // directory.
            "--storage-engine",
            "sqlite://tansu.db",
        ]);
        if authentication {
            command.arg("--authentication");
        }
        command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("starting tansu")
    }

    async fn wait_listening(&mut self) {
        let brokers = self.brokers.clone();
        eventually("the broker to listen", Duration::from_secs(30), || async {
            tokio::net::TcpStream::connect(&brokers).await.is_ok()
        })
        .await;
    }

    /// A SCRAM user (`mechanism`: `scram256` or `scram512`), made while the
    /// broker is open: tansu's CLI cannot log in to a broker that already
    /// requires authentication.
    pub fn create_user(&self, name: &str, password: &str, mechanism: &str) {
        let status = Command::new(tansu_binary())
            .args([
                "user",
                "create",
                name,
                password,
                "--mechanism",
                mechanism,
                "--broker",
                &format!("tcp://{}", self.brokers),
            ])
            .status()
            .expect("tansu user create");
        assert!(status.success(), "creating the user {name}");
    }

    /// Stops the broker and starts it again on the same storage and port,
    /// with authentication and/or behind TLS. tansu 0.6 cannot serve TLS
    /// itself (its `--cert` and `--key` options exclude each other), so TLS
    /// is a front of the test's own (`TlsFront`, test scaffolding) with the
    /// test CA's server certificate, and the broker advertises the front:
    /// clients speak TLS, and SASL inside it, to the real broker.
    pub async fn restart(&mut self, tls: bool, authentication: bool) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = self.storage.parent().expect("storage directory").to_owned();
        let advertised = if tls {
            let front = TlsFront::start(self.listen_port).await;
            let port = front.port;
            self.tls_front = Some(front);
            port
        } else {
            self.tls_front = None;
            self.listen_port
        };
        self.child = Self::spawn(&dir, self.listen_port, advertised, authentication);
        self.brokers = format!("127.0.0.1:{advertised}");
        let listening = format!("127.0.0.1:{}", self.listen_port);
        eventually("the broker to listen", Duration::from_secs(30), || async {
            tokio::net::TcpStream::connect(&listening).await.is_ok()
        })
        .await;
    }

    /// Adds a partition to a topic. tansu 0.6 answers the Kafka API's
    /// CreatePartitions with UnsupportedFeature, so this writes what that
    /// request would: the topic's partition count and the new partition's
    /// row and watermark in the broker's storage. Every client then learns
    /// of it the way it would from any broker: the next metadata response.
    pub async fn add_partition(&self, topic: &str) -> i32 {
        use sqlx::sqlite::SqliteConnectOptions;
        use sqlx::{Connection, Row};
        let mut db = sqlx::SqliteConnection::connect_with(
            &SqliteConnectOptions::new()
                .filename(&self.storage)
                .busy_timeout(Duration::from_secs(10)),
        )
        .await
        .expect("the broker's storage");
        let mut tx = db.begin().await.expect("a transaction");
        let row = sqlx::query("SELECT id, partitions FROM topic WHERE name = ?")
            .bind(topic)
            .fetch_one(&mut *tx)
            .await
            .expect("the topic in the broker's storage");
        let (id, partition): (i64, i32) = (row.get(0), row.get(1));
        sqlx::query("UPDATE topic SET partitions = partitions + 1 WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .expect("partition count");
        sqlx::query("INSERT INTO topition (topic, partition) VALUES (?, ?)")
            .bind(id)
            .bind(partition)
            .execute(&mut *tx)
            .await
            .expect("partition");
        sqlx::query("INSERT INTO watermark (topition) SELECT id FROM topition WHERE topic = ? AND partition = ?")
            .bind(id)
            .bind(partition)
            .execute(&mut *tx)
            .await
            .expect("watermark");
        tx.commit().await.expect("commit");
        partition
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.storage.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// TLS in front of a plain TCP server (test scaffolding: tansu 0.6 cannot
/// enable its own TLS): accepts TLS with the test CA's server certificate
/// for 127.0.0.1 and relays the bytes to the server. Stops when dropped.
pub struct TlsFront {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    pub async fn start(upstream_port: u16) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = test_tls_dir();
        let certificates: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.crt"))
                .expect("the server certificate")
                .collect::<Result<_, _>>()
                .expect("the server certificate");
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("the server key");
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .expect("the TLS configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the TLS front");
        let port = listener.local_addr().expect("its address").port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that fails the handshake (an untrusted
                    // certificate on its side) just goes away.
                    let Ok(mut client) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        TlsFront { port, task }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How `confluent_serialize` encodes records.
pub enum ConfluentSerializer<'a> {
    /// confluent-kafka's AvroSerializer with this schema (JSON).
    Avro { schema: &'a str },
    /// confluent-kafka's ProtobufSerializer for `message_type` of these
    /// `.proto` files (name, text).
    Protobuf {
        files: &'a [(&'a str, &'a str)],
        message_type: &'a str,
    },
}

/// `.proto` files (name, text) compiled into a descriptor set, imports
/// and well-known types included, dependencies first.
pub fn descriptor_set(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("sluice-proto-{}", uuid::Uuid::new_v4().simple()));
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("proto dir");
        std::fs::write(&path, text).expect("writing a .proto file");
    }
    let set = protox::compile(files.iter().map(|(name, _)| *name), [&dir])
        .unwrap_or_else(|e| panic!("compiling the test's .proto files: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    prost::Message::encode_to_vec(&set)
}

/// Serializes `records` with the official Confluent serializers (Python's
/// confluent-kafka, tests/e2e/py/serialize.py), which register their
/// schemas in `registry` under `<topic>-value` and frame every message as
/// production producers do. Returns one payload per record.
pub fn confluent_serialize(
    registry: &str,
    credentials: Option<(&str, &str)>,
    topic: &str,
    serializer: ConfluentSerializer<'_>,
    records: &[Value],
) -> Vec<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!(
        "sluice-serialize-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let records_path = dir.join("records.jsonl");
    let lines: Vec<String> = records.iter().map(Value::to_string).collect();
    std::fs::write(&records_path, lines.join("\n")).expect("writing records");
    let out = dir.join("out.hex");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/serialize.py");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .args(["--registry", registry, "--subject-topic", topic])
        .arg("--records")
        .arg(&records_path)
        .arg("--out")
        .arg(&out);
    if let Some((user, password)) = credentials {
        command.args(["--user", user, "--password", password]);
    }
    match serializer {
        ConfluentSerializer::Avro { schema } => {
            let path = dir.join("schema.avsc");
            std::fs::write(&path, schema).expect("writing the schema");
            command.arg("--avro-schema").arg(path);
        }
        ConfluentSerializer::Protobuf {
            files,
            message_type,
        } => {
            let path = dir.join("schema.pb");
            std::fs::write(&path, descriptor_set(files)).expect("writing the descriptor set");
            command
                .arg("--descriptor-set")
                .arg(path)
                .args(["--message-type", message_type]);
        }
    }
    let output = command.output().expect("running python3 serialize.py");
    assert!(
        output.status.success(),
        "serialize.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("serialize.py's output");
    let _ = std::fs::remove_dir_all(&dir);
    text.lines()
        .map(|line| {
            (0..line.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect()
}

/// An Avro record schema with every type the formats map (logical types,
/// unions, records, arrays, maps, enums, fixed), for the registry tests
/// and the web tests' seed.
pub const READING: &str = r#"{"type": "record", "name": "Reading", "namespace": "e2e", "fields": [
  {"name": "id", "type": "long"},
  {"name": "small", "type": "int"},
  {"name": "ok", "type": "boolean"},
  {"name": "ratio", "type": "float"},
  {"name": "score", "type": "double"},
  {"name": "label", "type": "string"},
  {"name": "note", "type": ["null", "string"], "default": null},
  {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
  {"name": "tags", "type": {"type": "array", "items": "string"}},
  {"name": "attrs", "type": {"type": "map", "values": "long"}},
  {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
    {"name": "name", "type": "string"}, {"name": "tier", "type": "int"}]}},
  {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 4}},
  {"name": "blob", "type": "bytes"},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 4}},
  {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "clock", "type": {"type": "int", "logicalType": "time-millis"}},
  {"name": "at_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "at_ns", "type": {"type": "long", "logicalType": "timestamp-nanos"}},
  {"name": "local_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
  {"name": "either", "type": ["string", "long"]},
  {"name": "span", "type": {"type": "fixed", "name": "Span", "size": 12, "logicalType": "duration"}}
]}"#;

pub const STATUSES: [&str; 3] = ["NEW", "PAID", "SHIPPED"];

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Record `i` of `READING`, as `tests/e2e/py/serialize.py` takes it.
pub fn reading(i: u64) -> Value {
    let mut span = Vec::new();
    for part in [1u32, 2, 3] {
        span.extend_from_slice(&part.to_le_bytes());
    }
    json!({
        "id": i,
        "small": -(i as i64),
        "ok": i.is_multiple_of(2),
        "ratio": 0.5,
        "score": i as f64 * 1.25,
        "label": format!("r{i}"),
        "note": if i.is_multiple_of(3) { Value::Null } else { json!(format!("n{i}")) },
        "status": STATUSES[(i % 3) as usize],
        "tags": ["a", format!("b{i}")],
        "attrs": {"x": i},
        "customer": {"name": format!("c{i}"), "tier": i % 5},
        "code": {"$hex": hex(b"AB12")},
        "blob": {"$hex": hex(format!("blob-{i}").as_bytes())},
        "price": {"$decimal": format!("{i}.1234")},
        "uid": format!("00000000-0000-4000-8000-{i:012x}"),
        "day": 19_000 + i,
        "clock": 3_600_000 + i,
        "at_ms": 1_700_000_000_000u64 + i,
        "at_us": 1_700_000_000_000_000u64 + i,
        "at_ns": 1_700_000_000_000_000_000u64 + i,
        "local_ms": 1_700_000_000_000u64 + i,
        "either": if i.is_multiple_of(2) { json!(format!("s{i}")) } else { json!(i) },
        "span": {"$hex": hex(&span)}
    })
}
