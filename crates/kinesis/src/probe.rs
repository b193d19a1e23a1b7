//! Looking at Kinesis before a pipe exists: do the credentials work, which
//! streams are there, what do a stream's records look like. Used by the API
//! for the web wizard.

use aws_sdk_kinesis::types::ShardIteratorType;
use chrono::{DateTime, Utc};

use crate::reader::describe;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub name: String,
    pub status: Option<String>,
    pub open_shards: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampledRecord {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    pub arrived_at: Option<DateTime<Utc>>,
}

/// Streams described one by one after listing; beyond this many the list
/// carries names only, so a large account still answers quickly.
const DESCRIBED_STREAMS: usize = 50;

/// Shards read for a sample, and GetRecords calls per shard: a sample is a
/// look, not a scan.
const SAMPLED_SHARDS: usize = 8;
const READS_PER_SHARD: usize = 5;

/// How many streams the credentials can see: proves the endpoint answers and
/// accepts them.
pub async fn check(client: &aws_sdk_kinesis::Client) -> Result<usize, String> {
    Ok(stream_names(client).await?.len())
}

async fn stream_names(client: &aws_sdk_kinesis::Client) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut request = client.list_streams();
        if let Some(token) = &next {
            request = request.next_token(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("ListStreams: {}", describe(&e)))?;
        names.extend(response.stream_names);
        next = response.next_token.filter(|_| response.has_more_streams);
        if next.is_none() {
            names.sort();
            return Ok(names);
        }
    }
}

/// The account's streams by name, the first ones with their status and
/// open shard count.
pub async fn list_streams(client: &aws_sdk_kinesis::Client) -> Result<Vec<StreamInfo>, String> {
    let names = stream_names(client).await?;
    let mut streams = Vec::with_capacity(names.len());
    for (index, name) in names.into_iter().enumerate() {
        let mut info = StreamInfo {
            name,
            status: None,
            open_shards: None,
        };
        if index < DESCRIBED_STREAMS {
            // A stream deleted between the two calls is still listed, with
            // no details.
            if let Ok(summary) = client
                .describe_stream_summary()
                .stream_name(&info.name)
                .send()
                .await
            {
                if let Some(description) = summary.stream_description_summary {
                    info.status = Some(description.stream_status.as_str().to_owned());
                    info.open_shards = Some(description.open_shard_count);
                }
            }
        }
        streams.push(info);
    }
    Ok(streams)
}

/// Up to `limit` records, newest first, from the oldest end of the stream's
/// first shards (Kinesis cannot read "the last N records"; this is what a
/// pipe starting at TRIM_HORIZON reads first).
pub async fn sample(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    limit: usize,
) -> Result<Vec<SampledRecord>, String> {
    let shards = crate::reader::list_shards(client, stream).await?;
    let per_call = i32::try_from(limit.clamp(1, 10_000)).unwrap_or(10_000);
    let mut records = Vec::new();
    for (shard_id, _) in shards.into_iter().take(SAMPLED_SHARDS) {
        let iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(&shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| format!("GetShardIterator {shard_id}: {}", describe(&e)))?
            .shard_iterator;
        let mut iterator = iterator;
        let mut taken = 0;
        for _ in 0..READS_PER_SHARD {
            let Some(current) = iterator.take() else {
                break;
            };
            let response = client
                .get_records()
                .shard_iterator(current)
                .limit(per_call)
                .send()
                .await
                .map_err(|e| format!("GetRecords {shard_id}: {}", describe(&e)))?;
            for record in response.records {
                taken += 1;
                records.push(SampledRecord {
                    shard_id: shard_id.clone(),
                    sequence_number: record.sequence_number,
                    partition_key: record.partition_key.unwrap_or_default(),
                    data: record.data.into_inner(),
                    arrived_at: record
                        .approximate_arrival_timestamp
                        .and_then(|t| DateTime::from_timestamp_millis(t.to_millis().ok()?)),
                });
            }
            let caught_up = response.millis_behind_latest.is_none_or(|m| m == 0);
            if taken >= limit || caught_up {
                break;
            }
            iterator = response.next_shard_iterator;
        }
    }
    records.sort_by(|a, b| {
        b.arrived_at
            .cmp(&a.arrived_at)
            .then_with(|| b.sequence_number.len().cmp(&a.sequence_number.len()))
            .then_with(|| b.sequence_number.cmp(&a.sequence_number))
    });
    records.truncate(limit);
    Ok(records)
}
