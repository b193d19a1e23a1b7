//! The Kafka source of a replica: a member of the pipe's consumer group.
//! Offsets are committed only for ranges the replica loop says ClickHouse
//! acknowledged, and only for partitions still assigned under the epoch
//! they were read with: rows of a partition read under an assignment that
//! has since been revoked are dropped uncommitted, for the partition's next
//! owner to read.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use sluice_model::{KafkaSource as KafkaSpec, PipeSpec, ReplicaSize};
use sluice_source::{
    Accept, Acked, ErrorCoordinates, Gauges, KeyGauge, Lag, Polled, Record, RecordMeta, Source,
    SourceError,
};
use uuid::Uuid;

use crate::consumer::{refused_for_good, GroupMember, PartitionKey};

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// The next offset expected from a partition under an assignment.
struct Position {
    epoch: u64,
    next: i64,
    accepted_gap: Option<(i64, i64)>,
}

pub struct KafkaSource {
    member: GroupMember,
    spec: KafkaSpec,
    positions: HashMap<PartitionKey, Position>,
}

impl KafkaSource {
    /// Joins the pipe's consumer group; reading starts at the group's
    /// committed offsets (or the pipe's starting position where it has
    /// none).
    pub fn open(
        pipe_id: Uuid,
        replica: i32,
        spec: &KafkaSpec,
        size: ReplicaSize,
    ) -> Result<Self, SourceError> {
        let group = spec
            .consumer_group
            .clone()
            .unwrap_or_else(|| PipeSpec::default_consumer_group(pipe_id));
        let client_id = format!("sluice-{pipe_id}-{replica}");
        let settings = crate::consumer_settings(spec, &group, &client_id, size)
            .map_err(|e| SourceError::Permanent(e.to_string()))?;
        let member = GroupMember::new(&settings)
            .map_err(|e| SourceError::Permanent(format!("Kafka client: {e}")))?;
        member
            .start(spec)
            .map_err(|e| SourceError::Broken(format!("joining the consumer group: {e}")))?;
        tracing::info!(%group, "joined the consumer group");
        Ok(KafkaSource {
            member,
            spec: spec.clone(),
            positions: HashMap::new(),
        })
    }

    /// Says which of the pipe's topics the brokers do not know, in words a
    /// user acts on; `None` when they all exist (the error was something
    /// else, or the topic appeared meanwhile).
    fn missing_topics(&self) -> Option<String> {
        let metadata = tokio::task::block_in_place(|| {
            self.member
                .consumer()
                .fetch_metadata(None, Duration::from_secs(5))
        })
        .ok()?;
        let known: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
        let missing: Vec<String> = self
            .spec
            .topics
            .iter()
            .filter(|t| !known.contains(&t.as_str()))
            .map(|t| format!("`{t}`"))
            .collect();
        match missing.len() {
            0 => None,
            1 => Some(format!(
                "topic {} does not exist on {} (waiting for it)",
                missing[0], self.spec.brokers
            )),
            _ => Some(format!(
                "topics {} do not exist on {} (waiting for them)",
                missing.join(", "),
                self.spec.brokers
            )),
        }
    }

