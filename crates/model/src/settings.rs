use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validate::Validation;

pub const INSERT_WAIT_MS_RANGE: std::ops::RangeInclusive<u32> = 500..=60_000;
pub const INSERT_ROWS_RANGE: std::ops::RangeInclusive<u32> = 1_000..=1_000_000;
pub const CLICKHOUSE_TIMEOUT_SECONDS_RANGE: std::ops::RangeInclusive<u32> = 1..=3_600;

/// Per-pipe tuning, a flat map as in the reference API. Keys are snake_case
/// to match it; unknown keys are refused so a typo never silently does
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PipeSettings {
    /// Longest a batch stays open before it is inserted, in milliseconds.
    #[schema(minimum = 500, maximum = 60000, default = 5000)]
    pub streaming_max_insert_wait_ms: u32,
    /// Rows that close a batch.
    #[schema(minimum = 1000, maximum = 1000000, default = 100000)]
    pub max_insert_rows: u32,
    /// The longest one request to ClickHouse may take, connecting
    /// included; an insert that times out is sent again with the same
    /// deduplication token.
    #[schema(minimum = 1, maximum = 3600, default = 120)]
    pub clickhouse_timeout_seconds: u32,
}

impl Default for PipeSettings {
    fn default() -> Self {
        Self {
            streaming_max_insert_wait_ms: 5_000,
            max_insert_rows: 100_000,
            clickhouse_timeout_seconds: 120,
        }
    }
}

impl PipeSettings {
    pub fn validate(&self, v: &mut Validation, pointer: &str) {
        v.check(
            INSERT_WAIT_MS_RANGE.contains(&self.streaming_max_insert_wait_ms),
            format!("{pointer}/streaming_max_insert_wait_ms"),
            format!(
                "must be between {} and {} milliseconds",
                INSERT_WAIT_MS_RANGE.start(),
                INSERT_WAIT_MS_RANGE.end()
            ),
        );
        v.check(
            INSERT_ROWS_RANGE.contains(&self.max_insert_rows),
            format!("{pointer}/max_insert_rows"),
            format!(
                "must be between {} and {} rows",
                INSERT_ROWS_RANGE.start(),
                INSERT_ROWS_RANGE.end()
            ),
        );
        v.check(
            CLICKHOUSE_TIMEOUT_SECONDS_RANGE.contains(&self.clickhouse_timeout_seconds),
            format!("{pointer}/clickhouse_timeout_seconds"),
            format!(
                "must be between {} and {} seconds",
                CLICKHOUSE_TIMEOUT_SECONDS_RANGE.start(),
                CLICKHOUSE_TIMEOUT_SECONDS_RANGE.end()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_ranges() {
        let s: PipeSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, PipeSettings::default());
        let mut v = Validation::new();
        s.validate(&mut v, "");
        assert!(v.is_empty());

        let s = PipeSettings {
            streaming_max_insert_wait_ms: 499,
            max_insert_rows: 2_000_000,
            clickhouse_timeout_seconds: 120,
        };
        let mut v = Validation::new();
        s.validate(&mut v, "/settings");
        let errors = v.finish().unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].pointer, "/settings/streaming_max_insert_wait_ms");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(serde_json::from_str::<PipeSettings>(r#"{"max_insert_rowz": 5}"#).is_err());
    }
}
