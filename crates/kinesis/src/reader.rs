//! Reading one shard by polling: GetShardIterator, then GetRecords in a
//! loop within the shard's limit of five calls a second, with backoff on
//! throttling and a fresh iterator when one expires. Records go to the
//! replica over a channel, tagged with the shard and the assignment epoch
//! they were read under.

use std::time::Duration;

use aws_sdk_kinesis::primitives::DateTime as AwsDateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

/// One record as the pipeline needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisRecord {
    pub data: Vec<u8>,
    pub partition_key: String,
    pub sequence_number: String,
    /// ApproximateArrivalTimestamp, in ms since the epoch.
    pub arrival_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardEvent {
    Records {
        records: Vec<KinesisRecord>,
        millis_behind_latest: Option<i64>,
    },
    /// The shard is closed and every record of it was delivered before
    /// this event.
    End,
    /// Reading stopped on an error the reader does not retry itself.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub shard_id: String,
    pub epoch: u64,
    pub event: ShardEvent,
}

/// Where a reader starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// Just after this sequence number (a checkpoint or the last record
    /// already buffered).
    After(String),
    TrimHorizon,
    Latest,
    AtTimestamp(DateTime<Utc>),
}

/// Pause between GetRecords calls when the shard is caught up: a fifth of
/// the per-shard limit stays free for a second reader during a hand-over.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Pause between calls while behind: the per-shard limit is 5 calls/s.
const BUSY_POLL: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct ShardReader {
    pub client: aws_sdk_kinesis::Client,
    pub stream: String,
    pub shard_id: String,
    pub epoch: u64,
}

impl ShardReader {
    /// An event of this reader's shard and run.
    pub(crate) fn tag(&self, event: ShardEvent) -> Tagged {
        Tagged {
            shard_id: self.shard_id.clone(),
            epoch: self.epoch,
            event,
        }
    }

    async fn iterator(&self, start: &StartAt) -> Result<Option<String>, String> {
        let mut request = self
            .client
            .get_shard_iterator()
            .stream_name(&self.stream)
            .shard_id(&self.shard_id);
        request = match start {
            StartAt::After(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence),
            StartAt::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            StartAt::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            StartAt::AtTimestamp(at) => request
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(AwsDateTime::from_millis(at.timestamp_millis())),
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("GetShardIterator {}: {}", self.shard_id, describe(&e)))?;
        Ok(response.shard_iterator)
    }

    /// Whether the shard is closed and has no record after `start`: the
    /// service gives no next iterator there.
    pub(crate) async fn ended_after(&self, start: &StartAt) -> Result<bool, String> {
        let Some(iterator) = self.iterator(start).await? else {
            return Ok(true);
        };
        let response = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(1)
            .send()
            .await
            .map_err(|e| format!("GetRecords {}: {}", self.shard_id, describe(&e)))?;
        Ok(response.records.is_empty() && response.next_shard_iterator.is_none())
    }

    /// Reads until the shard ends, the receiver goes away, or an error the
    /// reader cannot handle (reported as `ShardEvent::Failed`).
    pub async fn poll(self, start: StartAt, tx: mpsc::Sender<Tagged>) {
        let outcome = self.poll_inner(start, &tx).await;
        let event = match outcome {
            Ok(true) => ShardEvent::End,
            Ok(false) => return,
            Err(message) => ShardEvent::Failed(message),
        };
        let _ = tx.send(self.tag(event)).await;
    }

    /// Ok(true) at the shard's end, Ok(false) when the receiver is gone.
    async fn poll_inner(&self, start: StartAt, tx: &mpsc::Sender<Tagged>) -> Result<bool, String> {
        let mut last: Option<String> = None;
        let mut iterator = self.iterator(&start).await?;
        let mut backoff = BUSY_POLL;
        while let Some(current) = iterator.take() {
            let response = match self
                .client
                .get_records()
                .shard_iterator(&current)
                .limit(10_000)
                .send()
                .await
            {
                Ok(response) => response,
                Err(e) => {
                    let service = e.as_service_error();
                    if service.is_some_and(|s| s.is_provisioned_throughput_exceeded_exception())
                        || service.is_some_and(|s| s.is_kms_throttling_exception())
                    {
                        tracing::debug!(shard = %self.shard_id, ?backoff, "throttled");
                        tokio::time::sleep(jitter(backoff)).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        iterator = Some(current);
                        continue;
                    }
                    if service.is_some_and(|s| s.is_expired_iterator_exception()) {
                        let resume = last.clone().map_or(start.clone(), StartAt::After);
                        tracing::info!(shard = %self.shard_id, "iterator expired; getting a new one");
                        iterator = self.iterator(&resume).await?;
                        continue;
                    }
                    return Err(format!("GetRecords {}: {}", self.shard_id, describe(&e)));
                }
            };
            backoff = BUSY_POLL;
            let behind = response.millis_behind_latest;
            let records = user_records(response.records);
            let idle = records.is_empty();
            if let Some(record) = records.last() {
                last = Some(record.sequence_number.clone());
            }
            if !idle || behind.is_some() {
                let event = self.tag(ShardEvent::Records {
                    records,
                    millis_behind_latest: behind,
                });
                if tx.send(event).await.is_err() {
                    return Ok(false);
                }
            }
            iterator = response.next_shard_iterator;
            if iterator.is_none() {
                return Ok(true);
            }
            let caught_up = idle || behind == Some(0);
            tokio::time::sleep(if caught_up { IDLE_POLL } else { BUSY_POLL }).await;
        }
        // A closed shard read from past its end gives no iterator at all.
        Ok(true)
    }
}

/// The user records of a response: KPL aggregates unpacked.
pub(crate) fn user_records(records: Vec<aws_sdk_kinesis::types::Record>) -> Vec<KinesisRecord> {
    records
        .into_iter()
        .map(record_from)
        .flat_map(crate::kpl::deaggregate)
        .collect()
}

fn record_from(r: aws_sdk_kinesis::types::Record) -> KinesisRecord {
    KinesisRecord {
        partition_key: r.partition_key.unwrap_or_default(),
        sequence_number: r.sequence_number,
        arrival_ms: r
            .approximate_arrival_timestamp
            .and_then(|t| t.to_millis().ok()),
        data: r.data.into_inner(),
    }
}

/// Full jitter keeps readers of many shards from retrying in step.
pub(crate) fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// The service's message when there is one: the SDK's Display of an error
/// is only "service error".
pub fn describe<E, R>(e: &aws_sdk_kinesis::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("no message")
        ),
        None => format!("{}", aws_sdk_kinesis::error::DisplayErrorContext(e)),
    }
}

/// Every shard of the stream with its parents (ListShards, all pages).
pub async fn list_shards(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut shards = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let request = match &next {
            // With a token, the stream name must not be sent again.
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(stream),
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("ListShards {stream}: {}", describe(&e)))?;
        for shard in response.shards.unwrap_or_default() {
            let parents = shard
                .parent_shard_id
                .into_iter()
                .chain(shard.adjacent_parent_shard_id)
                .collect();
            shards.push((shard.shard_id, parents));
        }
        next = response.next_token;
        if next.is_none() {
            return Ok(shards);
        }
    }
}
