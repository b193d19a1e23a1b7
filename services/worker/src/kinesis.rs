//! A Kinesis replica: holds shard leases (`sluice_kinesis::leases`), runs
//! up to its size's number of shard readers, rotating them over its shards
//! when it holds more (`sluice_kinesis::schedule`), feeds the shared
//! pipeline, and checkpoints a shard only after ClickHouse acknowledged the
//! rows before the checkpoint — and only while it still holds the shard.
//!
//! Two epochs are in play. The *assignment epoch* changes whenever the
//! replica takes a shard: rows buffered under an older one are dropped, as
//! for Kafka. The *run* identifies one reader of a shard: a reader stopped
//! by rotation may leave records in the channel, which are discarded, and
//! its successor resumes after the last record the pipeline accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sluice_formats::RecordMeta;
use sluice_kinesis::leases::{self, ShardLease};
use sluice_kinesis::{fanout, schedule, ShardEvent, ShardReader, StartAt, Tagged};
use sluice_model::{IteratorType, KinesisSource, Source};
use sluice_store::ReplicaStatus;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::pipeline::{Coordinates, Pipeline, RunError};
use crate::replica::{Failing, Lag, Loaded, Replica, GAUGE_INTERVAL};

type KinesisPipeline = Pipeline<String, String>;

/// How often leases are re-read and balanced, and new shards looked for.
const LEASE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the shard rotation is reconsidered.
const ROTATE_INTERVAL: Duration = Duration::from_secs(1);

struct Held {
    counter: i64,
    epoch: u64,
    checkpoint: Option<String>,
    /// The last sequence number the pipeline accepted under `epoch`.
    read: Option<String>,
    /// The shard has a parent: it is read from its start whatever the
    /// pipe's starting position.
    child: bool,
    /// The reader reached the shard's end.
    ended: bool,
    millis_behind: Option<i64>,
}

struct Active {
    run: u64,
    since_ms: u64,
    task: JoinHandle<()>,
}

struct State<'a> {
    replica: &'a Replica,
    client: sluice_kinesis::Client,
    /// Set when the pipe reads through enhanced fan-out.
    consumer_arn: Option<String>,
    source: KinesisSource,
    workers: usize,
    held: BTreeMap<String, Held>,
    active: BTreeMap<String, Active>,
    waiting_since: BTreeMap<String, u64>,
    next_epoch: u64,
    tx: mpsc::Sender<Tagged>,
    started: Instant,
    /// Shards not yet read to their end, at the last balance.
    unfinished_shards: Option<usize>,
}

