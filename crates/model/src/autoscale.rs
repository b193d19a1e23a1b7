//! Autoscaling a pipe's replica count on lag, as a pure function of what
//! the scheduler observed. The scheduler feeds it every tick; time is passed
//! in, so every rule is tested without waiting.
//!
//! Lag is measured in time, whatever the source: Kinesis reports
//! MillisBehindLatest; Kafka's lag in messages is divided by the pipe's
//! recent throughput (`kafka_lag`). A lag above `scale_up_lag` held for
//! `sustain_up` adds replicas; a lag below `scale_down_lag` held for
//! `sustain_down` removes one. Short sustains react to a burst; the longer
//! one on the way down keeps a pipe from flapping on a lull. Cooldowns after
//! any change let the new replicas join (and a Kafka group rebalance)
//! before lag is judged again. The count never leaves the user's bounds and
//! never exceeds the source's partitions or open shards, where extra
//! replicas would sit idle.

use std::time::{Duration, Instant};

use crate::Autoscaling;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoscalePolicy {
    pub scale_up_lag: Duration,
    pub scale_down_lag: Duration,
    pub sustain_up: Duration,
    pub sustain_down: Duration,
    pub cooldown_up: Duration,
    pub cooldown_down: Duration,
}

impl Default for AutoscalePolicy {
    fn default() -> Self {
        Self {
            scale_up_lag: Duration::from_secs(30),
            scale_down_lag: Duration::from_secs(5),
            sustain_up: Duration::from_secs(15),
            sustain_down: Duration::from_secs(120),
            cooldown_up: Duration::from_secs(60),
            cooldown_down: Duration::from_secs(300),
        }
    }
}

/// Lag in time from Kafka's lag in messages and the messages the pipe read
/// per second lately. With nothing read lately, any lag is unbounded
/// (`Duration::MAX`): the pipe is stalled or has only just started.
pub fn kafka_lag(lag_messages: i64, messages_per_second: f64) -> Duration {
    if lag_messages <= 0 {
        return Duration::ZERO;
    }
    if messages_per_second <= 0.0 || !messages_per_second.is_finite() {
        return Duration::MAX;
    }
    Duration::try_from_secs_f64(lag_messages as f64 / messages_per_second).unwrap_or(Duration::MAX)
}

/// How long the lag has been high or low, carried from tick to tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct LagHistory {
    above_since: Option<Instant>,
    below_since: Option<Instant>,
}

impl LagHistory {
    /// Records this tick's lag; `None` (unknown) breaks both streaks.
    pub fn observe(&mut self, policy: &AutoscalePolicy, lag: Option<Duration>, now: Instant) {
        let above = lag.is_some_and(|l| l > policy.scale_up_lag);
        let below = lag.is_some_and(|l| l < policy.scale_down_lag);
        self.above_since = if above {
            Some(self.above_since.unwrap_or(now))
        } else {
            None
        };
        self.below_since = if below {
            Some(self.below_since.unwrap_or(now))
        } else {
            None
        };
    }

    fn above_for(&self, now: Instant) -> Option<Duration> {
        self.above_since.map(|s| now.saturating_duration_since(s))
    }

    fn below_for(&self, now: Instant) -> Option<Duration> {
        self.below_since.map(|s| now.saturating_duration_since(s))
    }
}

