//! Enhanced fan-out: one registered stream consumer per pipe, and a shard
//! reader that keeps a SubscribeToShard subscription going — renewing it
//! when the service ends it (every 5 minutes) or it fails — and reports the
//! same events as the polling reader.
//!
//! AWS allows one SubscribeToShard call per second per shard and consumer;
//! a reader never calls sooner than that after its previous call, and the
//! replica's rotation keeps a shard with one reader for at least a slice
//! (2 s or more), so hand-overs inside a replica stay within the limit. A
//! subscription still open elsewhere (a replica that lost the shard, a
//! subscription the service has not yet closed) answers ResourceInUse: the
//! reader waits and tries again.

use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::DateTime as AwsDateTime;
use aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError;
use aws_sdk_kinesis::types::{
    ConsumerStatus, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
};
use tokio::sync::mpsc;

use crate::reader::{describe, jitter, user_records, ShardEvent, ShardReader, StartAt, Tagged};

/// The consumer a pipe registers on its stream. Stable, so every replica
/// of the pipe and every restart find the same one.
pub fn consumer_name(pipe_id: impl std::fmt::Display) -> String {
    format!("sluice-{pipe_id}")
}

/// How long registration may take before the replica reports it failing.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(120);
const MIN_SUBSCRIBE_GAP: Duration = Duration::from_millis(1100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often a caught-up subscription checks, by one GetRecords call,
/// whether its shard was closed. AWS ends the subscription to a closed
/// shard with its child shards; emulators may not, and a shard whose end
/// goes unnoticed keeps its children from ever being read.
const END_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// Consecutive subscriptions that fail before delivering anything, after
/// which the reader gives up and lets the replica count the failure.
const MAX_FAILED_SUBSCRIPTIONS: u32 = 8;

async fn stream_arn(client: &aws_sdk_kinesis::Client, stream: &str) -> Result<String, String> {
    let summary = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| format!("DescribeStreamSummary {stream}: {}", describe(&e)))?;
    summary
        .stream_description_summary
        .map(|s| s.stream_arn)
        .ok_or_else(|| format!("DescribeStreamSummary {stream}: no stream description"))
}

/// Finds the pipe's consumer or registers it, and waits until it is
/// ACTIVE. Returns its ARN. Several replicas may call this at once: a
/// registration that loses the race (ResourceInUse) finds the winner's.
pub async fn ensure_consumer(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    name: &str,
) -> Result<String, String> {
    let stream_arn = stream_arn(client, stream).await?;
    let deadline = Instant::now() + REGISTER_TIMEOUT;
    let mut registered = false;
    loop {
        let described = client
            .describe_stream_consumer()
            .stream_arn(&stream_arn)
            .consumer_name(name)
            .send()
            .await;
        match described {
            Ok(output) => {
                if let Some(consumer) = output.consumer_description {
                    match consumer.consumer_status {
                        ConsumerStatus::Active => return Ok(consumer.consumer_arn),
                        // Being deleted (the pipe was recreated with the
                        // same id, or an operator removed it): register
                        // again once it is gone.
                        ConsumerStatus::Deleting => registered = false,
                        _ => {}
                    }
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                if !registered {
                    let registration = client
                        .register_stream_consumer()
                        .stream_arn(&stream_arn)
                        .consumer_name(name)
                        .send()
                        .await;
                    match registration {
                        Ok(_) => {
                            tracing::info!(consumer = name, "stream consumer registered");
                            registered = true;
                        }
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|s| s.is_resource_in_use_exception()) =>
                        {
                            registered = true;
                        }
                        Err(e) => {
                            return Err(format!(
                                "RegisterStreamConsumer {name} on {stream}: {}",
                                describe(&e)
                            ))
                        }
                    }
                }
            }
            Err(e) => {
                return Err(format!(
                    "DescribeStreamConsumer {name} on {stream}: {}",
                    describe(&e)
                ))
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "stream consumer {name} on {stream} did not become ACTIVE within {} s",
                REGISTER_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Removes the pipe's consumer. `Ok(false)` when there was none.
pub async fn deregister_consumer(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    name: &str,
) -> Result<bool, String> {
    let stream_arn = match stream_arn(client, stream).await {
        Ok(arn) => arn,
        // The stream itself is gone, and its consumers with it.
        Err(e) if e.contains("ResourceNotFoundException") => return Ok(false),
        Err(e) => return Err(e),
    };
    match client
        .deregister_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(format!(
            "DeregisterStreamConsumer {name} on {stream}: {}",
            describe(&e)
        )),
    }
}

/// How long removing a pipe waits for its consumer to be deregistered.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Deregisters the stream consumer a Kinesis pipe may have registered
/// (whether or not it reads through fan-out now: the switch can change).
/// Called just before the pipe is removed. An error is for the caller to
/// log: a pipe whose credentials were revoked must still be deletable.
pub async fn remove_pipe_consumer(
    spec: &sluice_model::PipeSpec,
    pipe_id: impl std::fmt::Display,
) -> Result<bool, String> {
    let sluice_model::Source::Kinesis(source) = &spec.source else {
        return Ok(false);
    };
    let name = consumer_name(&pipe_id);
    let work = async {
        let client = crate::client(source, &format!("sluice-{pipe_id}-cleanup"))
            .await
            .map_err(|e| e.to_string())?;
        deregister_consumer(&client, &source.stream_name, &name).await
    };
    tokio::time::timeout(DEREGISTER_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "deregistering stream consumer {name} took over {} s",
                DEREGISTER_TIMEOUT.as_secs()
            ))
        })
}

