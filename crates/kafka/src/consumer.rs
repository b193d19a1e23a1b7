//! A member of the pipe's consumer group. Offsets are committed only when
//! the caller says the rows before them are in ClickHouse.
//!
//! Every assignment of a partition gets a new *assignment epoch*. The caller
//! tags what it buffers with the epoch it read it under, and keeps (and
//! commits) a buffer only while that epoch is current: rows read before a
//! revocation are dropped uncommitted, even if the partition came back in
//! between, because the fetch position restarts at the committed offset on
//! every assignment.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sluice_model::{KafkaSource, OffsetStrategy};

const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub topic: String,
    pub partition: i32,
}

#[derive(Default)]
pub struct Tracking {
    /// Assigned partitions and their assignment epoch.
    assigned: Mutex<std::collections::HashMap<PartitionKey, u64>>,
    next_epoch: std::sync::atomic::AtomicU64,
    stats: Mutex<ConsumerStats>,
    /// The brokers refused the credentials or could not be trusted
    /// (librdkafka reports these through the error callback, not through
    /// the messages), with librdkafka's reason.
    refusal: Mutex<Option<String>>,
}

/// Errors no retry fixes: the credentials were refused, or the brokers'
/// certificate is not trusted.
pub fn refused_for_good(error: &KafkaError, reason: &str) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            rdkafka::types::RDKafkaErrorCode::Authentication
                | rdkafka::types::RDKafkaErrorCode::SaslAuthenticationFailed
        )
    ) || reason.contains("certificate verify failed")
        || error.to_string().contains("certificate verify failed")
}

/// The latest of librdkafka's periodic statistics that Sluice reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Messages between the group's committed offset and the partition's
    /// high watermark, per assigned partition. Absent until the group has
    /// committed an offset for the partition.
    pub lag: BTreeMap<PartitionKey, i64>,
    /// Bytes fetched and waiting in librdkafka's queues: memory the replica
    /// holds besides its batch.
    pub fetch_queue_bytes: u64,
    /// Partitions of the subscribed topics, assigned here or not: the most
    /// members the group can keep busy.
    pub partitions: usize,
}

fn keys(list: &TopicPartitionList) -> impl Iterator<Item = PartitionKey> + '_ {
    list.elements().into_iter().map(|e| PartitionKey {
        topic: e.topic().to_owned(),
        partition: e.partition(),
    })
}

impl ClientContext for Tracking {
    fn error(&self, error: KafkaError, reason: &str) {
        if refused_for_good(&error, reason) {
            *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_owned());
        }
        tracing::warn!(%error, reason, "Kafka client error");
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        let assigned = self
            .assigned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut latest = ConsumerStats::default();
        for (topic, t) in &statistics.topics {
            latest.partitions += t.partitions.keys().filter(|p| **p >= 0).count();
            for (partition, p) in &t.partitions {
                let key = PartitionKey {
                    topic: topic.clone(),
                    partition: *partition,
                };
                // Statistics also list the internal partition -1 and
                // partitions this member fetched before a revocation.
                if !assigned.contains_key(&key) {
                    continue;
                }
                latest.fetch_queue_bytes += p.fetchq_size;
                if p.committed_offset >= 0 && p.hi_offset >= 0 {
                    latest
                        .lag
                        .insert(key, (p.hi_offset - p.committed_offset).max(0));
                }
            }
        }
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = latest;
    }
}

