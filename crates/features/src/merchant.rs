//! Per-merchant state: integer counters per closed tile, so that updates commute.
//!
//! A merchant is touched by every user's transactions (from every Kafka partition) and by
//! labels. Its state is therefore a map of **integer counters** — transactions, amount (in
//! integer units, [`crate::amount_units`]) and fraud reports, per window and tile — and an
//! update is a set of increments ([`MerchantDelta`]). Increments commute, so any number of
//! speed-layer instances can apply them in any order (Redis `HINCRBY`, committed with each
//! instance's own partition offsets) and end with the same counters as the offline builder.
//! The merchant features read only *closed* tiles ([`crate::WindowSpec::closed`]), which is
//! what makes the vectors independent of how events of the current tile interleave.

use crate::schema::{LABEL_WINDOWS, MERCHANT_WINDOWS};
use crate::tiles::WindowSpec;
use std::collections::BTreeMap;
use std::fmt;

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counter {
    /// Transactions at the merchant, by event time, per [`MERCHANT_WINDOWS`] entry.
    Transactions,
    /// Their amount in integer units, per [`MERCHANT_WINDOWS`] entry.
    Amount,
    /// Fraud reports about the merchant's transactions, by the label's `reported_at`, per
    /// [`LABEL_WINDOWS`] entry.
    FraudReports,
}

impl Counter {
    fn code(self) -> char {
        match self {
            Counter::Transactions => 'c',
            Counter::Amount => 's',
            Counter::FraudReports => 'f',
        }
    }

    fn windows(self) -> &'static [WindowSpec] {
        match self {
            Counter::Transactions | Counter::Amount => &MERCHANT_WINDOWS,
            Counter::FraudReports => &LABEL_WINDOWS,
        }
    }
}

/// One counter of a merchant: what, for which window, in which tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    pub counter: Counter,
    pub window: u8,
    pub tile: i64,
}

impl fmt::Display for CounterKey {
    /// The stable field name, e.g. `c0:493201` (a Redis hash field).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}:{}", self.counter.code(), self.window, self.tile)
    }
}

impl CounterKey {
    /// Parses [`CounterKey`]'s `Display` form; `None` for anything else.
    pub fn parse(field: &str) -> Option<CounterKey> {
        let mut chars = field.chars();
        let counter = match chars.next()? {
            'c' => Counter::Transactions,
            's' => Counter::Amount,
            'f' => Counter::FraudReports,
            _ => return None,
        };
        let (window, tile) = chars.as_str().split_once(':')?;
        let window: u8 = window.parse().ok()?;
        if usize::from(window) >= counter.windows().len() {
            return None;
        }
        Some(CounterKey {
            counter,
            window,
            tile: tile.parse().ok()?,
        })
    }
}

/// Increments to a merchant's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantDelta(pub Vec<(CounterKey, i64)>);

impl MerchantDelta {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The increments of a transaction at `t` with `units` of amount.
    pub(crate) fn transaction(t: i64, units: i64) -> MerchantDelta {
        let mut d = Vec::with_capacity(2 * MERCHANT_WINDOWS.len());
        for (w, spec) in MERCHANT_WINDOWS.iter().enumerate() {
            let tile = spec.tile_of(t);
            let window = w as u8;
            d.push((
                CounterKey {
                    counter: Counter::Transactions,
                    window,
                    tile,
                },
                1,
            ));
            d.push((
                CounterKey {
                    counter: Counter::Amount,
                    window,
                    tile,
                },
                units,
            ));
        }
        MerchantDelta(d)
    }

    /// The increments of a fraud report at `reported_at_ms`.
    pub(crate) fn fraud_report(reported_at_ms: i64) -> MerchantDelta {
        MerchantDelta(
            LABEL_WINDOWS
                .iter()
                .enumerate()
                .map(|(w, spec)| {
                    (
                        CounterKey {
                            counter: Counter::FraudReports,
                            window: w as u8,
                            tile: spec.tile_of(reported_at_ms),
                        },
                        1,
                    )
                })
                .collect(),
        )
    }
}

/// A merchant's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantState {
    counters: BTreeMap<CounterKey, i64>,
}