fn starting_position(start: &StartAt) -> Result<StartingPosition, String> {
    let builder = StartingPosition::builder();
    let builder = match start {
        StartAt::After(sequence) => builder
            .r#type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(sequence),
        StartAt::TrimHorizon => builder.r#type(ShardIteratorType::TrimHorizon),
        StartAt::Latest => builder.r#type(ShardIteratorType::Latest),
        StartAt::AtTimestamp(at) => builder
            .r#type(ShardIteratorType::AtTimestamp)
            .timestamp(AwsDateTime::from_millis(at.timestamp_millis())),
    };
    builder
        .build()
        .map_err(|e| format!("starting position {start:?}: {e}"))
}

/// What a failed subscription means for the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Throttled or still held elsewhere: wait, then subscribe again.
    Later,
    /// The consumer, stream or shard is gone, or access is refused: the
    /// replica decides (it counts the failure and may re-register).
    Never,
}

/// Classifies an error code from the SubscribeToShard call or its stream.
pub fn retry_for(code: Option<&str>) -> Retry {
    match code {
        Some(
            "ResourceNotFoundException"
            | "AccessDeniedException"
            | "InvalidArgumentException"
            | "KMSAccessDeniedException"
            | "KMSDisabledException"
            | "KMSNotFoundException"
            | "KMSOptInRequired"
            | "KMSInvalidStateException",
        ) => Retry::Never,
        // ResourceInUse, LimitExceeded, KMSThrottling, InternalFailure and
        // transport errors pass.
        _ => Retry::Later,
    }
}

/// Where the next subscription starts: after the last record delivered,
/// else after the last continuation the service gave (progress through an
/// empty stretch of the shard), else where the reader was asked to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    start: StartAt,
    last_record: Option<String>,
    continuation: Option<String>,
}

impl Resume {
    pub fn new(start: StartAt) -> Self {
        Resume {
            start,
            last_record: None,
            continuation: None,
        }
    }

    pub fn delivered(&mut self, last_record: Option<&str>, continuation: &str) {
        if let Some(last) = last_record {
            self.last_record = Some(last.to_owned());
        }
        if !continuation.is_empty() {
            self.continuation = Some(continuation.to_owned());
        }
    }

    pub fn position(&self) -> StartAt {
        match (&self.last_record, &self.continuation) {
            (Some(last), _) => StartAt::After(last.clone()),
            (None, Some(continuation)) => StartAt::After(continuation.clone()),
            (None, None) => self.start.clone(),
        }
    }

    /// Where to look for more records with GetRecords: a continuation is
    /// not always a record's sequence number, which AFTER_SEQUENCE_NUMBER
    /// iterators need.
    pub fn records_position(&self) -> StartAt {
        match &self.last_record {
            Some(last) => StartAt::After(last.clone()),
            None => self.start.clone(),
        }
    }
}

