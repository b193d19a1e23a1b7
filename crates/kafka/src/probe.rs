//! Looking at a Kafka cluster before a pipe exists: can we connect and
//! authenticate, which topics are there, what do their newest messages look
//! like. Used by the API for the web wizard. Blocking (librdkafka's metadata
//! and poll calls): run it on a blocking thread.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice_model::{KafkaSource, ReplicaSize};

use crate::config::{consumer_settings, ConfigError};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The cluster could not be reached or refused us; the message says why
    /// in librdkafka's words (connection refused, SASL failure, ...).
    #[error("{0}")]
    Unreachable(String),
    #[error("the topic {0:?} does not exist")]
    NoSuchTopic(String),
    #[error("{0}")]
    Kafka(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub brokers: usize,
    pub topics: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampledMessage {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// Milliseconds since the epoch, when the message carries a timestamp.
    pub timestamp_ms: Option<i64>,
}

/// Keeps librdkafka's last complaint: its metadata call only says "timed
/// out", while the log knows "Connection refused" or "SASL authentication
/// failed".
#[derive(Default)]
struct LastComplaint {
    message: Mutex<Option<String>>,
    fatal: Mutex<bool>,
}

impl LastComplaint {
    fn take(&self) -> Option<String> {
        self.message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn gave_up(&self) -> bool {
        *self.fatal.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for LastComplaint {
    fn log(&self, level: RDKafkaLogLevel, _facility: &str, message: &str) {
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        ) {
            *self.message.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(tidy(message).to_owned());
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        use rdkafka::types::RDKafkaErrorCode as Code;
        let code = error.rdkafka_error_code();
        // Every broker refused or failed authentication: waiting longer
        // will not change the answer.
        if matches!(
            code,
            Some(Code::AllBrokersDown | Code::Authentication | Code::SaslAuthenticationFailed)
        ) {
            *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = true;
        }
        let mut message = self.message.lock().unwrap_or_else(|e| e.into_inner());
        if message.is_none() || matches!(code, Some(Code::Authentication)) {
            *message = Some(tidy(reason).to_owned());
        }
    }
}

impl ConsumerContext for LastComplaint {}

/// Drops librdkafka's thread tag (`[thrd:host:port/bootstrap]: `), which
/// means nothing to a user.
fn tidy(reason: &str) -> &str {
    match reason
        .strip_prefix("[thrd:")
        .and_then(|rest| rest.split_once("]: "))
    {
        Some((_, message)) => message,
        None => reason,
    }
}

type ProbeConsumer = BaseConsumer<LastComplaint>;

fn consumer(source: &KafkaSource) -> Result<ProbeConsumer, ProbeError> {
    // A group id is required by librdkafka's consumer, but the probe never
    // joins the group nor commits: it only reads metadata and assigns
    // partitions by hand.
    let settings: BTreeMap<&'static str, String> =
        consumer_settings(source, "sluice-probe", "sluice-probe", ReplicaSize::XS)?;
    let mut config = ClientConfig::new();
    for (key, value) in settings {
        if key != "statistics.interval.ms" {
            config.set(key, value);
        }
    }
    // Fail fast on a wrong address: one reconnect attempt pattern, short
    // socket timeouts.
    config.set("socket.connection.setup.timeout.ms", "5000");
    config.set("reconnect.backoff.max.ms", "1000");
    config
        .create_with_context(LastComplaint::default())
        .map_err(|e| ProbeError::Kafka(format!("cannot set up a Kafka client: {e}")))
}

/// Fetches metadata, giving up early once librdkafka says every broker is
/// down or authentication failed.
fn metadata(
    consumer: &ProbeConsumer,
    source: &KafkaSource,
    topic: Option<&str>,
    timeout: Duration,
) -> Result<rdkafka::metadata::Metadata, ProbeError> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt =
            Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now()));
        match consumer.fetch_metadata(topic, attempt) {
            Ok(metadata) => return Ok(metadata),
            Err(e) => {
                // Error events are served by polling; before any partition is
                // assigned this returns no message.
                let _ = consumer.poll(Duration::ZERO);
                let context = consumer.context();
                if context.gave_up() || Instant::now() >= deadline {
                    let why = context.take().unwrap_or_else(|| e.to_string());
                    return Err(ProbeError::Unreachable(format!(
                        "cannot reach the Kafka brokers at {}: {why}",
                        source.brokers
                    )));
                }
            }
        }
    }
}

pub fn check(source: &KafkaSource, timeout: Duration) -> Result<ClusterInfo, ProbeError> {
    let consumer = consumer(source)?;
    let metadata = metadata(&consumer, source, None, timeout)?;
    Ok(ClusterInfo {
        brokers: metadata.brokers().len(),
        topics: visible_topics(&metadata).count(),
    })
}

