//! Autoscaling pipes on lag: the I/O around `sluice_model::autoscale`.
//!
//! Every tick, for each live pipe with `scaling.autoscaling` set, the
//! replicas' reports give the lag (Kinesis: the furthest-behind shard;
//! Kafka: messages behind, turned into time by the messages the pipe read
//! per second over the last `RATE_WINDOW`) and the source's partitions or
//! shards. A decision is stored as the pipe's `autoscaled_replicas` with an
//! `autoscaled` event carrying its reason; placement starts or stops the
//! replicas on the same tick.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use anyhow::Context;
use sluice_model::autoscale::{decide, kafka_lag, AutoscalePolicy, LagHistory, PipeLoad};
use sluice_model::{PipeState, Source};
use sluice_store::{NewEvent, PipeRecord, ReplicaReport, Store};
use uuid::Uuid;

/// How far back Kafka throughput is measured.
const RATE_WINDOW: Duration = Duration::from_secs(30);
/// Throughput over less than this is too noisy to turn lag into time.
const MIN_RATE_SPAN: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Tracked {
    history: LagHistory,
    /// (when, messages read in all) samples within `RATE_WINDOW`.
    fetched: VecDeque<(Instant, i64)>,
}

impl Tracked {
    /// Messages read per second over the window; `None` until it spans
    /// `MIN_RATE_SPAN`.
    fn rate(&mut self, now: Instant, fetched_total: i64) -> Option<f64> {
        self.fetched.push_back((now, fetched_total));
        while self
            .fetched
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > RATE_WINDOW)
        {
            self.fetched.pop_front();
        }
        let (first_at, first) = *self.fetched.front()?;
        let span = now.saturating_duration_since(first_at);
        (span >= MIN_RATE_SPAN).then(|| (fetched_total - first).max(0) as f64 / span.as_secs_f64())
    }
}

pub struct Autoscaler {
    policy: AutoscalePolicy,
    pipes: HashMap<Uuid, Tracked>,
}

fn env_secs(name: &str, default: Duration) -> anyhow::Result<Duration> {
    match sluice_runtime::env(name) {
        Some(v) => v
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .with_context(|| format!("{name} must be a number of seconds, got {v:?}")),
        None => Ok(default),
    }
}

impl Autoscaler {
    /// The default policy, each threshold overridable in seconds by
    /// `SLUICE_AUTOSCALE_{UP_LAG,DOWN_LAG,SUSTAIN_UP,SUSTAIN_DOWN,COOLDOWN_UP,COOLDOWN_DOWN}_SECS`.
    pub fn from_env() -> anyhow::Result<Self> {
        let d = AutoscalePolicy::default();
        let policy = AutoscalePolicy {
            scale_up_lag: env_secs("SLUICE_AUTOSCALE_UP_LAG_SECS", d.scale_up_lag)?,
            scale_down_lag: env_secs("SLUICE_AUTOSCALE_DOWN_LAG_SECS", d.scale_down_lag)?,
            sustain_up: env_secs("SLUICE_AUTOSCALE_SUSTAIN_UP_SECS", d.sustain_up)?,
            sustain_down: env_secs("SLUICE_AUTOSCALE_SUSTAIN_DOWN_SECS", d.sustain_down)?,
            cooldown_up: env_secs("SLUICE_AUTOSCALE_COOLDOWN_UP_SECS", d.cooldown_up)?,
            cooldown_down: env_secs("SLUICE_AUTOSCALE_COOLDOWN_DOWN_SECS", d.cooldown_down)?,
        };
        tracing::info!(?policy, "autoscaling policy");
        Ok(Self {
            policy,
            pipes: HashMap::new(),
        })
    }

    pub async fn tick(&mut self, store: &Store) -> anyhow::Result<()> {
        let mut pipes = store.pipes_in_state(PipeState::Running).await?;
        pipes.extend(store.pipes_in_state(PipeState::Degraded).await?);
        pipes.retain(|p| p.spec.scaling.autoscaling.is_some());
        self.pipes.retain(|id, _| pipes.iter().any(|p| p.id == *id));
        for pipe in pipes {
            let span = tracing::info_span!("autoscale", pipe_id = %pipe.id);
            let _enter = span.enter();
            if let Err(e) = self.pipe(store, &pipe).await {
                tracing::warn!(error = %e, "autoscaling the pipe failed; retrying");
            }
        }
        Ok(())
    }

    async fn pipe(&mut self, store: &Store, pipe: &PipeRecord) -> anyhow::Result<()> {
        let Some(bounds) = pipe.spec.scaling.autoscaling else {
            return Ok(());
        };
        let now = Instant::now();
        let reports = store.replica_reports(pipe.id).await?;
        let tracked = self.pipes.entry(pipe.id).or_default();
        let lag = match &pipe.spec.source {
            Source::Kafka(_) => {
                let (counters, _) = store.pipe_counters(pipe.id).await?;
                let rate = tracked.rate(now, counters.fetched_events);
                all_known(&reports, |r| r.gauges.lag_messages)
                    .map(|lags| lags.into_iter().sum::<i64>())
                    .zip(rate)
                    .map(|(messages, rate)| kafka_lag(messages, rate))
            }
            Source::Kinesis(_) => all_known(&reports, |r| r.gauges.lag_millis).map(|lags| {
                Duration::from_millis(lags.into_iter().max().unwrap_or(0).max(0) as u64)
            }),
        };
        tracked.history.observe(&self.policy, lag, now);
        let load = PipeLoad {
            replicas: pipe.desired_replicas(),
            running: reports.iter().filter(|r| r.status == "running").count() as u32,
            lag,
            source_units: reports
                .iter()
                .filter_map(|r| r.gauges.source_units)
                .max()
                .and_then(|n| u32::try_from(n).ok()),
            since_change: pipe
                .autoscaled_at
                .and_then(|at| (chrono::Utc::now() - at).to_std().ok()),
        };
        tracing::debug!(?load, "autoscaling observed");
        let Some(decision) = decide(&self.policy, bounds, &load, &tracked.history, now) else {
            return Ok(());
        };
        let event = NewEvent::info("autoscaled", decision.reason.clone());
        if store
            .set_autoscaled_replicas(pipe, decision.to, &event)
            .await?
        {
            tracing::info!(to = decision.to, reason = %decision.reason, "pipe autoscaled");
            // The next change must be earned by a new streak.
            tracked.history = LagHistory::default();
        }
        Ok(())
    }
}

/// Every live replica's value, or `None` while one is still unknown (a
/// replica that just joined): a partial sum would understate the lag.
fn all_known(
    reports: &[ReplicaReport],
    value: impl Fn(&ReplicaReport) -> Option<i64>,
) -> Option<Vec<i64>> {
    if reports.is_empty() {
        return None;
    }
    reports.iter().map(value).collect()
}