enum Ended {
    /// The subscription ended (5 minutes, or the service closed it):
    /// subscribe again.
    Renew,
    ShardEnd,
    ReceiverGone,
    Failed {
        message: String,
        retry: Retry,
        delivered: bool,
    },
}

impl ShardReader {
    /// Reads the shard through `consumer_arn` until it ends, the receiver
    /// goes away, or subscriptions keep failing.
    pub async fn subscribe(self, consumer_arn: String, start: StartAt, tx: mpsc::Sender<Tagged>) {
        let mut resume = Resume::new(start);
        let mut last_call: Option<Instant> = None;
        let mut failures = 0u32;
        let mut backoff = MIN_SUBSCRIBE_GAP;
        let event = loop {
            if let Some(at) = last_call {
                let gap = at.elapsed();
                if gap < MIN_SUBSCRIBE_GAP {
                    tokio::time::sleep(MIN_SUBSCRIBE_GAP - gap).await;
                }
            }
            last_call = Some(Instant::now());
            match self.one_subscription(&consumer_arn, &mut resume, &tx).await {
                Ended::Renew
                | Ended::Failed {
                    delivered: true, ..
                } => {
                    failures = 0;
                    backoff = MIN_SUBSCRIBE_GAP;
                }
                Ended::ShardEnd => break ShardEvent::End,
                Ended::ReceiverGone => return,
                Ended::Failed {
                    message,
                    retry,
                    delivered: false,
                } => {
                    failures += 1;
                    if retry == Retry::Never || failures >= MAX_FAILED_SUBSCRIPTIONS {
                        break ShardEvent::Failed(message);
                    }
                    tracing::debug!(shard = %self.shard_id, %message, ?backoff, "subscription failed; retrying");
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        let _ = tx.send(self.tag(event)).await;
    }

    async fn one_subscription(
        &self,
        consumer_arn: &str,
        resume: &mut Resume,
        tx: &mpsc::Sender<Tagged>,
    ) -> Ended {
        let position = resume.position();
        let starting = match starting_position(&position) {
            Ok(starting) => starting,
            Err(message) => {
                return Ended::Failed {
                    message,
                    retry: Retry::Never,
                    delivered: false,
                }
            }
        };
        let output = match self
            .client
            .subscribe_to_shard()
            .consumer_arn(consumer_arn)
            .shard_id(&self.shard_id)
            .starting_position(starting)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let code = e.as_service_error().and_then(|s| {
                    aws_sdk_kinesis::error::ProvideErrorMetadata::code(s).map(str::to_owned)
                });
                return Ended::Failed {
                    message: format!("SubscribeToShard {}: {}", self.shard_id, describe(&e)),
                    retry: retry_for(code.as_deref()),
                    delivered: false,
                };
            }
        };
        tracing::debug!(shard = %self.shard_id, ?position, "subscribed");
        let mut events = output.event_stream;
        let mut delivered = false;
        let mut end_checked: Option<Instant> = None;
        loop {
            let event = match events.recv().await {
                Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event))) => event,
                Ok(Some(other)) => {
                    tracing::debug!(shard = %self.shard_id, ?other, "unknown subscription event");
                    continue;
                }
                Ok(None) => return Ended::Renew,
                Err(e) => {
                    let (code, text) = match e.as_service_error() {
                        Some(service) => (
                            stream_error_code(service),
                            format!(
                                "{}: {}",
                                stream_error_code(service).unwrap_or("error"),
                                aws_sdk_kinesis::error::ProvideErrorMetadata::message(service)
                                    .unwrap_or("no message")
                            ),
                        ),
                        None => (
                            None,
                            format!("{}", aws_sdk_kinesis::error::DisplayErrorContext(&e)),
                        ),
                    };
                    return Ended::Failed {
                        message: format!("SubscribeToShard {} event stream: {text}", self.shard_id),
                        retry: retry_for(code),
                        delivered,
                    };
                }
            };
            let records = user_records(event.records);
            let mut at_end = event.continuation_sequence_number.is_empty()
                && event.child_shards.as_ref().is_some_and(|c| !c.is_empty());
            let caught_up = records.is_empty() && event.millis_behind_latest == 0;
            resume.delivered(
                records.last().map(|r| r.sequence_number.as_str()),
                &event.continuation_sequence_number,
            );
            delivered |= !records.is_empty();
            let tagged = self.tag(ShardEvent::Records {
                records,
                millis_behind_latest: Some(event.millis_behind_latest),
            });
            if tx.send(tagged).await.is_err() {
                return Ended::ReceiverGone;
            }
            if caught_up && !at_end && end_checked.is_none_or(|t| t.elapsed() >= END_CHECK_INTERVAL)
            {
                end_checked = Some(Instant::now());
                match self.ended_after(&resume.records_position()).await {
                    Ok(ended) => at_end = ended,
                    Err(e) => {
                        tracing::debug!(shard = %self.shard_id, error = %e, "checking for the shard's end failed")
                    }
                }
            }
            if at_end {
                return Ended::ShardEnd;
            }
        }
    }
}

