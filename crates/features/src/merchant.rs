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

/// Series of a merchant: one per (counter, window).
pub(crate) const SERIES: usize = 2 * MERCHANT_WINDOWS.len() + LABEL_WINDOWS.len();

/// A merchant's counters: per (counter, window) a series of `(tile, value)` ascending by
/// tile. A window's sum is a binary search and a slice sum over at most `tiles` entries (the
/// hot path of every vector: 8 sums per transaction); an increment lands at or near the end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantState {
    series: [Vec<(i64, i64)>; SERIES],
}

pub(crate) fn series_index(counter: Counter, window: u8) -> usize {
    let w = usize::from(window);
    match counter {
        Counter::Transactions => w,
        Counter::Amount => MERCHANT_WINDOWS.len() + w,
        Counter::FraudReports => 2 * MERCHANT_WINDOWS.len() + w,
    }
}

/// The number of entries of `series` (ascending by tile) with tile `<= tile`. Searched from
/// the end, galloping: events read their most recent tiles, and a series keeps every tile of
/// the history (the 1-day window's hourly tiles: 720 over 30 days), so a plain binary search
/// would miss the cache on every step while the answer is a few entries from the end.
fn after_last_at_most(series: &[(i64, i64)], tile: i64) -> usize {
    let n = series.len();
    let mut step = 1;
    let mut hi = n;
    while hi > 0 {
        let probe = hi.saturating_sub(step);
        if series[probe].0 <= tile {
            // The answer is in probe+1 ..= hi.
            return probe + 1 + series[probe + 1..hi].partition_point(|e| e.0 <= tile);
        }
        hi = probe;
        step *= 2;
    }
    0
}

/// The (counter, window) of each series, in index order.
fn series_keys() -> impl Iterator<Item = (Counter, u8)> {
    [
        Counter::Transactions,
        Counter::Amount,
        Counter::FraudReports,
    ]
    .into_iter()
    .flat_map(|c| (0..c.windows().len() as u8).map(move |w| (c, w)))
}

impl MerchantState {
    /// Builds a state from stored `(field, value)` pairs; an unknown field name is returned
    /// as the error (a store holding something this code did not write).
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Result<MerchantState, String> {
        let mut state = MerchantState::default();
        for (field, value) in fields {
            let key = CounterKey::parse(field).ok_or_else(|| field.to_owned())?;
            state.set(key, value);
        }
        Ok(state)
    }

    fn set(&mut self, key: CounterKey, value: i64) {
        let series = &mut self.series[series_index(key.counter, key.window)];
        match series.binary_search_by_key(&key.tile, |e| e.0) {
            Ok(i) => series[i].1 = value,
            Err(i) => series.insert(i, (key.tile, value)),
        }
    }

    fn add(&mut self, key: CounterKey, by: i64) {
        let series = &mut self.series[series_index(key.counter, key.window)];
        match series.last_mut() {
            // The common case: the newest tile again, or a newer one.
            Some(last) if last.0 == key.tile => last.1 = last.1.saturating_add(by),
            Some(last) if last.0 < key.tile => series.push((key.tile, by)),
            None => series.push((key.tile, by)),
            Some(_) => match series.binary_search_by_key(&key.tile, |e| e.0) {
                Ok(i) => series[i].1 = series[i].1.saturating_add(by),
                Err(i) => series.insert(i, (key.tile, by)),
            },
        }
    }

    /// Applies increments.
    pub fn apply(&mut self, delta: &MerchantDelta) {
        for (key, by) in &delta.0 {
            self.add(*key, *by);
        }
    }