/// What the scheduler knows of an autoscaled pipe this tick.
#[derive(Debug, Clone, Copy)]
pub struct PipeLoad {
    /// The replica count in force.
    pub replicas: u32,
    /// Replicas running now; a change waits until the last one took effect.
    pub running: u32,
    /// The pipe's lag; `None` while unknown.
    pub lag: Option<Duration>,
    /// Partitions of the topics or open shards of the stream, as the
    /// replicas last saw them; `None` while unknown.
    pub source_units: Option<u32>,
    /// Time since the last autoscaling change; `None` if there was none.
    pub since_change: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleDecision {
    pub to: u32,
    pub reason: String,
}

fn seconds(d: Duration) -> String {
    if d == Duration::MAX {
        "unbounded (nothing read lately)".to_owned()
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The new replica count and why, or `None` to stay.
pub fn decide(
    policy: &AutoscalePolicy,
    bounds: Autoscaling,
    load: &PipeLoad,
    history: &LagHistory,
    now: Instant,
) -> Option<ScaleDecision> {
    let ceiling = load
        .source_units
        .map_or(bounds.max_replicas, |units| bounds.max_replicas.min(units))
        .max(1);
    let floor = bounds.min_replicas.min(ceiling);
    let current = load.replicas;
    let cooled = |cooldown: Duration| load.since_change.is_none_or(|s| s >= cooldown);

    if current > ceiling {
        let why = match load.source_units {
            Some(units) if units < bounds.max_replicas => {
                format!("the source has only {units} partitions or open shards")
            }
            _ => format!("maxReplicas is {}", bounds.max_replicas),
        };
        return Some(ScaleDecision {
            to: ceiling,
            reason: format!("{why}: scaling {current} → {ceiling} replicas"),
        });
    }
    if current < floor {
        return Some(ScaleDecision {
            to: floor,
            reason: format!("minReplicas is {floor}: scaling {current} → {floor} replicas"),
        });
    }
    let lag = load.lag?;
    if let Some(above) = history.above_for(now) {
        if above >= policy.sustain_up
            && current < ceiling
            && load.running >= current
            && cooled(policy.cooldown_up)
        {
            // Enough replicas to bring the lag back under the threshold if
            // throughput grows with them, at most doubling per step: the
            // lag estimate is rough and each step is re-judged.
            let wanted = if lag == Duration::MAX {
                current * 2
            } else {
                let ratio = lag.as_secs_f64() / policy.scale_up_lag.as_secs_f64().max(0.001);
                (f64::from(current) * ratio).ceil().min(f64::from(u32::MAX)) as u32
            };
            let to = wanted.clamp(current + 1, current * 2).min(ceiling);
            return Some(ScaleDecision {
                to,
                reason: format!(
                    "lag {} above {} for {:.0} s: scaling {current} → {to} replicas (at most {ceiling})",
                    seconds(lag),
                    seconds(policy.scale_up_lag),
                    above.as_secs_f64()
                ),
            });
        }
    }
    if let Some(below) = history.below_for(now) {
        if below >= policy.sustain_down && current > floor && cooled(policy.cooldown_down) {
            let to = current - 1;
            return Some(ScaleDecision {
                to,
                reason: format!(
                    "lag {} below {} for {:.0} s: scaling {current} → {to} replicas (at least {floor})",
                    seconds(lag),
                    seconds(policy.scale_down_lag),
                    below.as_secs_f64()
                ),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: AutoscalePolicy = AutoscalePolicy {
        scale_up_lag: Duration::from_secs(30),
        scale_down_lag: Duration::from_secs(5),
        sustain_up: Duration::from_secs(15),
        sustain_down: Duration::from_secs(120),
        cooldown_up: Duration::from_secs(60),
        cooldown_down: Duration::from_secs(300),
    };

    fn bounds(min: u32, max: u32) -> Autoscaling {
        Autoscaling {
            min_replicas: min,
            max_replicas: max,
        }
    }

    fn load(replicas: u32, lag_secs: u64) -> PipeLoad {
        PipeLoad {
            replicas,
            running: replicas,
            lag: Some(Duration::from_secs(lag_secs)),
            source_units: Some(6),
            since_change: None,
        }
    }

    /// The history after `lag` was observed for `held`, ending at `now`.
    fn held(lag: Option<Duration>, held: Duration) -> (LagHistory, Instant) {
        let start = Instant::now();
        let mut history = LagHistory::default();
        history.observe(&POLICY, lag, start);
        let now = start + held;
        history.observe(&POLICY, lag, now);
        (history, now)
    }

    #[test]
    fn kafka_lag_turns_messages_into_time() {
        assert_eq!(kafka_lag(0, 0.0), Duration::ZERO);
        assert_eq!(kafka_lag(-3, 10.0), Duration::ZERO);
        assert_eq!(kafka_lag(1000, 100.0), Duration::from_secs(10));
        assert_eq!(kafka_lag(5, 0.0), Duration::MAX);
        assert_eq!(kafka_lag(5, f64::NAN), Duration::MAX);
    }

    #[test]
    fn a_sustained_lag_scales_up_in_proportion_at_most_doubling() {
        let (history, now) = held(Some(Duration::from_secs(45)), Duration::from_secs(15));
        let up = decide(&POLICY, bounds(1, 10), &load(2, 45), &history, now).unwrap();
        assert_eq!(up.to, 3, "{}", up.reason);
        assert!(
            up.reason.contains("lag 45.0 s above 30.0 s"),
            "{}",
            up.reason
        );
        let (history, now) = held(Some(Duration::from_secs(600)), Duration::from_secs(20));
        let up = decide(&POLICY, bounds(1, 10), &load(2, 600), &history, now).unwrap();
        assert_eq!(up.to, 4);
    }

    #[test]
    fn a_short_burst_does_not_scale() {
        let (history, now) = held(Some(Duration::from_secs(45)), Duration::from_secs(14));
        assert_eq!(
            decide(&POLICY, bounds(1, 10), &load(2, 45), &history, now),
            None
        );
    }

    #[test]
    fn scaling_up_waits_for_the_cooldown_and_for_replicas_to_run() {
        let (history, now) = held(Some(Duration::from_secs(45)), Duration::from_secs(30));
        let mut l = load(2, 45);
        l.since_change = Some(Duration::from_secs(59));
        assert_eq!(decide(&POLICY, bounds(1, 10), &l, &history, now), None);
        l.since_change = Some(Duration::from_secs(60));
        l.running = 1;
        assert_eq!(decide(&POLICY, bounds(1, 10), &l, &history, now), None);
        l.running = 2;
        assert!(decide(&POLICY, bounds(1, 10), &l, &history, now).is_some());
    }

    #[test]
    fn never_above_the_partitions() {
        let (history, now) = held(Some(Duration::MAX), Duration::from_secs(60));
        let mut l = load(3, 0);
        l.lag = Some(Duration::MAX);
        l.source_units = Some(4);
        let up = decide(&POLICY, bounds(1, 10), &l, &history, now).unwrap();
        assert_eq!(up.to, 4);
        l.replicas = 4;
        assert_eq!(decide(&POLICY, bounds(1, 10), &l, &history, now), None);
        // Partitions went away (or the bounds narrowed): down at once.
        l.source_units = Some(2);
        let down = decide(&POLICY, bounds(1, 10), &l, &history, now).unwrap();
        assert_eq!(down.to, 2);
        assert!(down.reason.contains("only 2 partitions"), "{}", down.reason);
    }

    #[test]
    fn a_pipe_that_keeps_up_scales_down_one_at_a_time_after_the_cooldown() {
        let (history, now) = held(Some(Duration::from_secs(1)), Duration::from_secs(120));
        let mut l = load(3, 1);
        l.since_change = Some(Duration::from_secs(299));
        assert_eq!(decide(&POLICY, bounds(1, 10), &l, &history, now), None);
        l.since_change = Some(Duration::from_secs(300));
        let down = decide(&POLICY, bounds(1, 10), &l, &history, now).unwrap();
        assert_eq!(down.to, 2);
        assert!(down.reason.contains("below 5.0 s"), "{}", down.reason);
        l.replicas = 1;
        assert_eq!(decide(&POLICY, bounds(1, 10), &l, &history, now), None);
    }

    #[test]
    fn unknown_lag_breaks_a_streak() {
        let start = Instant::now();
        let mut history = LagHistory::default();
        history.observe(&POLICY, Some(Duration::from_secs(60)), start);
        history.observe(&POLICY, None, start + Duration::from_secs(10));
        history.observe(
            &POLICY,
            Some(Duration::from_secs(60)),
            start + Duration::from_secs(20),
        );
        let now = start + Duration::from_secs(30);
        assert_eq!(
            decide(&POLICY, bounds(1, 10), &load(1, 60), &history, now),
            None
        );
    }

    proptest! {
        /// Whatever it observes, a decision stays within the bounds and the
        /// source's units, changes the count, and moves towards the lag's
        /// side: up only when behind, down only when caught up or out of
        /// bounds.
        #[test]
        fn decisions_stay_in_bounds(
            min in 1u32..=10, span in 0u32..=9, replicas in 1u32..=12, running in 0u32..=12,
            lag_secs in proptest::option::of(0u64..1000), stalled in any::<bool>(),
            units in proptest::option::of(1u32..=12), since in proptest::option::of(0u64..1000),
            held_secs in 0u64..1000,
        ) {
            let max = (min + span).min(10);
            let lag = if stalled { Some(Duration::MAX) } else { lag_secs.map(Duration::from_secs) };
            let l = PipeLoad {
                replicas, running, lag, source_units: units,
                since_change: since.map(Duration::from_secs),
            };
            let (history, now) = held(lag, Duration::from_secs(held_secs));
            if let Some(d) = decide(&POLICY, bounds(min, max), &l, &history, now) {
                let ceiling = units.map_or(max, |u| u.min(max)).max(1);
                prop_assert!(d.to >= 1);
                prop_assert!(d.to <= ceiling, "{d:?} above {ceiling}");
                prop_assert_ne!(d.to, replicas);
                let in_bounds = replicas <= ceiling && replicas >= min.min(ceiling);
                if in_bounds && d.to > replicas {
                    prop_assert!(lag.is_some_and(|l| l > POLICY.scale_up_lag));
                    prop_assert!(d.to <= replicas * 2);
                }
                if in_bounds && d.to < replicas {
                    prop_assert!(lag.is_some_and(|l| l < POLICY.scale_down_lag));
                    prop_assert_eq!(d.to, replicas - 1);
                }
            }
        }
    }
}
