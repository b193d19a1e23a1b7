//! When a batch is inserted: at `max_insert_rows` rows, at 32 MiB per GiB of
//! replica memory, or when it has been open `streaming_max_insert_wait_ms`,
//! whichever comes first. Pure, so every trigger is tested on its own.

use std::time::Duration;

use crate::{PipeSettings, ReplicaSize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_rows: u64,
    pub max_bytes: u64,
    pub max_wait: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    Rows,
    Bytes,
    Age,
}

impl BatchLimits {
    pub fn for_pipe(settings: &PipeSettings, size: ReplicaSize) -> Self {
        BatchLimits {
            max_rows: u64::from(settings.max_insert_rows),
            max_bytes: size.max_batch_bytes(),
            max_wait: Duration::from_millis(u64::from(settings.streaming_max_insert_wait_ms)),
        }
    }

    /// Whether a batch of `rows` rows and `bytes` encoded bytes, open for
    /// `age`, must be inserted now. An empty batch never is.
    pub fn flush_reason(&self, rows: u64, bytes: u64, age: Duration) -> Option<FlushReason> {
        if rows == 0 {
            None
        } else if rows >= self.max_rows {
            Some(FlushReason::Rows)
        } else if bytes >= self.max_bytes {
            Some(FlushReason::Bytes)
        } else if age >= self.max_wait {
            Some(FlushReason::Age)
        } else {
            None
        }
    }

    /// How long a batch open for `age` may still wait.
    pub fn remaining_wait(&self, age: Duration) -> Duration {
        self.max_wait.saturating_sub(age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> BatchLimits {
        BatchLimits::for_pipe(&PipeSettings::default(), ReplicaSize::XS)
    }

    #[test]
    fn defaults_follow_the_reference() {
        let l = limits();
        assert_eq!(l.max_rows, 100_000);
        assert_eq!(l.max_bytes, 16 << 20);
        assert_eq!(l.max_wait, Duration::from_secs(5));
        assert_eq!(
            BatchLimits::for_pipe(&PipeSettings::default(), ReplicaSize::XL).max_bytes,
            256 << 20
        );
    }

    #[test]
    fn rows_trigger() {
        let l = limits();
        assert_eq!(l.flush_reason(99_999, 0, Duration::ZERO), None);
        assert_eq!(
            l.flush_reason(100_000, 0, Duration::ZERO),
            Some(FlushReason::Rows)
        );
    }

    #[test]
    fn bytes_trigger() {
        let l = limits();
        assert_eq!(l.flush_reason(1, (16 << 20) - 1, Duration::ZERO), None);
        assert_eq!(
            l.flush_reason(1, 16 << 20, Duration::ZERO),
            Some(FlushReason::Bytes)
        );
    }

    #[test]
    fn age_trigger() {
        let l = limits();
        assert_eq!(l.flush_reason(1, 1, Duration::from_millis(4_999)), None);
        assert_eq!(
            l.flush_reason(1, 1, Duration::from_secs(5)),
            Some(FlushReason::Age)
        );
        assert_eq!(
            l.remaining_wait(Duration::from_secs(2)),
            Duration::from_secs(3)
        );
        assert_eq!(l.remaining_wait(Duration::from_secs(9)), Duration::ZERO);
    }

    #[test]
    fn empty_batches_never_flush() {
        assert_eq!(
            limits().flush_reason(0, 1 << 30, Duration::from_secs(3600)),
            None
        );
    }

    #[test]
    fn the_first_limit_reached_wins() {
        let l = limits();
        assert_eq!(
            l.flush_reason(100_000, 1 << 30, Duration::from_secs(60)),
            Some(FlushReason::Rows)
        );
        assert_eq!(
            l.flush_reason(5, 1 << 30, Duration::from_secs(60)),
            Some(FlushReason::Bytes)
        );
    }
}