    /// Adds every counter of `other` (the same merchant's increments folded elsewhere, e.g.
    /// by another partition's worker): increments commute, so merged partial states equal
    /// the state of one worker that saw everything.
    pub fn merge(&mut self, other: MerchantState) {
        for (i, series) in other.series.into_iter().enumerate() {
            if self.series[i].is_empty() {
                self.series[i] = series;
                continue;
            }
            let mine = std::mem::take(&mut self.series[i]);
            let mut merged = Vec::with_capacity(mine.len() + series.len());
            let (mut a, mut b) = (mine.into_iter().peekable(), series.into_iter().peekable());
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) if x.0 == y.0 => {
                        let (x, y) = (a.next(), b.next());
                        x.zip(y).map(|(x, y)| (x.0, x.1.saturating_add(y.1)))
                    }
                    (Some(x), Some(y)) if x.0 < y.0 => a.next(),
                    (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                    (Some(_), None) => a.next(),
                    (None, None) => None,
                };
                match next {
                    Some(e) => merged.push(e),
                    None => break,
                }
            }
            self.series[i] = merged;
        }
    }

    fn keys(&self) -> impl Iterator<Item = (CounterKey, i64)> + '_ {
        series_keys()
            .zip(&self.series)
            .flat_map(|((counter, window), series)| {
                series.iter().map(move |&(tile, v)| {
                    (
                        CounterKey {
                            counter,
                            window,
                            tile,
                        },
                        v,
                    )
                })
            })
    }

    /// Counters that no window can read any more once the newest tile of their window is
    /// the one holding `now_ms` (the caller's latest event time): safe to delete.
    pub fn stale(&self, now_ms: i64) -> Vec<CounterKey> {
        self.keys()
            .map(|(k, _)| k)
            .filter(|k| {
                let spec = &k.counter.windows()[usize::from(k.window)];
                k.tile < spec.keep_from(spec.tile_of(now_ms))
            })
            .collect()
    }

    /// Removes counters (after [`MerchantState::stale`]).
    pub fn remove(&mut self, keys: &[CounterKey]) {
        for k in keys {
            let series = &mut self.series[series_index(k.counter, k.window)];
            if let Ok(i) = series.binary_search_by_key(&k.tile, |e| e.0) {
                series.remove(i);
            }
        }
    }

    /// Sum of one counter over the window `w` read by an event at `t`.
    pub(crate) fn sum(&self, counter: Counter, w: usize, t: i64) -> i64 {
        let spec = &counter.windows()[w];
        let (from, to) = spec.range(t);
        let series = &self.series[series_index(counter, w as u8)];
        let hi = after_last_at_most(series, to);
        let lo = after_last_at_most(&series[..hi], from - 1);
        series[lo..hi]
            .iter()
            .fold(0i64, |acc, e| acc.saturating_add(e.1))
    }

    /// Every window sum an event at `t` reads, by series index (what a vector reads, once).
    pub(crate) fn sums_at(&self, t: i64) -> [i64; SERIES] {
        let mut sums = [0; SERIES];
        for (i, (counter, w)) in series_keys().enumerate() {
            sums[i] = self.sum(counter, usize::from(w), t);
        }
        sums
    }

    /// Number of counters held, for state-size measurements.
    pub fn len(&self) -> usize {
        self.series.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.series.iter().all(Vec::is_empty)
    }

    /// `(field, value)` pairs, as [`MerchantState::from_fields`] reads them.
    pub fn fields(&self) -> impl Iterator<Item = (String, i64)> + '_ {
        self.keys().map(|(k, v)| (k.to_string(), v))
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
    fn the_galloping_search_agrees_with_a_scan() {
        let series: Vec<(i64, i64)> = (0..300).map(|i| (i * 3, 1)).collect();
        for tile in -2..905 {
            let expected = series.iter().filter(|e| e.0 <= tile).count();
            assert_eq!(after_last_at_most(&series, tile), expected, "{tile}");
        }
        assert_eq!(after_last_at_most(&[], 5), 0);
    }

    #[test]
    fn merged_partial_states_equal_one_state_that_saw_everything() {
        let deltas = [
            MerchantDelta::transaction(5 * DAY_MS, 1_000),
            MerchantDelta::fraud_report(6 * DAY_MS),
            MerchantDelta::transaction(5 * DAY_MS + 1, 2_500),
            MerchantDelta::transaction(9 * DAY_MS, 700),
        ];
        let mut whole = MerchantState::default();
        for d in &deltas {
            whole.apply(d);
        }
        let (mut a, mut b) = (MerchantState::default(), MerchantState::default());
        for (i, d) in deltas.iter().enumerate() {
            if i % 2 == 0 { a.apply(d) } else { b.apply(d) }
        }
        a.merge(b);
        assert_eq!(a, whole);
        assert_eq!(a.sum(Counter::Transactions, 2, 10 * DAY_MS), 3);
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
