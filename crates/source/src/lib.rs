//! What a source gives the replica loop, and what the loop gives back.
//!
//! A source (a Kafka group member, a Kinesis shard-lease holder) is opened
//! at the positions committed for it, hands records to the loop with their
//! coordinates (a *key*: a partition or shard; a *position*: an offset or
//! sequence number; the *assignment epoch* the key was read under), and
//! commits positions only when the loop says ClickHouse acknowledged every
//! row before them. Batching, fencing, inserting, retries and error rows
//! belong to the loop (`sluice-worker`'s `replica` module), once for every
//! source.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::time::Instant;

pub use sluice_formats::RecordMeta;

/// One record, borrowed from the source for as long as the loop decodes it.
pub struct Record<'a, K, P> {
    pub key: &'a K,
    /// The assignment epoch the key was read under. The loop keeps (and
    /// commits) what it buffered for a key only while the epoch is current.
    pub epoch: u64,
    pub position: P,
    pub payload: &'a [u8],
    pub meta: RecordMeta<'a>,
}

/// The contiguous range of one key that ClickHouse acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked<K, P> {
    pub key: K,
    pub epoch: u64,
    pub first: P,
    pub last: P,
}

/// What a poll brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// Records were handed to the loop.
    Records,
    /// Insert what is buffered now (a shard was read to its end: its
    /// children wait for its last checkpoint).
    FlushSoon,
    /// Nothing before the deadline.
    Idle,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Reading failed in a way the source retries itself (a broker or the
    /// stream unreachable, a topic that does not exist yet): the replica
    /// shows it and keeps running until the source failure limit.
    #[error("{0}")]
    Transient(String),
    /// The source must be opened again from the committed positions (a
    /// commit failed, the group could not be joined).
    #[error("{0}")]
    Broken(String),
    /// Only a change to the pipe can fix it (its configuration).
    #[error("{0}")]
    Permanent(String),
}

/// A replica's lag in its source's unit; `None` while unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// Kafka: messages between the committed offsets and the partitions' ends.
    Messages(Option<i64>),
    /// Kinesis: MillisBehindLatest of the replica's furthest-behind shard.
    Millis(Option<i64>),
}

/// A per-key gauge (`sluice_consumer_lag_messages{topic,partition}`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyGauge {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gauges {
    pub lag: Lag,
    /// Bytes the source holds besides the loop's batch (fetch queues).
    pub buffered_bytes: u64,
    /// Partitions or shards still to read: the most replicas that can be
    /// kept busy.
    pub units: Option<usize>,
    pub per_key: Vec<KeyGauge>,
}

/// Where the error table says a record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCoordinates {
    /// `topic`, or `stream/shard/sequence number`.
    pub source: String,
    pub partition: i64,
    /// The Kafka offset; -1 for Kinesis (the sequence number is in `source`).
    pub offset: i64,
}

impl ErrorCoordinates {
    /// The coordinates of a record as the source handed it over; the same
    /// as `Source::error_coordinates` of its key and position.
    pub fn of(key: &impl Display, meta: &RecordMeta<'_>) -> Self {
        match meta.sequence_number {
            Some(sequence_number) => ErrorCoordinates {
                source: format!("{}/{key}/{sequence_number}", meta.topic),
                partition: i64::from(meta.partition),
                offset: -1,
            },
            None => ErrorCoordinates {
                source: meta.topic.to_owned(),
                partition: i64::from(meta.partition),
                offset: meta.offset,
            },
        }
    }
}

/// Where a source hands its records: the loop's batch.
pub type Accept<'f, K, P> = dyn FnMut(Record<'_, K, P>) + Send + 'f;

pub trait Source: Send + Sync {
    /// A partition (`topic/3`) or a shard (`shardId-000000000003`).
    type Key: Ord + Clone + Debug + Display + Send + Sync + 'static;
    /// An offset or a sequence number.
    type Position: Clone + Debug + Display + Send + Sync + 'static;

    /// The `source` label of the replica's metrics.
    fn kind(&self) -> &'static str;

    /// Waits until `until` at the latest for records and hands each to
    /// `accept`, in order within a key. Cancel-safe only in the sense that
    /// a dropped poll loses no record the loop accepted: the loop drops it
    /// only when the replica stops.
    fn poll(
        &mut self,
        until: Instant,
        accept: &mut Accept<'_, Self::Key, Self::Position>,
    ) -> impl Future<Output = Result<Polled, SourceError>> + Send;

    /// The key's current assignment epoch; `None` once it is not this
    /// replica's any more.
    fn epoch(&self, key: &Self::Key) -> Option<u64>;

    /// Records that ClickHouse acknowledged everything in `acked`. Ranges
    /// of keys whose epoch changed since are skipped: their new owner
    /// reads them again. Returns the keys whose range was committed.
    fn commit(
        &mut self,
        acked: Vec<Acked<Self::Key, Self::Position>>,
    ) -> impl Future<Output = Result<Vec<Self::Key>, SourceError>> + Send;

    fn gauges(&self) -> Gauges;

    fn error_coordinates(&self, key: &Self::Key, position: &Self::Position) -> ErrorCoordinates;

    /// Stops reading and gives back what the source holds (readers, group
    /// membership). Nothing is committed.
    fn close(self) -> impl Future<Output = ()> + Send;
}