    fn describe(&self, error: KafkaError) -> String {
        let unknown_topic = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        );
        if unknown_topic {
            if let Some(message) = self.missing_topics() {
                return message;
            }
        }
        error.to_string()
    }

    /// Guards against the consumer skipping offsets. librdkafka was seen
    /// (against tansu, across cooperative rebalances) to resume a partition
    /// past messages it had fetched but not delivered; committing after
    /// such a jump would lose them. On a jump the partition is sought back
    /// to the expected offset once; if the same jump repeats, the gap is
    /// real (compaction, transaction markers) and is accepted. Returns
    /// whether the message is the next one to take.
    fn continuous(
        member: &GroupMember,
        positions: &mut HashMap<PartitionKey, Position>,
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
        let fresh = Position {
            epoch,
            next: offset,
            accepted_gap: None,
        };
        let position = positions.entry(key.clone()).or_insert(fresh);
        let replay = position.epoch == epoch && offset < position.next;
        if position.epoch != epoch {
            *position = Position {
                epoch,
                next: offset,
                accepted_gap: None,
            };
        }
        if replay {
            // Already handed to the loop under this assignment (a replay
            // after a seek).
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
}

impl Source for KafkaSource {
    type Key = PartitionKey;
    type Position = i64;

    fn kind(&self) -> &'static str {
        "kafka"
    }

    async fn poll(
        &mut self,
        until: Instant,
        accept: &mut Accept<'_, PartitionKey, i64>,
    ) -> Result<Polled, SourceError> {
        let received = tokio::select! {
            message = self.member.recv() => message,
            _ = tokio::time::sleep_until(until.into()) => {
                // No retry fixes refused credentials or an untrusted
                // certificate: the pipe turns Failed with the reason
                // instead of waiting out the source failure limit.
                if let Some(reason) = self.member.refusal() {
                    return Err(SourceError::Permanent(format!(
                        "the brokers refused the connection: {reason}"
                    )));
                }
                return Ok(Polled::Idle);
            }
        };
        let message = match received {
            Ok(message) => message,
            Err(error) if refused_for_good(&error, "") => {
                return Err(SourceError::Permanent(format!(
                    "the brokers refused the connection: {}",
                    self.describe(error)
                )))
            }
            Err(error) => {
                // librdkafka reports "all brokers down" when they were
                // reached but refused the handshake; the error callback
                // kept the reason.
                if let Some(reason) = self.member.refusal() {
                    return Err(SourceError::Permanent(format!(
                        "the brokers refused the connection: {reason}"
                    )));
                }
                return Err(SourceError::Transient(self.describe(error)));
            }
        };
        let key = PartitionKey {
            topic: message.topic().to_owned(),
            partition: message.partition(),
        };
        let Some(epoch) = self.member.assignment_epoch(&key) else {
            // Left in the queue from before a revocation: its next owner
            // reads it.
            tracing::debug!(%key, offset = message.offset(), "skipped a message of an unassigned partition");
            return Ok(Polled::Records);
        };
        if !Self::continuous(
            &self.member,
            &mut self.positions,
            &key,
            epoch,
            message.offset(),
        ) {
            return Ok(Polled::Records);
        }
        let headers: Vec<(&str, Option<&[u8]>)> = message
            .headers()
            .map(|h| h.iter().map(|header| (header.key, header.value)).collect())
            .unwrap_or_default();
        accept(Record {
            key: &key,
            epoch,
            position: message.offset(),
            payload: message.payload().unwrap_or_default(),
            meta: RecordMeta {
                key: message.key(),
                timestamp_ms: message.timestamp().to_millis(),
                partition: message.partition(),
                offset: message.offset(),
                topic: message.topic(),
                headers,
                sequence_number: None,
            },
        });
        Ok(Polled::Records)
    }

    fn epoch(&self, key: &PartitionKey) -> Option<u64> {
        self.member.assignment_epoch(key)
    }

    async fn commit(
        &mut self,
        acked: Vec<Acked<PartitionKey, i64>>,
    ) -> Result<Vec<PartitionKey>, SourceError> {
        let offsets: Vec<(PartitionKey, i64)> = acked
            .into_iter()
            .filter(|a| self.member.assignment_epoch(&a.key) == Some(a.epoch))
            .map(|a| (a.key, a.last + 1))
            .collect();
        tracing::debug!(?offsets, "committing");
        self.member.commit(&offsets).map_err(|e| {
            SourceError::Broken(format!("committing offsets after a successful insert: {e}"))
        })?;
        Ok(offsets.into_iter().map(|(key, _)| key).collect())
    }

    fn gauges(&self) -> Gauges {
        let stats = self.member.stats();
        // Lag is known once every assigned partition has a committed offset.
        let lag = (!stats.lag.is_empty() && stats.lag.len() == self.member.assigned_count())
            .then(|| stats.lag.values().sum());
        let per_key = stats
            .lag
            .iter()
            .map(|(key, lag)| KeyGauge {
                name: "sluice_consumer_lag_messages",
                labels: vec![
                    ("topic", key.topic.clone()),
                    ("partition", key.partition.to_string()),
                ],
                value: *lag as f64,
            })
            .collect();
        Gauges {
            lag: Lag::Messages(lag),
            buffered_bytes: stats.fetch_queue_bytes,
            units: (stats.partitions > 0).then_some(stats.partitions),
            per_key,
        }
    }

    fn error_coordinates(&self, key: &PartitionKey, offset: &i64) -> ErrorCoordinates {
        ErrorCoordinates {
            source: key.topic.clone(),
            partition: i64::from(key.partition),
            offset: *offset,
        }
    }

    async fn close(self) {
        // Leaving the group hands the partitions over at once instead of
        // after the session timeout.
        tokio::task::block_in_place(|| self.member.consumer().unsubscribe());
    }
}
