//! The Kinesis source of a replica: holds shard leases (`crate::leases`,
//! in Postgres), runs up to its size's number of shard readers, rotating
//! them over its shards when it holds more (`crate::schedule`), and
//! checkpoints a shard only for ranges the replica loop says ClickHouse
//! acknowledged — and only while it still holds the shard.
//!
//! Two epochs are in play. The *assignment epoch* changes whenever the
//! replica takes a shard: rows buffered under an older one are dropped, as
//! for Kafka. The *run* identifies one reader of a shard: a reader stopped
//! by rotation may leave records in the channel, which are discarded, and
//! its successor resumes after the last record the loop accepted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sluice_model::{IteratorType, KinesisSource as KinesisSpec, ReplicaSize};
use sluice_source::{
    Accept, Acked, ErrorCoordinates, Gauges, KeyGauge, Lag, Polled, Record, RecordMeta, Source,
    SourceError,
};
use sluice_store::{Lease, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::leases::{self, ShardLease};
use crate::{fanout, schedule, ShardEvent, ShardReader, StartAt, Tagged};

/// How often leases are re-read and balanced, and new shards looked for.
const LEASE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the shard rotation is reconsidered.
const ROTATE_INTERVAL: Duration = Duration::from_secs(1);

struct Held {
    counter: i64,
    epoch: u64,
    checkpoint: Option<String>,
    /// The last sequence number the loop accepted under `epoch`.
    read: Option<String>,
    /// The shard has a parent: it is read from its start whatever the
    /// pipe's starting position.
    child: bool,
    /// The reader reached the shard's end.
    ended: bool,
    millis_behind: Option<i64>,
}

impl Held {
    /// Whether records read under this assignment wait for a checkpoint.
    fn pending(&self) -> bool {
        self.read.is_some() && self.read != self.checkpoint
    }
}

struct Active {
    run: u64,
    since_ms: u64,
    task: JoinHandle<()>,
}

pub struct KinesisSource {
    store: Store,
    lease: Lease,
    client: crate::Client,
    /// Set when the pipe reads through enhanced fan-out.
    consumer_arn: Option<String>,
    spec: KinesisSpec,
    workers: usize,
    held: BTreeMap<String, Held>,
    active: BTreeMap<String, Active>,
    waiting_since: BTreeMap<String, u64>,
    next_epoch: u64,
    tx: mpsc::Sender<Tagged>,
    rx: mpsc::Receiver<Tagged>,
    started: Instant,
    lease_tick: tokio::time::Interval,
    rotate_tick: tokio::time::Interval,
    /// Shards not yet read to their end, at the last balance.
    unfinished_shards: Option<usize>,
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

fn store_error(what: &'static str) -> impl Fn(sluice_store::StoreError) -> SourceError {
    move |e| SourceError::Transient(format!("{what}: {e}"))
}

impl KinesisSource {
    /// Connects, registers (or removes) the fan-out consumer, and takes this
    /// replica's share of the shards; reading starts at their checkpoints.
    pub async fn open(
        store: Store,
        lease: Lease,
        spec: &KinesisSpec,
        size: ReplicaSize,
    ) -> Result<Self, SourceError> {
        let session = format!("sluice-{}-{}", lease.pipe_id, lease.replica);
        let client = crate::client(spec, &session)
            .await
            .map_err(|e| SourceError::Permanent(e.to_string()))?;
        let consumer_name = fanout::consumer_name(lease.pipe_id);
        let consumer_arn = if spec.use_enhanced_fan_out {
            let arn = fanout::ensure_consumer(&client, &spec.stream_name, &consumer_name)
                .await
                .map_err(SourceError::Broken)?;
            tracing::info!(consumer = %arn, "reading through enhanced fan-out");
            Some(arn)
        } else {
            // Fan-out was switched off: the consumer it registered is
            // billed per shard-hour while it exists. One replica removes it.
            if lease.replica == 0 {
                match fanout::deregister_consumer(&client, &spec.stream_name, &consumer_name).await
                {
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
        // loop inserts, and bound what a replica holds in memory.
        let (tx, rx) = mpsc::channel::<Tagged>(workers * 2);
        let mut lease_tick = tokio::time::interval(LEASE_INTERVAL);
        lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rotate_tick = tokio::time::interval(ROTATE_INTERVAL);
        rotate_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut source = KinesisSource {
            store,
            lease,
            client,
            consumer_arn,
            spec: spec.clone(),
            workers,
            held: BTreeMap::new(),
            active: BTreeMap::new(),
            waiting_since: BTreeMap::new(),
            next_epoch: 0,
            tx,
            rx,
            started: Instant::now(),
            lease_tick,
            rotate_tick,
            unfinished_shards: None,
        };
        source.balance().await?;
        // The first tick of an interval is immediate; balancing just ran.
        source.lease_tick.reset();
        tracing::info!(stream = %spec.stream_name, workers, "shard leases taken");
        Ok(source)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Hands the records of one reader event to the loop.
    fn accept(
        &mut self,
        tagged: Tagged,
        accept: &mut Accept<'_, String, String>,
    ) -> Result<Polled, SourceError> {
        let current = self
            .active
            .get(&tagged.shard_id)
            .is_some_and(|a| a.run == tagged.epoch);
        let Some(held) = self.held.get_mut(&tagged.shard_id).filter(|_| current) else {
            return Ok(Polled::Idle);
        };
        match tagged.event {
            ShardEvent::Records {
                records,
                millis_behind_latest,
            } => {
                held.millis_behind = millis_behind_latest;
                let shard = shard_number(&tagged.shard_id);
                for record in &records {
                    accept(Record {
                        key: &tagged.shard_id,
                        epoch: held.epoch,
                        position: record.sequence_number.clone(),
                        payload: &record.data,
                        meta: RecordMeta {
                            key: Some(record.partition_key.as_bytes()),
                            timestamp_ms: record.arrival_ms,
                            partition: shard as i32,
                            offset: -1,
                            topic: &self.spec.stream_name,
                            headers: Vec::new(),
                            sequence_number: Some(&record.sequence_number),
                        },
                    });
                }
                if let Some(last) = records.last() {
                    held.read = Some(last.sequence_number.clone());
                }
                Ok(Polled::Records)
            }
            ShardEvent::End => {
                held.ended = true;
                self.active.remove(&tagged.shard_id);
                tracing::info!(shard = %tagged.shard_id, "shard read to its end");
                Ok(Polled::FlushSoon)
            }
            ShardEvent::Failed(message) => {
                self.active.remove(&tagged.shard_id);
                let now = self.now_ms();
                self.waiting_since.insert(tagged.shard_id, now);
                Err(SourceError::Transient(message))
            }
        }
    }

    /// Looks for new shards, drops shards this replica lost, and takes its
    /// share of the readable ones.
    async fn balance(&mut self) -> Result<(), SourceError> {
        let pipe_id = self.lease.pipe_id;
        let shards = crate::list_shards(&self.client, &self.spec.stream_name)
            .await
            .map_err(SourceError::Transient)?;
        self.store
            .sync_shards(pipe_id, &shards)
            .await
            .map_err(store_error("shard leases"))?;
        let records = self
            .store
            .shard_leases(pipe_id)
            .await
            .map_err(store_error("shard leases"))?;
        let live: BTreeSet<i32> = self
            .store
            .live_replicas(pipe_id)
            .await
            .map_err(store_error("shard leases"))?
            .into_iter()
            .collect();

        // Shards taken from this replica (stolen, or its lease lapsed).
        let replica = self.lease.replica;
        let lost: Vec<String> = self
            .held
            .iter()
            .filter(|(shard, held)| {
                !records.iter().any(|r| {
                    &r.shard_id == *shard
                        && r.live_owner == Some(replica)
                        && r.counter == held.counter
                })
            })
            .map(|(shard, _)| shard.clone())
            .collect();
        for shard in lost {
            tracing::info!(%shard, "shard lease lost");
            self.release(&shard);
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
        let plan = leases::plan(&view, &live, replica);
        for (shard, seen) in plan.take.iter().chain(plan.steal.iter()) {
            let Some(counter) = self
                .store
                .take_shard(&self.lease, shard, *seen)
                .await
                .map_err(store_error("taking a shard lease"))?
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
        self.finish_ended().await
    }

    fn release(&mut self, shard: &str) {
        self.held.remove(shard);
        self.waiting_since.remove(shard);
        if let Some(active) = self.active.remove(shard) {
            active.task.abort();
        }
    }

    /// Starts and stops readers so every held shard gets its turn.
    fn rotate(&mut self) {
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
            // Records of this assignment may wait in the loop's batch: go
            // on after the last one handed over, else after the checkpoint.
            let start = match held.read.as_ref().or(held.checkpoint.as_ref()) {
                Some(after) => StartAt::After(after.clone()),
                None if held.child => StartAt::TrimHorizon,
                None => match self.spec.iterator_type {
                    IteratorType::TrimHorizon => StartAt::TrimHorizon,
                    IteratorType::Latest => StartAt::Latest,
                    IteratorType::AtTimestamp => self
                        .spec
                        .timestamp
                        .map_or(StartAt::TrimHorizon, StartAt::AtTimestamp),
                },
            };
            self.next_epoch += 1;
            let run = self.next_epoch;
            let reader = ShardReader {
                client: self.client.clone(),
                stream: self.spec.stream_name.clone(),
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

    /// Marks shards read to their end as finished once none of their
    /// records wait for a checkpoint, so their children become readable.
    async fn finish_ended(&mut self) -> Result<(), SourceError> {
        let done: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| h.ended && !h.pending())
            .map(|(s, _)| s.clone())
            .collect();
        for shard in done {
            let Some(held) = self.held.remove(&shard) else {
                continue;
            };
            self.waiting_since.remove(&shard);
            let checkpoint = held.checkpoint.unwrap_or_else(|| "SHARD_END".to_owned());
            let kept = self
                .store
                .checkpoint_shard(&self.lease, &shard, held.counter, &checkpoint, true)
                .await
                .map_err(|e| SourceError::Broken(format!("finishing a shard: {e}")))?;
            tracing::info!(%shard, kept, "shard finished");
        }
        Ok(())
    }
}

impl Source for KinesisSource {
    type Key = String;
    type Position = String;

    fn kind(&self) -> &'static str {
        "kinesis"
    }

    async fn poll(
        &mut self,
        until: Instant,
        accept: &mut Accept<'_, String, String>,
    ) -> Result<Polled, SourceError> {
        loop {
            tokio::select! {
                Some(tagged) = self.rx.recv() => {
                    let polled = self.accept(tagged, accept)?;
                    if polled != Polled::Idle {
                        if polled == Polled::FlushSoon {
                            self.finish_ended().await?;
                        }
                        return Ok(polled);
                    }
                }
                // Listing shards fails like reading does (credentials, a
                // deleted stream): it counts toward the source's limit.
                _ = self.lease_tick.tick() => self.balance().await?,
                _ = self.rotate_tick.tick() => self.rotate(),
                _ = tokio::time::sleep_until(until.into()) => return Ok(Polled::Idle),
            }
        }
    }

    fn epoch(&self, shard: &String) -> Option<u64> {
        self.held.get(shard).map(|h| h.epoch)
    }

    async fn commit(
        &mut self,
        acked: Vec<Acked<String, String>>,
    ) -> Result<Vec<String>, SourceError> {
        let mut committed = Vec::new();
        for a in acked {
            let Some(held) = self.held.get_mut(&a.key).filter(|h| h.epoch == a.epoch) else {
                continue;
            };
            let kept = self
                .store
                .checkpoint_shard(&self.lease, &a.key, held.counter, &a.last, false)
                .await
                .map_err(|e| SourceError::Broken(format!("writing a checkpoint: {e}")))?;
            if kept {
                held.checkpoint = Some(a.last);
                committed.push(a.key);
            } else {
                tracing::warn!(shard = %a.key, "shard lease lost before its checkpoint; its records will be read again by the new owner");
                self.release(&a.key);
            }
        }
        self.finish_ended().await?;
        Ok(committed)
    }

    fn gauges(&self) -> Gauges {
        let per_key = self
            .held
            .iter()
            .filter_map(|(shard, held)| {
                held.millis_behind.map(|behind| KeyGauge {
                    name: "sluice_kinesis_millis_behind_latest",
                    labels: vec![("shard", shard.clone())],
                    value: behind as f64,
                })
            })
            .collect();
        // Unknown until every held shard has reported once.
        let behind = self
            .held
            .values()
            .map(|h| h.millis_behind)
            .try_fold(0i64, |max, b| b.map(|b| max.max(b)));
        Gauges {
            lag: Lag::Millis(behind),
            buffered_bytes: 0,
            units: self.unfinished_shards,
            per_key,
        }
    }

    fn error_coordinates(&self, shard: &String, sequence_number: &String) -> ErrorCoordinates {
        ErrorCoordinates {
            source: format!("{}/{shard}/{sequence_number}", self.spec.stream_name),
            partition: shard_number(shard),
            offset: -1,
        }
    }

    async fn close(self) {
        for (_, active) in self.active {
            active.task.abort();
        }
    }
}