/// Internal topics (`__consumer_offsets`, ...) are not offered.
fn visible_topics(
    metadata: &rdkafka::metadata::Metadata,
) -> impl Iterator<Item = &rdkafka::metadata::MetadataTopic> {
    metadata
        .topics()
        .iter()
        .filter(|t| !t.name().starts_with("__") && t.error().is_none())
}

/// The cluster's topics by name.
pub fn list_topics(source: &KafkaSource, timeout: Duration) -> Result<Vec<TopicInfo>, ProbeError> {
    let consumer = consumer(source)?;
    let metadata = metadata(&consumer, source, None, timeout)?;
    let mut topics: Vec<TopicInfo> = visible_topics(&metadata)
        .map(|t| TopicInfo {
            name: t.name().to_owned(),
            partitions: t.partitions().len(),
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(topics)
}

/// Up to `limit` of the topic's newest messages, newest first: each
/// partition is read from just before its end, as many as the limit would
/// take from it alone, and the newest overall are kept.
pub fn sample(
    source: &KafkaSource,
    topic: &str,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<SampledMessage>, ProbeError> {
    let deadline = Instant::now() + timeout;
    let consumer = consumer(source)?;
    let metadata = metadata(&consumer, source, Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(ProbeError::NoSuchTopic(topic.to_owned()));
    }
    let mut assignment = TopicPartitionList::new();
    let mut expected = 0usize;
    let mut ends = BTreeMap::new();
    for &partition in &partitions {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, remaining.max(Duration::from_millis(500)))
            .map_err(|e| {
                ProbeError::Kafka(format!("reading the ends of {topic}/{partition}: {e}"))
            })?;
        let start = start_offset(low, high, limit);
        if start < high {
            expected += usize::try_from(high - start).unwrap_or(0);
            ends.insert(partition, high);
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(start))
                .map_err(|e| ProbeError::Kafka(e.to_string()))?;
        }
    }
    if expected == 0 {
        return Ok(Vec::new());
    }
    consumer
        .assign(&assignment)
        .map_err(|e| ProbeError::Kafka(format!("reading {topic}: {e}")))?;
    let mut messages = Vec::new();
    while messages.len() < expected && Instant::now() < deadline {
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = result.map_err(|e| ProbeError::Kafka(format!("reading {topic}: {e}")))?;
        // Messages produced after the ends were read are past the sample.
        if ends
            .get(&message.partition())
            .is_some_and(|&end| message.offset() < end)
        {
            messages.push(SampledMessage {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().unwrap_or_default().to_vec(),
                timestamp_ms: message.timestamp().to_millis(),
            });
        }
    }
    Ok(newest(messages, limit))
}

/// Where to start reading a partition holding `[low, high)` to get at most
/// its `limit` newest messages.
fn start_offset(low: i64, high: i64, limit: usize) -> i64 {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    high.saturating_sub(limit).max(low)
}

/// The `limit` newest, newest first: by timestamp where the messages have
/// one, then by offset.
fn newest(mut messages: Vec<SampledMessage>, limit: usize) -> Vec<SampledMessage> {
    messages.sort_by(|a, b| {
        b.timestamp_ms
            .cmp(&a.timestamp_ms)
            .then(b.offset.cmp(&a.offset))
            .then(a.partition.cmp(&b.partition))
    });
    messages.truncate(limit);
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_tags_are_dropped() {
        assert_eq!(
            tidy("[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect failed"),
            "127.0.0.1:1/bootstrap: Connect failed"
        );
        assert_eq!(tidy("plain"), "plain");
    }

    #[test]
    fn starts_just_before_the_end() {
        assert_eq!(start_offset(0, 100, 10), 90);
        assert_eq!(start_offset(95, 100, 10), 95);
        assert_eq!(start_offset(0, 0, 10), 0);
        assert_eq!(start_offset(5, 5, 10), 5);
        assert_eq!(start_offset(0, 3, usize::MAX), 0);
    }

    fn message(partition: i32, offset: i64, timestamp_ms: Option<i64>) -> SampledMessage {
        SampledMessage {
            partition,
            offset,
            key: None,
            value: Vec::new(),
            timestamp_ms,
        }
    }

    #[test]
    fn keeps_the_newest_across_partitions() {
        let kept = newest(
            vec![
                message(0, 1, Some(10)),
                message(1, 7, Some(30)),
                message(0, 2, Some(20)),
                message(1, 8, Some(40)),
            ],
            3,
        );
        let order: Vec<_> = kept.iter().map(|m| (m.partition, m.offset)).collect();
        assert_eq!(order, vec![(1, 8), (1, 7), (0, 2)]);
    }

    #[test]
    fn without_timestamps_the_higher_offset_is_newer() {
        let kept = newest(vec![message(0, 1, None), message(0, 2, None)], 1);
        assert_eq!(kept[0].offset, 2);
    }
}
