//! Exactly-once pipes against the modern engine (ClickHouse 26.x as chdb,
//! behind the test stack's HTTP front — test scaffolding; the engine is
//! real): a worker SIGKILLed three times mid-ingest, a ClickHouse outage,
//! and inserts whose response is lost after the server applied them, each
//! end with every good record in the table exactly once.

use std::time::Duration;

use serde_json::json;
use sluice_e2e::{
    create_stream, create_topic, eventually, kinesis, produce, producer, put_records, ClickHouse,
    Fault, FaultProxy, Services,
};

const RECORDS: usize = 30_000;
const WAVES: usize = 10;

/// Every 97th record is malformed JSON: it goes to the error table.
fn payload(i: usize) -> Vec<u8> {
    if i % 97 == 5 {
        format!("{{\"id\": {i}, \"payload\": ").into_bytes()
    } else {
        json!({"id": i, "payload": format!("record {i}")})
            .to_string()
            .into_bytes()
    }
}

fn good_count() -> u64 {
    (0..RECORDS).filter(|i| i % 97 != 5).count() as u64
}

/// (rows, distinct ids) of `events` (see `ClickHouse::landed`).
async fn landed(clickhouse: &ClickHouse) -> (u64, u64) {
    clickhouse.landed("events").await
}

fn destination_table() -> serde_json::Value {
    json!({
        "table": "events",
        "managedTable": true,
        "tableDefinition": {"engine": "MergeTree", "sortingKey": ["id"]},
        "columns": [{"name": "id", "type": "UInt64"}, {"name": "payload", "type": "String"}]
    })
}

/// When the newest pending block (recorded before its insert, cleared
/// after its commit) was recorded, in seconds since the epoch; 0 for none.
async fn newest_pending_block(services: &Services) -> f64 {
    let pool = sqlx::PgPool::connect(&services.db.url)
        .await
        .expect("test database");
    let (newest,): (f64,) = sqlx::query_as(
        "SELECT coalesce(extract(epoch FROM max(recorded_at)), 0)::float8 FROM pending_blocks",
    )
    .fetch_one(&pool)
    .await
    .expect("pending blocks");
    pool.close().await;
    newest
}

/// Waits until the replica makes progress again (more distinct rows than
/// `since`): after a restart, it runs again.
async fn progress(clickhouse: &ClickHouse, since: u64, what: &str) -> u64 {
    eventually(what, Duration::from_secs(120), || async {
        landed(clickhouse).await.1 > since
    })
    .await;
    landed(clickhouse).await.1
}

