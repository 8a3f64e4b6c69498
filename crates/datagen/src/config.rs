//! What to generate: world sizes, time span, fraud rate and fault rates.

use serde::Serialize;

use crate::GenerateError;

/// 2026-01-05T00:00:00Z, a Monday: the default start, fixed so that output is reproducible.
pub const DEFAULT_START_MS: i64 = 1_767_571_200_000;

/// Everything [`crate::generate`] needs. Same config (including the seed) ⇒ same dataset,
/// byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenConfig {
    pub seed: u64,
    /// Number of users (cardholders).
    pub users: u32,
    /// Number of merchants (at least one per category, so at least 10).
    pub merchants: u32,
    /// Number of distinct valid transactions. `None`: drawn from the users' daily rates
    /// over `days` (a Poisson count with mean `sum(rate) * days`).
    pub transactions: Option<u64>,
    /// Length of the simulated period.
    pub days: u32,
    /// Start of the simulated period, unix milliseconds.
    pub start_ms: i64,
    /// Share of the distinct valid transactions that are fraudulent (exact up to rounding).
    pub fraud_rate: f64,
    /// Share of legitimate transactions that get an `is_fraud = false` label.
    pub legit_label_rate: f64,
    /// Probability that a transaction is emitted a second time, identical (same id).
    pub duplicate_rate: f64,
    /// Probability that a transaction is emitted 1–12 hours after its event time,
    /// i.e. out of order.
    pub late_rate: f64,
    /// Number of records failing validation, as a share of the valid transactions.
    pub corrupt_rate: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            users: 1_000,
            merchants: 500,
            transactions: None,
            days: 30,
            start_ms: DEFAULT_START_MS,
            fraud_rate: 0.01,
            legit_label_rate: 1.0,
            duplicate_rate: 0.0,
            late_rate: 0.0,
            corrupt_rate: 0.0,
        }
    }
}

impl GenConfig {
    /// Milliseconds after the end of the simulated period.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.days) * 86_400_000
    }

    /// Checks ranges; [`crate::generate`] calls it first.
    pub fn validate(&self) -> Result<(), GenerateError> {
        let bad = |msg: String| Err(GenerateError::InvalidConfig(msg));
        if self.users == 0 {
            return bad("users must be at least 1".into());
        }
        if self.merchants < 10 {
            return bad(format!(
                "merchants must be at least 10 (one per category), got {}",
                self.merchants
            ));
        }
        if self.days == 0 || self.days > 3_650 {
            return bad(format!("days must be within 1..=3650, got {}", self.days));
        }
        if self.transactions == Some(0) {
            return bad("transactions must be at least 1".into());
        }
        // 2000-01-01 is the earliest event time ingest accepts.
        if self.start_ms < 946_684_800_000 || self.end_ms() > 32_503_680_000_000 {
            return bad("start must be between 2000-01-01 and 3000-01-01".into());
        }
        for (name, value, max) in [
            ("fraud-rate", self.fraud_rate, 0.5),
            ("legit-label-rate", self.legit_label_rate, 1.0),
            ("duplicate-rate", self.duplicate_rate, 1.0),
            ("late-rate", self.late_rate, 1.0),
            ("corrupt-rate", self.corrupt_rate, 1.0),
        ] {
            if !(0.0..=max).contains(&value) {
                return bad(format!("{name} must be within [0, {max}], got {value}"));
            }
        }
        Ok(())
    }
}

/// Parses a start time: RFC 3339 (`2026-01-05T00:00:00Z`), unix milliseconds, or `now`
/// (`now_ms`, passed in so that callers control the clock).
pub fn parse_start(value: &str, now_ms: i64) -> Result<i64, GenerateError> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            GenerateError::InvalidConfig(format!(
                "start must be RFC 3339, unix milliseconds or `now`, got {value:?}: {e}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_start_is_the_documented_monday() {
        assert_eq!(
            parse_start("2026-01-05T00:00:00Z", 0).ok(),
            Some(DEFAULT_START_MS)
        );
        assert_eq!(parse_start("1767571200000", 0).ok(), Some(DEFAULT_START_MS));
        assert_eq!(parse_start("now", 7).ok(), Some(7));
        assert!(parse_start("yesterday", 0).is_err());
    }

    #[test]
    fn rejects_out_of_range_values() {
        assert!(GenConfig::default().validate().is_ok());
        let cases = [
            GenConfig {
                users: 0,
                ..GenConfig::default()
            },
            GenConfig {
                merchants: 9,
                ..GenConfig::default()
            },
            GenConfig {
                days: 0,
                ..GenConfig::default()
            },
            GenConfig {
                transactions: Some(0),
                ..GenConfig::default()
            },
            GenConfig {
                fraud_rate: 0.9,
                ..GenConfig::default()
            },
            GenConfig {
                late_rate: -0.1,
                ..GenConfig::default()
            },
            GenConfig {
                corrupt_rate: f64::NAN,
                ..GenConfig::default()
            },
            GenConfig {
                start_ms: 0,
                ..GenConfig::default()
            },
        ];
        for c in cases {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