pub async fn run(replica: &Replica, loaded: Loaded, failing: &mut Failing) -> Result<(), RunError> {
    let Loaded {
        pipe,
        spec,
        prepared,
    } = loaded;
    let Source::Kinesis(source) = &spec.source else {
        return Err(RunError::Permanent("not a Kinesis pipe".into()));
    };
    let size = spec.scaling.replica_size;
    let session = format!("sluice-{}-{}", pipe.id, replica.lease.replica);
    let client = sluice_kinesis::client(source, &session)
        .await
        .map_err(|e| RunError::Permanent(e.to_string()))?;
    let consumer_name = fanout::consumer_name(pipe.id);
    let consumer_arn = if source.use_enhanced_fan_out {
        let name = consumer_name;
        let arn = fanout::ensure_consumer(&client, &source.stream_name, &name)
            .await
            .map_err(RunError::Source)?;
        tracing::info!(consumer = %arn, "reading through enhanced fan-out");
        Some(arn)
    } else {
        // Fan-out was switched off: the consumer it registered is billed
        // per shard-hour while it exists. One replica removes it.
        if replica.lease.replica == 0 {
            match fanout::deregister_consumer(&client, &source.stream_name, &consumer_name).await {
                Ok(true) => {
                    tracing::info!(consumer = %consumer_name, "stream consumer no longer used; deregistered")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not deregister the unused stream consumer")
                }
            }
        }
        None
    };
    let workers = size.kinesis_shard_workers() as usize;
    // Two responses per worker in flight keep readers busy while the
    // pipeline inserts, and bound what a replica holds in memory.
    let (tx, mut rx) = mpsc::channel::<Tagged>(workers * 2);
    let mut state = State {
        replica,
        client,
        consumer_arn,
        source: source.clone(),
        workers,
        held: BTreeMap::new(),
        active: BTreeMap::new(),
        waiting_since: BTreeMap::new(),
        next_epoch: 0,
        tx,
        started: Instant::now(),
        unfinished_shards: None,
    };
    let mut pipeline: KinesisPipeline = Pipeline::new(
        pipe.id,
        &spec,
        prepared,
        "kinesis",
        replica.lease.replica,
        size.max_kinesis_record_bytes(),
        replica.counters.clone(),
    );
    state.balance(&mut pipeline).await?;
    replica.set(ReplicaStatus::Running, None);
    tracing::info!(stream = %source.stream_name, workers, "replica running");

    let mut lease_tick = tokio::time::interval(LEASE_INTERVAL);
    let mut rotate_tick = tokio::time::interval(ROTATE_INTERVAL);
    let mut gauge_tick = tokio::time::interval(GAUGE_INTERVAL);
    let outcome = loop {
        let wait = pipeline.wait();
        let mut finish_now = false;
        tokio::select! {
            _ = replica.cancel.cancelled() => {
                if let Err(e) = state.flush(&mut pipeline).await {
                    tracing::warn!(error = ?e, "final flush failed; the records will be read again");
                }
                break Ok(());
            }
            Some(tagged) = rx.recv() => {
                match state.accept(&mut pipeline, tagged) {
                    Accepted::Records => failing.source = None,
                    Accepted::End => finish_now = true,
                    Accepted::Failed(message) => {
                        if let Err(e) = replica.source_failed(failing, message) {
                            break Err(e);
                        }
                    }
                    Accepted::Discarded => {}
                }
            }
            _ = lease_tick.tick() => {
                // Listing shards fails like reading does (credentials, a
                // deleted stream): it counts toward the source's limit.
                if let Err(e) = state.balance(&mut pipeline).await {
                    if let Err(e) = replica.source_failed(failing, e.into_message()) {
                        break Err(e);
                    }
                }
            }
            _ = rotate_tick.tick() => state.rotate(&pipeline),
            _ = gauge_tick.tick() => state.refresh_gauges(&pipeline),
            _ = tokio::time::sleep(wait) => {}
        }
        if finish_now || pipeline.due() {
            if let Err(e) = state.flush(&mut pipeline).await {
                break Err(e);
            }
            failing.destination = None;
            if failing.source.is_none() {
                replica.set(ReplicaStatus::Running, None);
            }
        }
        if let Err(e) = state.finish_ended(&pipeline).await {
            tracing::warn!(error = ?e, "recording finished shards failed");
        }
    };
    for (_, active) in std::mem::take(&mut state.active) {
        active.task.abort();
    }
    outcome
}

enum Accepted {
    Records,
    End,
    Failed(String),
    Discarded,
}

/// The number in a shard id (`shardId-000000000007` → 7), for the error
/// table's partition column.
fn shard_number(shard_id: &str) -> i64 {
    shard_id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1)
}