/// Runs the faults while `produce_wave(w)` sends the waves: three SIGKILLs
/// of the worker, each while a block is recorded as pending (inserted or
/// being inserted, not committed); an outage; lost responses. Returns once
/// every wave is out.
async fn faults_while_producing<F>(
    services: &mut Services,
    clickhouse: &ClickHouse,
    proxy: &FaultProxy,
    produce_wave: F,
) where
    F: Fn(std::ops::Range<usize>) + Send + Sync + 'static,
{
    use std::sync::atomic::Ordering;
    let produce_wave = std::sync::Arc::new(produce_wave);
    let mut next_wave = 0;
    // Each wave goes out in ten slices over about two seconds, so blocks
    // keep being formed and inserted while the faults hit.
    let mut send = |count: usize| {
        let produce_wave = produce_wave.clone();
        let waves: Vec<usize> = (next_wave..(next_wave + count).min(WAVES)).collect();
        next_wave += waves.len();
        std::thread::spawn(move || {
            let per_wave = RECORDS / WAVES;
            for wave in waves {
                for slice in 0..10 {
                    let start = wave * per_wave + slice * per_wave / 10;
                    produce_wave(start..start + per_wave / 10);
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        })
    };
    let mut seen = 0;
    for kill in 1..=3 {
        let producing = send(2);
        seen = progress(clickhouse, seen, "rows before the kill").await;
        // Killed while a block recorded since is pending: inserted or being
        // inserted, not committed.
        let mark = newest_pending_block(services).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while newest_pending_block(services).await <= mark {
            assert!(
                std::time::Instant::now() < deadline,
                "no new block in flight to kill"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        services.kill_worker();
        println!(
            "kill {kill}: a block pending, {} distinct rows at the kill",
            landed(clickhouse).await.1
        );
        producing.join().expect("producer");
        services.start_worker();
    }
    let producing = send(2);
    seen = progress(clickhouse, seen, "rows before the outage").await;
    proxy.set(Fault::Refuse);
    eventually(
        "the outage to meet the replica",
        Duration::from_secs(60),
        || async { proxy.refused.load(Ordering::SeqCst) >= 3 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set(Fault::None);
    println!(
        "outage: {} connections refused",
        proxy.refused.load(Ordering::SeqCst)
    );
    producing.join().expect("producer");
    let producing = send(2);
    progress(clickhouse, seen, "rows before losing responses").await;
    proxy.set(Fault::LoseResponse);
    eventually("responses to be lost", Duration::from_secs(60), || async {
        proxy.lost_responses.load(Ordering::SeqCst) >= 3
    })
    .await;
    proxy.set(Fault::None);
    println!(
        "lost responses: {}",
        proxy.lost_responses.load(Ordering::SeqCst)
    );
    producing.join().expect("producer");
    let rest = send(WAVES);
    rest.join().expect("producer");
}

async fn assert_exactly_once(clickhouse: &ClickHouse, what: &str) {
    let good = good_count();
    eventually(what, Duration::from_secs(300), || async {
        landed(clickhouse).await.1 >= good
    })
    .await;
    // A late duplicate gets time to show.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rows, distinct) = landed(clickhouse).await;
    let errors = clickhouse
        .query("SELECT count(), uniqExact(raw_message) FROM events_sluice_errors FORMAT TSV")
        .await
        .expect("the error table");
    let errors = errors.trim().replace('\t', " ");
    println!("{what}: {rows} rows, {distinct} distinct, {good} good produced; error rows, distinct: {errors}");
    assert_eq!(
        (rows, distinct),
        (good, good),
        "every good record exactly once"
    );
    let bad = RECORDS as u64 - good;
    assert_eq!(
        errors,
        format!("{bad} {bad}"),
        "every bad record in the error table, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_exactly_once_survives_kills_an_outage_and_lost_responses() {
    let clickhouse = ClickHouse::create_modern().await;
    let mut services = Services::start().await;
    let proxy = FaultProxy::start(&clickhouse.url).await;
    let topic = format!("exactly-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 4).await;
    let destination = services
        .create_destination_at(&clickhouse, &proxy.url)
        .await;
    let mut pipe = json!({
        "name": "exactly once",
        "exactlyOnce": true,
        "source": {"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": [topic], "offset": {"strategy": "from_beginning"}}},
        "destination": destination_table(),
        "settings": {"streaming_max_insert_wait_ms": 500, "clickhouse_timeout_seconds": 5}
    });
    pipe["destination"]["destinationId"] = json!(destination);
    services.create_and_start(pipe).await;

    let wave_topic = topic.clone();
    faults_while_producing(&mut services, &clickhouse, &proxy, move |ids| {
        let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = ids
            .map(|i| (Some(i.to_string().into_bytes()), payload(i)))
            .collect();
        produce(&producer(), &wave_topic, &messages);
    })
    .await;
    assert_exactly_once(&clickhouse, "kafka exactly once").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kinesis_exactly_once_survives_kills_an_outage_and_lost_responses() {
    let clickhouse = ClickHouse::create_modern().await;
    let mut services = Services::start().await;
    let proxy = FaultProxy::start(&clickhouse.url).await;
    let client = kinesis().await;
    let stream = format!("exactly-{}", uuid::Uuid::new_v4().simple());
    create_stream(&client, &stream, 4).await;
    let destination = services
        .create_destination_at(&clickhouse, &proxy.url)
        .await;
    let mut pipe = json!({
        "name": "exactly once kinesis",
        "exactlyOnce": true,
        "source": {"kinesis": {
            "streamName": stream,
            "region": "us-east-1",
            "endpoint": sluice_e2e::kinesis_endpoint(),
            "iteratorType": "TRIM_HORIZON",
            "authentication": "IAM_USER",
            "accessKey": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
        }},
        "destination": destination_table(),
        "scaling": {"replicas": 1, "replicaSize": "XS"},
        "settings": {"streaming_max_insert_wait_ms": 500, "clickhouse_timeout_seconds": 5}
    });
    pipe["destination"]["destinationId"] = json!(destination);
    services.create_and_start(pipe).await;

    let runtime = tokio::runtime::Handle::current();
    faults_while_producing(&mut services, &clickhouse, &proxy, move |ids| {
        let records: Vec<(String, Vec<u8>)> = ids
            .map(|i| (format!("key-{}", i % 64), payload(i)))
            .collect();
        runtime.block_on(async {
            let client = kinesis().await;
            put_records(&client, &stream, &records).await;
        });
    })
    .await;
    assert_exactly_once(&clickhouse, "kinesis exactly once").await;
}

/// A server without insert deduplication tokens (the 18.16 test server)
/// cannot give exactly-once: creating such a pipe is refused, naming the
/// server's version.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_is_refused_by_a_server_without_tokens() {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let destination = services.create_destination(&clickhouse).await;
    let mut pipe = json!({
        "name": "exactly once on 18.16",
        "exactlyOnce": true,
        "source": {"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": ["t"]}},
        "destination": destination_table(),
    });
    pipe["destination"]["destinationId"] = json!(destination);
    let (status, body) = services
        .call(reqwest::Method::POST, "/v1/pipes", Some(pipe))
        .await;
    assert_eq!(status, 422, "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["pointer"], "/exactlyOnce", "{body}");
    let detail = error["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("18.16") && detail.contains("deduplication"),
        "{body}"
    );
}
