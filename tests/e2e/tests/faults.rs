//! Faults mid-stream lose nothing: ClickHouse stopped and started again,
//! the worker killed with SIGKILL and started again, and the worker paused
//! with SIGSTOP while another takes its replica over, the scheduler
//! leader killed (its standby takes over), and the pipe scaled up and down.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use sluice_e2e::{create_topic, eventually, produce, producer, ClickHouse, Services};

const PER_WAVE: usize = 10_000;

fn stack(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/stack.sh");
    let status = Command::new(script)
        .args(args)
        .status()
        .expect("running scripts/stack.sh");
    assert!(status.success(), "scripts/stack.sh {args:?} failed");
}

/// Produces ids `wave * PER_WAVE ..` in ten slices, `pause` apart.
fn wave(topic: &str, wave: usize, pause: Duration) {
    let producer = producer();
    for slice in 0..10 {
        let start = wave * PER_WAVE + slice * PER_WAVE / 10;
        let messages: Vec<(Option<Vec<u8>>, Vec<u8>)> = (start..start + PER_WAVE / 10)
            .map(|i| {
                (
                    Some(i.to_string().into_bytes()),
                    json!({"id": i, "payload": "x".repeat(100)})
                        .to_string()
                        .into_bytes(),
                )
            })
            .collect();
        produce(&producer, topic, &messages);
        std::thread::sleep(pause);
    }
}

/// A pipe from `topic` into a managed table `events`, started.
async fn start_pipe(
    services: &Services,
    clickhouse: &ClickHouse,
    topic: &str,
    name: &str,
) -> String {
    start_pipe_with(services, clickhouse, topic, name, json!({})).await
}

/// `start_pipe`, with the top-level fields of `overrides` (scaling,
/// settings) in place of the defaults.
async fn start_pipe_with(
    services: &Services,
    clickhouse: &ClickHouse,
    topic: &str,
    name: &str,
    overrides: serde_json::Value,
) -> String {
    let destination = services.create_destination(clickhouse).await;
    let mut pipe = json!({
        "name": name,
        "source": {"kafka": {"brokers": sluice_e2e::kafka_brokers(), "topics": [topic]}},
        "destination": {
            "destinationId": destination,
            "table": "events",
            "managedTable": true,
            "tableDefinition": {"sortingKey": ["id"]},
            "columns": [{"name": "id", "type": "UInt64"}, {"name": "payload", "type": "String"}]
        },
        "settings": {"streaming_max_insert_wait_ms": 500}
    });
    if let (Some(pipe), Some(overrides)) = (pipe.as_object_mut(), overrides.as_object()) {
        for (key, value) in overrides {
            pipe.insert(key.clone(), value.clone());
        }
    }
    services.create_and_start(pipe).await
}

/// Waits until `waves` waves of distinct ids have landed.
async fn waves_landed(clickhouse: &ClickHouse, waves: u64, what: &str, timeout_secs: u64) {
    eventually(what, Duration::from_secs(timeout_secs), || async {
        landed(clickhouse).await.1 >= waves * PER_WAVE as u64
    })
    .await;
}

/// The pipe's status and its last scheduling decision's message.
async fn last_decision(services: &Services, pipe: &str) -> (serde_json::Value, String) {
    let status = services.status(pipe).await;
    let decision = status["lastSchedulingDecision"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, decision)
}