impl State<'_> {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn accept(&mut self, pipeline: &mut KinesisPipeline, tagged: Tagged) -> Accepted {
        let current = self
            .active
            .get(&tagged.shard_id)
            .is_some_and(|a| a.run == tagged.epoch);
        let Some(held) = self.held.get_mut(&tagged.shard_id).filter(|_| current) else {
            return Accepted::Discarded;
        };
        match tagged.event {
            ShardEvent::Records {
                records,
                millis_behind_latest,
            } => {
                held.millis_behind = millis_behind_latest;
                let stream = self.source.stream_name.as_str();
                let shard = shard_number(&tagged.shard_id);
                for record in &records {
                    let meta = RecordMeta {
                        key: Some(record.partition_key.as_bytes()),
                        timestamp_ms: record.arrival_ms,
                        partition: shard as i32,
                        offset: -1,
                        topic: stream,
                        headers: Vec::new(),
                        sequence_number: Some(&record.sequence_number),
                    };
                    let source = [stream, &tagged.shard_id, &record.sequence_number];
                    let coordinates = Coordinates {
                        source: &source,
                        partition: shard,
                        offset: -1,
                    };
                    pipeline.add(
                        &tagged.shard_id,
                        held.epoch,
                        record.sequence_number.clone(),
                        &record.data,
                        &meta,
                        &coordinates,
                    );
                }
                if let Some(last) = records.last() {
                    held.read = Some(last.sequence_number.clone());
                }
                Accepted::Records
            }
            ShardEvent::End => {
                held.ended = true;
                self.active.remove(&tagged.shard_id);
                tracing::info!(shard = %tagged.shard_id, "shard read to its end");
                Accepted::End
            }
            ShardEvent::Failed(message) => {
                self.active.remove(&tagged.shard_id);
                let now = self.now_ms();
                self.waiting_since.insert(tagged.shard_id, now);
                Accepted::Failed(message)
            }
        }
    }

    /// Looks for new shards, drops shards this replica lost, and takes its
    /// share of the readable ones.
    async fn balance(&mut self, pipeline: &mut KinesisPipeline) -> Result<(), RunError> {
        let store = &self.replica.store;
        let lease = &self.replica.lease;
        let source_error =
            |e: sluice_store::StoreError| RunError::Source(format!("shard leases: {e}"));
        let shards = sluice_kinesis::list_shards(&self.client, &self.source.stream_name)
            .await
            .map_err(RunError::Source)?;
        store
            .sync_shards(lease.pipe_id, &shards)
            .await
            .map_err(source_error)?;
        let records = store
            .shard_leases(lease.pipe_id)
            .await
            .map_err(source_error)?;
        let live: BTreeSet<i32> = store
            .live_replicas(lease.pipe_id)
            .await
            .map_err(source_error)?
            .into_iter()
            .collect();

        // Shards taken from this replica (stolen, or its lease lapsed).
        let lost: Vec<String> = self
            .held
            .iter()
            .filter(|(shard, held)| {
                !records.iter().any(|r| {
                    &r.shard_id == *shard
                        && r.live_owner == Some(lease.replica)
                        && r.counter == held.counter
                })
            })
            .map(|(shard, _)| shard.clone())
            .collect();
        for shard in lost {
            tracing::info!(%shard, "shard lease lost");
            self.release(&shard, pipeline);
        }

        self.unfinished_shards = Some(records.iter().filter(|r| !r.finished).count());
        let view: Vec<ShardLease> = records
            .iter()
            .map(|r| ShardLease {
                shard_id: r.shard_id.clone(),
                parents: r.parent_ids.clone(),
                owner: r.live_owner,
                counter: r.counter,
                finished: r.finished,
            })
            .collect();
        let plan = leases::plan(&view, &live, lease.replica);
        for (shard, seen) in plan.take.iter().chain(plan.steal.iter()) {
            let Some(counter) = store
                .take_shard(lease, shard, *seen)
                .await
                .map_err(source_error)?
            else {
                continue;
            };
            let record = records.iter().find(|r| &r.shard_id == shard);
            let child = record.is_some_and(|r| {
                r.parent_ids
                    .iter()
                    .any(|p| records.iter().any(|other| &other.shard_id == p))
            });
            self.next_epoch += 1;
            tracing::info!(%shard, counter, stolen = plan.steal.as_ref().is_some_and(|s| &s.0 == shard), "shard lease taken");
            self.held.insert(
                shard.clone(),
                Held {
                    counter,
                    epoch: self.next_epoch,
                    checkpoint: record.and_then(|r| r.checkpoint.clone()),
                    read: None,
                    child,
                    ended: false,
                    millis_behind: None,
                },
            );
            let now = self.now_ms();
            self.waiting_since.insert(shard.clone(), now);
        }
        Ok(())
    }

    fn release(&mut self, shard: &str, pipeline: &mut KinesisPipeline) {
        self.held.remove(shard);
        self.waiting_since.remove(shard);
        if let Some(active) = self.active.remove(shard) {
            active.task.abort();
        }
        pipeline.drop_key(&shard.to_owned());
    }

    /// Starts and stops readers so every held shard gets its turn.
    fn rotate(&mut self, pipeline: &KinesisPipeline) {
        let readable: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| !h.ended)
            .map(|(s, _)| s.clone())
            .collect();
        let active: BTreeMap<String, u64> = self
            .active
            .iter()
            .map(|(s, a)| (s.clone(), a.since_ms))
            .collect();
        let now = self.now_ms();
        let rotation = schedule::rotate(now, &readable, &active, &self.waiting_since, self.workers);
        for shard in rotation.stop {
            if let Some(active) = self.active.remove(&shard) {
                active.task.abort();
            }
            self.waiting_since.insert(shard, now);
        }
        for shard in rotation.start {
            let Some(held) = self.held.get(&shard) else {
                continue;
            };
            let waited = now.saturating_sub(self.waiting_since.get(&shard).copied().unwrap_or(0));
            metrics::histogram!("sluice_kinesis_shard_wait_seconds").record(waited as f64 / 1000.0);
            let start = match (&held.read, &held.checkpoint) {
                // Records of this assignment are still in the batch: go on
                // after them.
                (Some(read), _) if pipeline.holds(&shard, held.epoch) => {
                    StartAt::After(read.clone())
                }
                (_, Some(checkpoint)) => StartAt::After(checkpoint.clone()),
                _ if held.child => StartAt::TrimHorizon,
                _ => match self.source.iterator_type {
                    IteratorType::TrimHorizon => StartAt::TrimHorizon,
                    IteratorType::Latest => StartAt::Latest,
                    IteratorType::AtTimestamp => self
                        .source
                        .timestamp
                        .map_or(StartAt::TrimHorizon, StartAt::AtTimestamp),
                },
            };
            self.next_epoch += 1;
            let run = self.next_epoch;
            let reader = ShardReader {
                client: self.client.clone(),
                stream: self.source.stream_name.clone(),
                shard_id: shard.clone(),
                epoch: run,
            };
            tracing::debug!(%shard, ?start, waited_ms = waited, "starting a shard reader");
            let task = match &self.consumer_arn {
                Some(arn) => tokio::spawn(reader.subscribe(arn.clone(), start, self.tx.clone())),
                None => tokio::spawn(reader.poll(start, self.tx.clone())),
            };
            self.active.insert(
                shard,
                Active {
                    run,
                    since_ms: now,
                    task,
                },
            );
        }
    }

    /// Inserts the batch, then checkpoints every shard still held under
    /// the epoch its rows were read with.
    async fn flush(&mut self, pipeline: &mut KinesisPipeline) -> Result<(), RunError> {
        let held = &self.held;
        pipeline.drop_stale(|shard| held.get(shard).map(|h| h.epoch));
        let flushed = pipeline.insert().await?;
        for f in flushed {
            let Some(held) = self.held.get_mut(&f.key).filter(|h| h.epoch == f.epoch) else {
                continue;
            };
            let kept = self
                .replica
                .store
                .checkpoint_shard(&self.replica.lease, &f.key, held.counter, &f.last, false)
                .await
                .map_err(|e| RunError::Source(format!("writing a checkpoint: {e}")))?;
            if kept {
                held.checkpoint = Some(f.last);
            } else {
                tracing::warn!(shard = %f.key, "shard lease lost before its checkpoint; its records will be read again by the new owner");
                self.release(&f.key, pipeline);
            }
        }
        Ok(())
    }

    /// Marks shards read to their end as finished once none of their rows
    /// wait in the batch, so their children become readable.
    async fn finish_ended(&mut self, pipeline: &KinesisPipeline) -> Result<(), RunError> {
        let done: Vec<String> = self
            .held
            .iter()
            .filter(|(shard, h)| h.ended && !pipeline.holds(shard, h.epoch))
            .map(|(s, _)| s.clone())
            .collect();
        for shard in done {
            let Some(held) = self.held.remove(&shard) else {
                continue;
            };
            self.waiting_since.remove(&shard);
            let checkpoint = held.checkpoint.unwrap_or_else(|| "SHARD_END".to_owned());
            let kept = self
                .replica
                .store
                .checkpoint_shard(&self.replica.lease, &shard, held.counter, &checkpoint, true)
                .await
                .map_err(|e| RunError::Source(format!("finishing a shard: {e}")))?;
            tracing::info!(%shard, kept, "shard finished");
        }
        Ok(())
    }

    fn refresh_gauges(&self, pipeline: &KinesisPipeline) {
        for (shard, held) in &self.held {
            if let Some(behind) = held.millis_behind {
                pipeline.metrics.key_gauge(
                    "sluice_kinesis_millis_behind_latest",
                    &[("shard", shard.clone())],
                    behind as f64,
                );
            }
        }
        // Unknown until every held shard has reported once.
        let behind = self
            .held
            .values()
            .map(|h| h.millis_behind)
            .try_fold(0i64, |max, b| b.map(|b| max.max(b)));
        self.replica.publish_gauges(
            &pipeline.metrics,
            Lag::Millis(behind),
            pipeline.bytes,
            self.unfinished_shards,
        );
    }
}
