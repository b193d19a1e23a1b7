//! A Kafka replica: a member of the pipe's consumer group feeding the shared
//! pipeline, committing offsets only after ClickHouse acknowledged the rows
//! (and the error rows) before them.
//!
//! Any failure to insert drops the whole consumer and its unacknowledged
//! batch without committing; the replica rejoins after a backoff and
//! re-reads from the committed offsets, so nothing is lost (rows whose
//! insert succeeded but whose commit did not are inserted again:
//! at-least-once). Rows of a partition read under an assignment that has
//! since been revoked are dropped uncommitted, for the partition's next
//! owner to read (see `sluice_kafka::consumer`).

use std::collections::HashMap;
use std::time::Duration;

use sluice_formats::RecordMeta;
use sluice_kafka::{GroupMember, Headers, Message, PartitionKey};
use sluice_model::{PipeSpec, Source};
use sluice_store::ReplicaStatus;

use crate::pipeline::{Coordinates, Pipeline, RunError};
use crate::replica::{Failing, Lag, Loaded, Replica, GAUGE_INTERVAL};

type KafkaPipeline = Pipeline<PartitionKey, i64>;

/// The next offset expected from a partition under an assignment.
struct Position {
    epoch: u64,
    next: i64,
    accepted_gap: Option<(i64, i64)>,
}