impl ConsumerContext for Tracking {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut assigned = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
            let mut revoked = 0;
            for key in keys(list) {
                revoked += usize::from(assigned.remove(&key).is_some());
            }
            tracing::info!(revoked, remaining = assigned.len(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let mut assigned = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
                let mut added = 0;
                for key in keys(list) {
                    let epoch = self
                        .next_epoch
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                        + 1;
                    assigned.insert(key, epoch);
                    added += 1;
                }
                tracing::info!(added, total = assigned.len(), "partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}

pub struct GroupMember {
    consumer: StreamConsumer<Tracking>,
}

impl GroupMember {
    pub fn new(settings: &BTreeMap<&'static str, String>) -> Result<Self, KafkaError> {
        let mut config = ClientConfig::new();
        for (key, value) in settings {
            config.set(*key, value);
        }
        let consumer = config.create_with_context(Tracking::default())?;
        Ok(GroupMember { consumer })
    }

    /// Joins the group on the pipe's topics. For `from_timestamp`, first
    /// commits, for every partition the group has no offset for yet, the
    /// first offset at or after the timestamp, so the group starts there.
    pub fn start(&self, source: &KafkaSource) -> Result<(), KafkaError> {
        if source.offset.strategy == OffsetStrategy::FromTimestamp {
            if let Some(timestamp) = source.offset.timestamp {
                tokio::task::block_in_place(|| {
                    self.seed_offsets_by_time(&source.topics, timestamp.timestamp_millis())
                })?;
            }
        }
        let topics: Vec<&str> = source.topics.iter().map(String::as_str).collect();
        self.consumer.subscribe(&topics)
    }

    fn seed_offsets_by_time(&self, topics: &[String], millis: i64) -> Result<(), KafkaError> {
        let mut all = TopicPartitionList::new();
        for topic in topics {
            let metadata = self
                .consumer
                .fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    all.add_partition(t.name(), p.id());
                }
            }
        }
        let committed = self
            .consumer
            .committed_offsets(all.clone(), METADATA_TIMEOUT)?;
        let mut wanted = TopicPartitionList::new();
        for element in committed.elements() {
            if !matches!(element.offset(), Offset::Offset(_)) {
                wanted.add_partition_offset(
                    element.topic(),
                    element.partition(),
                    Offset::Offset(millis),
                )?;
            }
        }
        if wanted.count() == 0 {
            return Ok(());
        }
        let found = self.consumer.offsets_for_times(wanted, METADATA_TIMEOUT)?;
        let mut seed = TopicPartitionList::new();
        for element in found.elements() {
            let offset = match element.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                // No message at or after the timestamp: start at the end.
                _ => {
                    let (_, high) = self.consumer.fetch_watermarks(
                        element.topic(),
                        element.partition(),
                        METADATA_TIMEOUT,
                    )?;
                    Offset::Offset(high)
                }
            };
            seed.add_partition_offset(element.topic(), element.partition(), offset)?;
        }
        match self.consumer.commit(&seed, CommitMode::Sync) {
            Ok(()) => tracing::info!(
                partitions = seed.count(),
                "starting offsets set from the timestamp"
            ),
            // Another replica got there first; its offsets stand.
            Err(e) => tracing::warn!(error = %e, "could not seed offsets by timestamp"),
        }
        Ok(())
    }

    pub(crate) fn consumer(&self) -> &StreamConsumer<Tracking> {
        &self.consumer
    }

    pub async fn recv(&self) -> Result<BorrowedMessage<'_>, KafkaError> {
        self.consumer.recv().await
    }

    /// Why the brokers refused this member for good, if they did.
    pub fn refusal(&self) -> Option<String> {
        self.consumer
            .context()
            .refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The latest statistics (librdkafka emits them every few seconds).
    pub fn stats(&self) -> ConsumerStats {
        self.consumer
            .context()
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many partitions are assigned to this member now.
    pub fn assigned_count(&self) -> usize {
        self.consumer
            .context()
            .assigned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The partition's current assignment epoch; `None` when it is not
    /// assigned to this member.
    pub fn assignment_epoch(&self, key: &PartitionKey) -> Option<u64> {
        self.consumer
            .context()
            .assigned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }

    /// Moves the partition's fetch position back to `offset`; messages
    /// already queued for it are discarded by librdkafka.
    pub fn seek(&self, key: &PartitionKey, offset: i64) -> Result<(), KafkaError> {
        tokio::task::block_in_place(|| {
            self.consumer.seek(
                &key.topic,
                key.partition,
                Offset::Offset(offset),
                Duration::from_secs(10),
            )
        })
    }

    /// The group's committed offset for the partition, if any.
    pub fn committed(&self, key: &PartitionKey) -> Result<Option<i64>, KafkaError> {
        tokio::task::block_in_place(|| {
            let mut list = TopicPartitionList::new();
            list.add_partition(&key.topic, key.partition);
            let committed = self.consumer.committed_offsets(list, METADATA_TIMEOUT)?;
            Ok(committed.elements().first().and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }))
        })
    }

    /// Commits `next offset to read` per partition, synchronously. Call only
    /// once ClickHouse has acknowledged every row before those offsets.
    pub fn commit(&self, offsets: &[(PartitionKey, i64)]) -> Result<(), KafkaError> {
        let mut list = TopicPartitionList::new();
        for (key, next) in offsets {
            list.add_partition_offset(&key.topic, key.partition, Offset::Offset(*next))?;
        }
        if list.count() == 0 {
            return Ok(());
        }
        tokio::task::block_in_place(|| self.consumer.commit(&list, CommitMode::Sync))
    }
}