/// (rows, distinct ids)
async fn landed(clickhouse: &ClickHouse) -> (u64, u64) {
    let text = clickhouse
        .query("SELECT count(), uniqExact(id) FROM events FORMAT TSV")
        .await
        .unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0));
    (fields.next().unwrap_or(0), fields.next().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clickhouse_outage_loses_nothing() {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start().await;
    let topic = format!("faults-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 4).await;
    let pipe = start_pipe(&services, &clickhouse, &topic, "faults").await;

    // Wave 0 lands normally.
    wave(&topic, 0, Duration::ZERO);
    waves_landed(&clickhouse, 1, "wave 0", 120).await;

    // ClickHouse goes away while wave 1 is produced, then comes back.
    stack(&["stop", "clickhouse"]);
    wave(&topic, 1, Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = services.status(&pipe).await;
    println!("status during the outage: {status}");
    stack(&["up", "clickhouse"]);
    waves_landed(&clickhouse, 2, "wave 1 after the outage", 180).await;
    let (rows, distinct) = landed(&clickhouse).await;
    println!(
        "after the ClickHouse outage: {rows} rows, {distinct} distinct, {} duplicates",
        rows - distinct
    );

    let range = clickhouse
        .query("SELECT min(id), max(id) FROM events FORMAT TSV")
        .await
        .unwrap();
    assert_eq!(range.trim(), format!("0\t{}", 2 * PER_WAVE - 1));
    eventually(
        "the pipe to be Running again",
        Duration::from_secs(60),
        || async { services.status(&pipe).await["state"] == "Running" },
    )
    .await;
}

/// The worker is killed mid-stream and a new one started: the replica's
/// lease expires, the new worker takes it over and resumes from the
/// committed offsets. Only rows in flight at the kill may land twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_kill_loses_nothing() {
    let clickhouse = ClickHouse::create().await;
    let mut services = Services::start().await;
    let topic = format!("kill-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 4).await;
    let pipe = start_pipe(&services, &clickhouse, &topic, "kill").await;
    wave(&topic, 0, Duration::ZERO);
    wave(&topic, 1, Duration::ZERO);
    waves_landed(&clickhouse, 2, "waves 0 and 1", 120).await;

    // The worker is killed while wave 2 is consumed; a new one takes over
    // once the dead one's leases expire.
    let producer_thread = {
        let topic = topic.clone();
        std::thread::spawn(move || wave(&topic, 2, Duration::from_millis(400)))
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    services.kill_worker();
    let at_kill = landed(&clickhouse).await;
    producer_thread.join().unwrap();
    assert!(
        at_kill.1 < 3 * PER_WAVE as u64,
        "the kill happened mid-stream"
    );
    services.start_worker();
    waves_landed(&clickhouse, 3, "wave 2 after the kill", 180).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rows, distinct) = landed(&clickhouse).await;
    println!(
        "after SIGKILL: {rows} rows, {distinct} distinct, {} duplicates (distinct ids at the kill: {})",
        rows - distinct,
        at_kill.1
    );
    assert_eq!(distinct, 3 * PER_WAVE as u64, "no id is missing");
    let range = clickhouse
        .query("SELECT min(id), max(id) FROM events FORMAT TSV")
        .await
        .unwrap();
    assert_eq!(range.trim(), format!("0\t{}", 3 * PER_WAVE - 1));
    // Waves 0 and 1 were acknowledged and committed well before the kill:
    // only wave 2, in flight at the kill, may be read twice.
    let duplicated_before_the_kill = clickhouse
        .query(&format!(
            "SELECT count() FROM (SELECT id FROM events WHERE id < {} GROUP BY id HAVING count() > 1) FORMAT TSV",
            2 * PER_WAVE
        ))
        .await
        .unwrap();
    assert_eq!(duplicated_before_the_kill.trim(), "0");
    eventually(
        "the pipe to be Running again",
        Duration::from_secs(60),
        || async { services.status(&pipe).await["state"] == "Running" },
    )
    .await;
}

/// SIGSTOP the worker running a pipe's replica: after 10 s of silence the
/// scheduler moves the replica to another worker under a new epoch, and
/// ingestion goes on there. SIGCONT the paused worker: its renewal fails,
/// and it stops the replica without inserting or committing what it held
/// (fencing) — no row lands twice because of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_worker_commits_nothing_once_resumed() {
    let clickhouse = ClickHouse::create().await;
    let mut services = Services::start().await;
    let topic = format!("pause-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 4).await;
    let pipe = start_pipe(&services, &clickhouse, &topic, "pause").await;
    wave(&topic, 0, Duration::from_millis(100));
    waves_landed(&clickhouse, 1, "the first wave", 60).await;

    services.start_extra_worker();
    services.signal_worker("STOP");
    wave(&topic, 1, Duration::from_millis(200));
    waves_landed(&clickhouse, 2, "the second wave, on the other worker", 90).await;
    let (status, decision) = last_decision(&services, &pipe).await;
    assert!(decision.contains("silent"), "{status}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rows_before, _) = landed(&clickhouse).await;
    services.signal_worker("CONT");
    // Let the resumed worker find its lease gone and the group settle.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rows_after_resume, _) = landed(&clickhouse).await;
    assert_eq!(
        rows_after_resume, rows_before,
        "the resumed worker inserted nothing"
    );
    wave(&topic, 2, Duration::from_millis(100));
    waves_landed(&clickhouse, 3, "the third wave", 60).await;
    let (rows, distinct) = landed(&clickhouse).await;
    println!("pause: {rows} rows, {distinct} distinct");
    assert_eq!(distinct, 3 * PER_WAVE as u64, "nothing lost");
}

/// SIGKILL the leading scheduler: the standby takes the lock over and goes
/// on placing — here, moving the replica of a worker then killed too —
/// while records flow; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_standby_scheduler_takes_over() {
    let clickhouse = ClickHouse::create().await;
    let mut services = Services::start().await;
    let topic = format!("standby-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 4).await;
    let pipe = start_pipe(&services, &clickhouse, &topic, "standby").await;
    wave(&topic, 0, Duration::from_millis(100));
    waves_landed(&clickhouse, 1, "the first wave", 60).await;
    services.start_standby_scheduler();
    tokio::time::sleep(Duration::from_secs(2)).await;
    services.kill_scheduler();
    services.kill_worker();
    services.start_worker();
    wave(&topic, 1, Duration::from_millis(200));
    waves_landed(&clickhouse, 2, "the second wave", 90).await;
    let (status, decision) = last_decision(&services, &pipe).await;
    assert!(
        decision.contains("silent"),
        "the standby moved the replica: {status}"
    );
    let (rows, distinct) = landed(&clickhouse).await;
    println!("standby: {rows} rows, {distinct} distinct");
    assert_eq!(distinct, 2 * PER_WAVE as u64, "nothing lost");
}

/// The pipe's replicas and the workers they run on, once `n` replicas run
/// on `n` distinct workers.
async fn running_on_distinct_workers(services: &Services, pipe: &str, n: usize) {
    eventually(
        &format!("{n} replicas running on {n} workers"),
        Duration::from_secs(60),
        || async {
            let status = services.status(pipe).await;
            let placements = status["placements"].as_array().cloned().unwrap_or_default();
            let running: std::collections::HashSet<String> = placements
                .iter()
                .filter(|p| p["status"] == "running")
                .map(|p| p["workerId"].as_str().unwrap_or_default().to_owned())
                .collect();
            placements.len() == n && running.len() == n
        },
    )
    .await;
}

/// Scaling 1 → 3 → 1 while records flow: replicas above the count start
/// and stop, the others keep running (no new generation), the consumer
/// group rebalances twice, and every record lands; every partition's
/// committed offset reaches its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scaling_while_ingesting_loses_nothing() {
    let clickhouse = ClickHouse::create().await;
    let mut services = Services::start().await;
    services.start_extra_worker();
    services.start_extra_worker();
    let topic = format!("scale-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 6).await;
    let pipe = start_pipe(&services, &clickhouse, &topic, "scale").await;
    wave(&topic, 0, Duration::from_millis(100));
    waves_landed(&clickhouse, 1, "the first wave", 60).await;
    let generation = services.status(&pipe).await["generation"].clone();

    let scale = |replicas: u32| {
        let services = &services;
        let pipe = pipe.clone();
        async move {
            let (code, body) = services
                .call(
                    reqwest::Method::PATCH,
                    &format!("/v1/pipes/{pipe}/scaling"),
                    Some(json!({"replicas": replicas})),
                )
                .await;
            assert_eq!(code, 200, "{body}");
        }
    };
    let producer_thread = {
        let topic = topic.clone();
        std::thread::spawn(move || {
            wave(&topic, 1, Duration::from_millis(500));
            wave(&topic, 2, Duration::from_millis(500));
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    scale(3).await;
    running_on_distinct_workers(&services, &pipe, 3).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    scale(1).await;
    running_on_distinct_workers(&services, &pipe, 1).await;
    producer_thread.join().unwrap();
    wave(&topic, 3, Duration::from_millis(100));
    waves_landed(&clickhouse, 4, "every wave after scaling up and down", 120).await;

    let status = services.status(&pipe).await;
    assert_eq!(status["generation"], generation, "scaling restarts nothing");
    let (rows, distinct) = landed(&clickhouse).await;
    println!("scaling 1 → 3 → 1: {rows} rows, {distinct} distinct");
    assert_eq!(distinct, 4 * PER_WAVE as u64, "nothing lost");
    let group = format!("sluice-{pipe}");
    eventually(
        "every partition committed to its end",
        Duration::from_secs(30),
        || async {
            let topic = topic.clone();
            let group = group.clone();
            tokio::task::spawn_blocking(move || sluice_e2e::committed_and_end(&topic, &group, 6))
                .await
                .unwrap()
                .iter()
                .all(|(committed, end)| committed == end)
        },
    )
    .await;
}

/// The pipe's events of `kind`, oldest first.
async fn events_of(services: &Services, pipe: &str, kind: &str) -> Vec<String> {
    let (_, body) = services
        .call(
            reqwest::Method::GET,
            &format!("/v1/pipes/{pipe}/events?limit=100"),
            None,
        )
        .await;
    let mut messages: Vec<String> = body["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["kind"] == kind)
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    messages.reverse();
    messages
}

/// A burst the single replica cannot keep up with (a materialized view
/// makes every insert take 0.3 s more) scales the pipe up on lag; once the
/// backlog is drained it scales back down to its minimum. Each decision is
/// an `autoscaled` event with its reason, and nothing is lost. The policy's
/// thresholds are shortened so the test takes a minute and a half.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lag_burst_autoscales_up_and_back_down() {
    let clickhouse = ClickHouse::create().await;
    let mut services = Services::start_with(&[
        ("SLUICE_AUTOSCALE_UP_LAG_SECS", "3"),
        ("SLUICE_AUTOSCALE_SUSTAIN_UP_SECS", "2"),
        ("SLUICE_AUTOSCALE_COOLDOWN_UP_SECS", "10"),
        ("SLUICE_AUTOSCALE_DOWN_LAG_SECS", "1"),
        ("SLUICE_AUTOSCALE_SUSTAIN_DOWN_SECS", "8"),
        ("SLUICE_AUTOSCALE_COOLDOWN_DOWN_SECS", "12"),
    ])
    .await;
    services.start_extra_worker();
    services.start_extra_worker();
    let topic = format!("burst-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 6).await;
    let pipe = start_pipe_with(
        &services,
        &clickhouse,
        &topic,
        "burst",
        json!({
            "scaling": {"replicas": 1, "autoscaling": {"minReplicas": 1, "maxReplicas": 3}},
            "settings": {"streaming_max_insert_wait_ms": 500, "max_insert_rows": 1000}
        }),
    )
    .await;
    wave(&topic, 0, Duration::from_millis(200));
    waves_landed(&clickhouse, 1, "the first wave", 60).await;
    // At most 1,000 rows per insert, 1 s each: about 1,000 rows/s per
    // replica, slower than the producer (about 2,000 messages/s on the
    // test broker), so lag builds while one replica reads the burst.
    clickhouse
        .query("CREATE MATERIALIZED VIEW slow_down ENGINE = Null AS SELECT sleep(1) AS pause FROM events")
        .await
        .unwrap();

    let burst_waves = 8;
    let producer_thread = {
        let topic = topic.clone();
        std::thread::spawn(move || {
            for w in 1..=burst_waves {
                wave(&topic, w, Duration::ZERO);
            }
        })
    };
    eventually(
        "the pipe to scale up on lag",
        Duration::from_secs(90),
        || async { !events_of(&services, &pipe, "autoscaled").await.is_empty() },
    )
    .await;
    producer_thread.join().unwrap();
    let up = events_of(&services, &pipe, "autoscaled").await;
    println!("scaled up: {up:?}");
    assert!(up[0].contains("above 3.0 s"), "{up:?}");
    assert!(up[0].contains("1 → 2") || up[0].contains("1 → 3"), "{up:?}");

    waves_landed(&clickhouse, burst_waves as u64 + 1, "the burst", 240).await;
    eventually(
        "the pipe to scale back down to one replica",
        Duration::from_secs(120),
        || async {
            let status = services.status(&pipe).await;
            status["replicas"]["desired"] == 1
                && events_of(&services, &pipe, "autoscaled")
                    .await
                    .last()
                    .is_some_and(|m| m.contains("below 1.0 s") && m.contains("→ 1 replicas"))
        },
    )
    .await;
    let decisions = events_of(&services, &pipe, "autoscaled").await;
    println!("autoscaling decisions: {decisions:#?}");
    let status = services.status(&pipe).await;
    assert!(
        status["lastSchedulingDecision"]["message"].is_string(),
        "{status}"
    );
    let (rows, distinct) = landed(&clickhouse).await;
    println!("lag burst: {rows} rows, {distinct} distinct");
    assert_eq!(
        distinct,
        (burst_waves as u64 + 1) * PER_WAVE as u64,
        "nothing lost"
    );
}

/// The live workers, as `GET /v1/workers` lists them.
async fn workers(services: &Services) -> Vec<serde_json::Value> {
    let (code, body) = services
        .call(reqwest::Method::GET, "/v1/workers", None)
        .await;
    assert_eq!(code, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

/// The scheduler runs its own workers (`SLUICE_FLEET=local`, 250 m each,
/// 1 to 3): a pipe of three replicas grows the fleet to three workers, one
/// per replica; scaled back to one replica, the fleet drains and stops the
/// workers it no longer needs, one at a time, while records keep landing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_local_fleet_follows_the_demand() {
    let clickhouse = ClickHouse::create().await;
    let services = Services::start_without_workers(&[
        ("SLUICE_FLEET", "local"),
        ("SLUICE_FLEET_MIN_WORKERS", "1"),
        ("SLUICE_FLEET_MAX_WORKERS", "3"),
        ("SLUICE_FLEET_WORKER_MILLICPU", "250"),
        ("SLUICE_FLEET_WORKER_MEMORY_MIB", "2048"),
        ("SLUICE_FLEET_SCALE_DOWN_DELAY_SECS", "3"),
    ])
    .await;
    eventually(
        "the minimum fleet of one worker",
        Duration::from_secs(30),
        || async { workers(&services).await.len() == 1 },
    )
    .await;
    let topic = format!("fleet-{}", uuid::Uuid::new_v4().simple());
    create_topic(&topic, 6).await;
    let pipe = start_pipe_with(
        &services,
        &clickhouse,
        &topic,
        "fleet",
        json!({"scaling": {"replicas": 3}}),
    )
    .await;
    running_on_distinct_workers(&services, &pipe, 3).await;
    let fleet = workers(&services).await;
    assert_eq!(fleet.len(), 3, "{fleet:?}");
    wave(&topic, 0, Duration::from_millis(100));
    waves_landed(&clickhouse, 1, "the first wave on three workers", 60).await;

    let producer_thread = {
        let topic = topic.clone();
        std::thread::spawn(move || wave(&topic, 1, Duration::from_millis(800)))
    };
    let (code, body) = services
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/pipes/{pipe}/scaling"),
            Some(json!({"replicas": 1})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    eventually(
        "the fleet to shrink to one worker",
        Duration::from_secs(90),
        || async { workers(&services).await.len() == 1 },
    )
    .await;
    producer_thread.join().unwrap();
    running_on_distinct_workers(&services, &pipe, 1).await;
    wave(&topic, 2, Duration::from_millis(100));
    waves_landed(&clickhouse, 3, "every wave after the fleet shrank", 90).await;
    let (rows, distinct) = landed(&clickhouse).await;
    println!("local fleet 1 → 3 → 1 workers: {rows} rows, {distinct} distinct");
    assert_eq!(distinct, 3 * PER_WAVE as u64, "nothing lost");
}