impl MerchantState {
    /// Builds a state from stored `(field, value)` pairs; an unknown field name is returned
    /// as the error (a store holding something this code did not write).
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Result<MerchantState, String> {
        let mut counters = BTreeMap::new();
        for (field, value) in fields {
            let key = CounterKey::parse(field).ok_or_else(|| field.to_owned())?;
            counters.insert(key, value);
        }
        Ok(MerchantState { counters })
    }

    /// Applies increments.
    pub fn apply(&mut self, delta: &MerchantDelta) {
        for (key, by) in &delta.0 {
            let v = self.counters.entry(*key).or_insert(0);
            *v = v.saturating_add(*by);
        }
    }

    /// Counters that no window can read any more once the newest tile of their window is
    /// the one holding `now_ms` (the caller's latest event time): safe to delete.
    pub fn stale(&self, now_ms: i64) -> Vec<CounterKey> {
        self.counters
            .keys()
            .filter(|k| {
                let spec = &k.counter.windows()[usize::from(k.window)];
                k.tile < spec.keep_from(spec.tile_of(now_ms))
            })
            .copied()
            .collect()
    }

    /// Removes counters (after [`MerchantState::stale`]).
    pub fn remove(&mut self, keys: &[CounterKey]) {
        for k in keys {
            self.counters.remove(k);
        }
    }

    /// Sum of one counter over the window `w` read by an event at `t`.
    pub(crate) fn sum(&self, counter: Counter, w: usize, t: i64) -> i64 {
        let spec = &counter.windows()[w];
        let (from, to) = spec.range(t);
        let lo = CounterKey {
            counter,
            window: w as u8,
            tile: from,
        };
        let hi = CounterKey {
            counter,
            window: w as u8,
            tile: to,
        };
        self.counters
            .range(lo..=hi)
            .fold(0i64, |acc, (_, v)| acc.saturating_add(*v))
    }

    /// Number of counters held, for state-size measurements.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// `(field, value)` pairs in field order, as [`MerchantState::from_fields`] reads them.
    pub fn fields(&self) -> impl Iterator<Item = (String, i64)> + '_ {
        self.counters.iter().map(|(k, v)| (k.to_string(), *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::DAY_MS;

    #[test]
    fn field_names_round_trip_and_refuse_garbage() {
        let k = CounterKey {
            counter: Counter::FraudReports,
            window: 1,
            tile: -3,
        };
        assert_eq!(k.to_string(), "f1:-3");
        assert_eq!(CounterKey::parse("f1:-3"), Some(k));
        for bad in ["x0:1", "c9:1", "c0", "c0:x", "", "f2:1"] {
            assert_eq!(CounterKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn increments_commute() {
        let a = MerchantDelta::transaction(5 * DAY_MS, 1_000);
        let b = MerchantDelta::fraud_report(6 * DAY_MS);
        let c = MerchantDelta::transaction(5 * DAY_MS + 1, 2_500);
        let mut x = MerchantState::default();
        let mut y = MerchantState::default();
        for d in [&a, &b, &c] {
            x.apply(d);
        }
        for d in [&c, &a, &b] {
            y.apply(d);
        }
        assert_eq!(x, y);
        let back = MerchantState::from_fields(
            x.fields()
                .collect::<Vec<_>>()
                .iter()
                .map(|(f, v)| (f.as_str(), *v)),
        )
        .unwrap();
        assert_eq!(back, x);
    }

    #[test]
    fn closed_windows_never_read_the_current_tile() {
        let mut m = MerchantState::default();
        m.apply(&MerchantDelta::fraud_report(10 * DAY_MS + 1));
        // 30-day label window: day tiles; same day as the report: not visible yet.
        assert_eq!(m.sum(Counter::FraudReports, 1, 10 * DAY_MS + 2), 0);
        assert_eq!(m.sum(Counter::FraudReports, 1, 11 * DAY_MS), 1);
        assert_eq!(m.sum(Counter::FraudReports, 1, 41 * DAY_MS), 0);
        assert!(m.stale(11 * DAY_MS).is_empty());
        assert_eq!(m.stale(60 * DAY_MS).len(), 2);
    }
}