pub async fn run(replica: &Replica, loaded: Loaded, failing: &mut Failing) -> Result<(), RunError> {
    let Loaded {
        pipe,
        spec,
        prepared,
    } = loaded;
    let Source::Kafka(source) = &spec.source else {
        return Err(RunError::Permanent("not a Kafka pipe".into()));
    };
    let group = source
        .consumer_group
        .clone()
        .unwrap_or_else(|| PipeSpec::default_consumer_group(pipe.id));
    let client_id = format!("sluice-{}-{}", pipe.id, replica.lease.replica);
    let size = spec.scaling.replica_size;
    let settings = sluice_kafka::consumer_settings(source, &group, &client_id, size)
        .map_err(|e| RunError::Permanent(e.to_string()))?;
    let member = GroupMember::new(&settings)
        .map_err(|e| RunError::Permanent(format!("Kafka client: {e}")))?;
    member
        .start(source)
        .map_err(|e| RunError::Source(format!("joining the consumer group: {e}")))?;
    replica.set(ReplicaStatus::Running, None);
    tracing::info!(group = %group, table = %prepared.table, "replica running");

    let mut pipeline = Pipeline::new(
        pipe.id,
        &spec,
        prepared,
        "kafka",
        replica.lease.replica,
        size.max_kafka_message_bytes(),
        replica.counters.clone(),
    );
    let mut positions: HashMap<PartitionKey, Position> = HashMap::new();
    let mut gauge_tick = tokio::time::interval(GAUGE_INTERVAL);
    loop {
        let wait = pipeline.wait();
        tokio::select! {
            _ = replica.cancel.cancelled() => {
                // A graceful stop inserts and commits what it holds.
                if let Err(e) = flush(&mut pipeline, &member, replica).await {
                    tracing::warn!(error = ?e, "final flush failed; the rows will be read again");
                }
                return Ok(());
            }
            message = member.recv() => match message {
                Ok(message) => {
                    failing.source = None;
                    add(&mut pipeline, &mut positions, &member, &message);
                }
                Err(e) => {
                    replica.source_failed(failing, e.to_string())?;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = tokio::time::sleep(wait) => {}
            _ = gauge_tick.tick() => refresh_gauges(replica, &member, &pipeline),
        }
        if pipeline.due() {
            flush(&mut pipeline, &member, replica).await?;
            failing.destination = None;
            replica.set(ReplicaStatus::Running, None);
        }
    }
}

fn refresh_gauges(replica: &Replica, member: &GroupMember, pipeline: &KafkaPipeline) {
    let stats = member.stats();
    // Lag is known once every assigned partition has a committed offset.
    let lag = (!stats.lag.is_empty() && stats.lag.len() == member.assigned_count())
        .then(|| stats.lag.values().sum());
    for (key, lag) in &stats.lag {
        pipeline.metrics.key_gauge(
            "sluice_consumer_lag_messages",
            &[
                ("topic", key.topic.clone()),
                ("partition", key.partition.to_string()),
            ],
            *lag as f64,
        );
    }
    replica.publish_gauges(
        &pipeline.metrics,
        Lag::Messages(lag),
        pipeline.bytes + stats.fetch_queue_bytes,
        (stats.partitions > 0).then_some(stats.partitions),
    );
}

fn add(
    pipeline: &mut KafkaPipeline,
    positions: &mut HashMap<PartitionKey, Position>,
    member: &GroupMember,
    message: &sluice_kafka::BorrowedMessage<'_>,
) {
    let key = PartitionKey {
        topic: message.topic().to_owned(),
        partition: message.partition(),
    };
    let Some(epoch) = member.assignment_epoch(&key) else {
        // Left in the queue from before a revocation: its next owner reads it.
        tracing::debug!(topic = %key.topic, partition = key.partition, offset = message.offset(), "skipped a message of an unassigned partition");
        return;
    };
    if !continuous(pipeline, positions, member, &key, epoch, message.offset()) {
        return;
    }
    let payload = message.payload().unwrap_or_default();
    let headers: Vec<(&str, Option<&[u8]>)> = message
        .headers()
        .map(|h| h.iter().map(|header| (header.key, header.value)).collect())
        .unwrap_or_default();
    let meta = RecordMeta {
        key: message.key(),
        timestamp_ms: message.timestamp().to_millis(),
        partition: message.partition(),
        offset: message.offset(),
        topic: message.topic(),
        headers,
        sequence_number: None,
    };
    let coordinates = Coordinates {
        source: &[message.topic()],
        partition: i64::from(message.partition()),
        offset: message.offset(),
    };
    pipeline.add(&key, epoch, message.offset(), payload, &meta, &coordinates);
}

/// Guards against the consumer skipping offsets. librdkafka was seen
/// (against tansu, across cooperative rebalances) to resume a partition
/// past messages it had fetched but not delivered; committing after such a
/// jump would lose them. On a jump the partition is sought back to the
/// expected offset once; if the same jump repeats, the gap is real
/// (compaction, transaction markers) and is accepted.
fn continuous(
    pipeline: &KafkaPipeline,
    positions: &mut HashMap<PartitionKey, Position>,
    member: &GroupMember,
    key: &PartitionKey,
    epoch: u64,
    offset: i64,
) -> bool {
    let expected = match positions.get(key) {
        Some(position) if position.epoch == epoch => Some(position.next),
        // First message under this assignment: it must start where the
        // group committed.
        _ => match member.committed(key) {
            Ok(committed) => committed,
            Err(e) => {
                tracing::warn!(error = %e, "reading the committed offset failed; trusting the consumer");
                None
            }
        },
    };
    let position = positions.entry(key.clone()).or_insert(Position {
        epoch,
        next: offset,
        accepted_gap: None,
    });
    if position.epoch != epoch {
        *position = Position {
            epoch,
            next: offset,
            accepted_gap: None,
        };
    }
    if expected.is_some_and(|e| offset < e) && pipeline.holds(key, epoch) {
        // Already buffered under this assignment (a replay after a seek).
        return false;
    }
    if let Some(expected) = expected.filter(|&e| offset > e) {
        if position.accepted_gap != Some((expected, offset)) {
            tracing::warn!(topic = %key.topic, partition = key.partition, expected, got = offset, "the consumer skipped offsets; seeking back");
            position.accepted_gap = Some((expected, offset));
            position.next = expected;
            if let Err(e) = member.seek(key, expected) {
                tracing::warn!(error = %e, "seeking back failed");
            }
            return false;
        }
        tracing::info!(topic = %key.topic, partition = key.partition, from = expected, to = offset, "accepting a gap in the partition's offsets");
    }
    position.next = offset + 1;
    true
}

/// Inserts the batch and commits, per partition still assigned under the
/// epoch its rows were read with, the offset after its last row — only
/// while the replica's lease is still this run's (fencing: a replica the
/// scheduler moved, or whose worker was paused past its lease, commits
/// nothing and stops; its successor reads from the committed offsets).
async fn flush(
    pipeline: &mut KafkaPipeline,
    member: &GroupMember,
    replica: &Replica,
) -> Result<(), RunError> {
    pipeline.drop_stale(|key| member.assignment_epoch(key));
    if !replica.lease_held().await? {
        pipeline.drop_stale(|_| None);
        return Ok(());
    }
    let flushed = pipeline.insert().await?;
    if flushed.is_empty() {
        return Ok(());
    }
    if !replica.lease_held().await? {
        // Inserted but not committed: the successor inserts these rows
        // again (at least once), nothing is lost.
        return Ok(());
    }
    let committed: Vec<String> = flushed
        .iter()
        .map(|f| {
            format!(
                "{}/{}:{}..{}",
                f.key.topic,
                f.key.partition,
                f.first,
                f.last + 1
            )
        })
        .collect();
    let offsets: Vec<(PartitionKey, i64)> = flushed
        .into_iter()
        .filter(|f| member.assignment_epoch(&f.key) == Some(f.epoch))
        .map(|f| (f.key, f.last + 1))
        .collect();
    tracing::debug!(?committed, "committing");
    member.commit(&offsets).map_err(|e| {
        RunError::Source(format!("committing offsets after a successful insert: {e}"))
    })?;
    Ok(())
}