fn stream_error_code(error: &SubscribeToShardEventStreamError) -> Option<&'static str> {
    Some(match error {
        SubscribeToShardEventStreamError::ResourceNotFoundException(_) => {
            "ResourceNotFoundException"
        }
        SubscribeToShardEventStreamError::ResourceInUseException(_) => "ResourceInUseException",
        SubscribeToShardEventStreamError::KmsDisabledException(_) => "KMSDisabledException",
        SubscribeToShardEventStreamError::KmsInvalidStateException(_) => "KMSInvalidStateException",
        SubscribeToShardEventStreamError::KmsAccessDeniedException(_) => "KMSAccessDeniedException",
        SubscribeToShardEventStreamError::KmsNotFoundException(_) => "KMSNotFoundException",
        SubscribeToShardEventStreamError::KmsOptInRequired(_) => "KMSOptInRequired",
        SubscribeToShardEventStreamError::KmsThrottlingException(_) => "KMSThrottlingException",
        SubscribeToShardEventStreamError::InternalFailureException(_) => "InternalFailureException",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_prefers_the_last_record_then_the_continuation() {
        let mut resume = Resume::new(StartAt::Latest);
        assert_eq!(resume.position(), StartAt::Latest);
        resume.delivered(None, "");
        assert_eq!(resume.position(), StartAt::Latest);
        resume.delivered(None, "100");
        assert_eq!(resume.position(), StartAt::After("100".into()));
        resume.delivered(Some("105"), "107");
        assert_eq!(resume.position(), StartAt::After("105".into()));
        // An empty heartbeat later does not move past the last record.
        resume.delivered(None, "110");
        assert_eq!(resume.position(), StartAt::After("105".into()));
        assert_eq!(resume.records_position(), StartAt::After("105".into()));
        let mut fresh = Resume::new(StartAt::TrimHorizon);
        fresh.delivered(None, "100");
        assert_eq!(fresh.records_position(), StartAt::TrimHorizon);
    }

    #[test]
    fn gone_resources_are_not_retried_by_the_reader() {
        assert_eq!(retry_for(Some("ResourceNotFoundException")), Retry::Never);
        assert_eq!(retry_for(Some("AccessDeniedException")), Retry::Never);
        assert_eq!(retry_for(Some("ResourceInUseException")), Retry::Later);
        assert_eq!(retry_for(Some("LimitExceededException")), Retry::Later);
        assert_eq!(retry_for(None), Retry::Later);
    }

    #[test]
    fn starting_positions_carry_their_arguments() {
        let p = starting_position(&StartAt::After("42".into())).unwrap();
        assert_eq!(p.r#type, ShardIteratorType::AfterSequenceNumber);
        assert_eq!(p.sequence_number.as_deref(), Some("42"));
        let at = chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let p = starting_position(&StartAt::AtTimestamp(at)).unwrap();
        assert_eq!(p.r#type, ShardIteratorType::AtTimestamp);
        assert_eq!(
            p.timestamp.map(|t| t.to_millis().unwrap()),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            starting_position(&StartAt::TrimHorizon).unwrap().r#type,
            ShardIteratorType::TrimHorizon
        );
    }

    #[test]
    fn consumer_names_are_stable_and_valid() {
        let name = consumer_name("6f1c0e6e-1d2b-4c8e-9a57-3f1f6c2b8d10");
        assert_eq!(name, "sluice-6f1c0e6e-1d2b-4c8e-9a57-3f1f6c2b8d10");
        assert!(name.len() <= 128);
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    }
}
