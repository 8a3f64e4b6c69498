//! Incremental per-user state and the feature computation over it.

use crate::schema;
use domain::{Channel, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The longest window the state must answer for.
const RETAIN_MS: i64 = DAY_MS;
/// Cap (and "no previous transaction" value) of the seconds-since-previous feature.
const SINCE_PREV_CAP_SECS: f64 = 30.0 * 86_400.0;
const MAX_DEVICES: usize = 16;
const MAX_MERCHANTS: usize = 64;
/// Transaction ids remembered for de-duplication (independent of the window).
const MAX_RECENT_IDS: usize = 512;

/// One past transaction as the windows need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WindowEvent {
    ts_ms: i64,
    amount: f64,
    country: String,
    atm: bool,
}

/// What [`UserState::fold`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// The event changed the state.
    Applied,
    /// The transaction id was already folded in: the state is unchanged.
    Duplicate,
}

/// Everything the online features need to know about one user.
///
/// Serialisable: the feature-service stores it in Redis, one value per user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// Events within [`RETAIN_MS`] of the latest one, ordered by time.
    events: Vec<WindowEvent>,
    last_event_ms: Option<i64>,
    /// Least recently used first.
    devices: VecDeque<String>,
    merchants: VecDeque<String>,
    recent_ids: VecDeque<String>,
    transactions_seen: u64,
}

/// Window aggregates over `(t - width, t]`.
#[derive(Debug, Default)]
struct Window {
    count: f64,
    sum: f64,
    max: f64,
    atm: f64,
    countries: f64,
}

impl UserState {
    /// Number of distinct transactions folded into this state.
    pub fn transactions_seen(&self) -> u64 {
        self.transactions_seen
    }

    /// Event time of the latest transaction folded in.
    pub fn last_event_ms(&self) -> Option<i64> {
        self.last_event_ms
    }

    /// True if this transaction id has already been folded in.
    pub fn has_seen(&self, transaction_id: &str) -> bool {
        self.recent_ids.iter().any(|id| id == transaction_id)
    }

    /// The feature vector of `txn` as of just before it, in [`schema::FEATURES`] order.
    /// Does not change the state.
    pub fn vector(&self, txn: &Transaction) -> Vec<f64> {
        let t = txn.event_time_ms;
        let amount = txn.amount_major();
        let hour = (t.rem_euclid(DAY_MS) as f64) / HOUR_MS as f64;
        let angle = 2.0 * std::f64::consts::PI * hour / 24.0;
        // 1970-01-01 was a Thursday: Monday = 0 .. Sunday = 6.
        let weekday = (t.div_euclid(DAY_MS) + 3).rem_euclid(7);
        let h1 = self.window(t, HOUR_MS);
        let h24 = self.window(t, DAY_MS);
        let since_prev = self
            .previous_before(t)
            .map(|prev| ((t - prev) as f64 / 1000.0).min(SINCE_PREV_CAP_SECS))
            .unwrap_or(SINCE_PREV_CAP_SECS);
        let new_device = !txn.device_id.is_empty() && !self.devices.contains(&txn.device_id);
        let new_merchant = !self.merchants.contains(&txn.merchant_id);
        let v = vec![
            amount.ln_1p(),
            flag(txn.amount_minor % (10 * 10i64.pow(u32::from(txn.currency.exponent()))) == 0),
            angle.sin(),
            angle.cos(),
            flag(weekday >= 5),
            flag(hour < 6.0),
            flag(txn.channel == Channel::CardPresent),
            flag(txn.channel == Channel::Online),
            flag(txn.channel == Channel::Atm),
            flag(txn.channel == Channel::Transfer),
            flag(new_device),
            flag(new_merchant),
            h1.count,
            h24.count,
            h24.sum,
            if h24.count > 0.0 {
                h24.sum / h24.count
            } else {
                0.0
            },
            h24.max,
            since_prev.ln_1p(),
            h24.countries,
            h24.atm,
        ];
        debug_assert_eq!(v.len(), schema::len());
        v
    }

    /// Window aggregates as of `now_ms` (for "current state" reads), by feature name.
    pub fn aggregates_at(&self, now_ms: i64) -> Vec<(&'static str, f64)> {
        let h1 = self.window(now_ms, HOUR_MS);
        let h24 = self.window(now_ms, DAY_MS);
        vec![
            ("user_txn_count_1h", h1.count),
            ("user_txn_count_24h", h24.count),
            ("user_amount_sum_24h", h24.sum),
            ("user_amount_max_24h", h24.max),
            ("user_distinct_countries_24h", h24.countries),
            ("user_atm_count_24h", h24.atm),
        ]
    }

    /// Adds `txn` to the state (idempotent on the transaction id).
    pub fn fold(&mut self, txn: &Transaction) -> Fold {
        if self.has_seen(&txn.transaction_id) {
            return Fold::Duplicate;
        }
        push_bounded(
            &mut self.recent_ids,
            txn.transaction_id.clone(),
            MAX_RECENT_IDS,
        );
        self.transactions_seen += 1;
        let t = txn.event_time_ms;
        let latest = self.last_event_ms.map_or(t, |l| l.max(t));
        self.last_event_ms = Some(latest);
        if t > latest - RETAIN_MS {
            let at = self.events.partition_point(|e| e.ts_ms <= t);
            self.events.insert(
                at,
                WindowEvent {
                    ts_ms: t,
                    amount: txn.amount_major(),
                    country: txn.country.clone(),
                    atm: txn.channel == Channel::Atm,
                },
            );
        }
        let keep_from = self
            .events
            .partition_point(|e| e.ts_ms <= latest - RETAIN_MS);
        self.events.drain(..keep_from);
        if !txn.device_id.is_empty() {
            touch_lru(&mut self.devices, &txn.device_id, MAX_DEVICES);
        }
        touch_lru(&mut self.merchants, &txn.merchant_id, MAX_MERCHANTS);
        Fold::Applied
    }

    fn window(&self, t: i64, width: i64) -> Window {
        let from = self.events.partition_point(|e| e.ts_ms <= t - width);
        let to = self.events.partition_point(|e| e.ts_ms <= t);
        let slice = &self.events[from..to];
        let mut countries: Vec<&str> = slice.iter().map(|e| e.country.as_str()).collect();
        countries.sort_unstable();
        countries.dedup();
        Window {
            count: slice.len() as f64,
            sum: slice.iter().map(|e| e.amount).sum(),
            max: slice.iter().map(|e| e.amount).fold(0.0, f64::max),
            atm: slice.iter().filter(|e| e.atm).count() as f64,
            countries: countries.len() as f64,
        }
    }

    fn previous_before(&self, t: i64) -> Option<i64> {
        let to = self.events.partition_point(|e| e.ts_ms <= t);
        match to.checked_sub(1).map(|i| self.events[i].ts_ms) {
            Some(ts) => Some(ts),
            // Nothing in the window before t: the latest event, if it is not in t's future.
            None => self.last_event_ms.filter(|&l| l <= t),
        }
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn push_bounded(list: &mut VecDeque<String>, value: String, cap: usize) {
    if list.len() == cap {
        list.pop_front();
    }
    list.push_back(value);
}

fn touch_lru(list: &mut VecDeque<String>, value: &str, cap: usize) {
    if let Some(pos) = list.iter().position(|v| v == value) {
        if let Some(v) = list.remove(pos) {
            list.push_back(v);
        }
    } else {
        push_bounded(list, value.to_owned(), cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::index_of;
    use domain::Currency;

    const T0: i64 = 1_763_942_400_000; // 2025-11-24T00:00:00Z, a Monday

    fn txn(id: &str, t: i64, minor: i64) -> Transaction {
        Transaction {
            transaction_id: id.into(),
            user_id: "u".into(),
            account_id: "u".into(),
            amount_minor: minor,
            currency: Currency::parse("EUR").unwrap(),
            merchant_id: "m1".into(),
            merchant_category: "5411".into(),
            channel: Channel::Online,
            device_id: "d1".into(),
            country: "FR".into(),
            geo: None,
            event_time_ms: t,
        }
    }

    fn get(v: &[f64], name: &str) -> f64 {
        v[index_of(name).unwrap()]
    }

    #[test]
    fn first_transaction_has_empty_history() {
        let s = UserState::default();
        let v = s.vector(&txn("a", T0 + 3 * HOUR_MS, 10_000));
        assert_eq!(get(&v, "user_txn_count_24h"), 0.0);
        assert_eq!(get(&v, "is_new_device"), 1.0);
        assert_eq!(get(&v, "amount_is_round"), 1.0);
        assert_eq!(get(&v, "is_night"), 1.0);
        assert_eq!(get(&v, "is_weekend"), 0.0);
        assert!((get(&v, "amount_log") - 101f64.ln()).abs() < 1e-12);
        assert!((get(&v, "user_log_secs_since_prev") - SINCE_PREV_CAP_SECS.ln_1p()).abs() < 1e-12);
    }

    #[test]
    fn windows_count_only_the_past_within_width() {
        let mut s = UserState::default();
        s.fold(&txn("a", T0, 1_000)); // 25 h before the probe
        s.fold(&txn("b", T0 + 2 * HOUR_MS, 2_000)); // 23 h before
        s.fold(&txn("c", T0 + 24 * HOUR_MS + 30 * 60_000, 4_000)); // 30 min before
        let probe = txn("d", T0 + 25 * HOUR_MS, 1_234);
        let v = s.vector(&probe);
        assert_eq!(get(&v, "user_txn_count_1h"), 1.0);
        assert_eq!(get(&v, "user_txn_count_24h"), 2.0);
        assert_eq!(get(&v, "user_amount_sum_24h"), 60.0);
        assert_eq!(get(&v, "user_amount_mean_24h"), 30.0);
        assert_eq!(get(&v, "user_amount_max_24h"), 40.0);
        assert_eq!(get(&v, "is_new_device"), 0.0);
        assert_eq!(get(&v, "amount_is_round"), 0.0);
        assert!((get(&v, "user_log_secs_since_prev") - 1800f64.ln_1p()).abs() < 1e-12);
        assert_eq!(s.transactions_seen(), 3);
    }

    #[test]
    fn fold_is_idempotent_on_transaction_id() {
        let mut s = UserState::default();
        assert_eq!(s.fold(&txn("a", T0, 1_000)), Fold::Applied);
        let before = s.clone();
        assert_eq!(s.fold(&txn("a", T0, 1_000)), Fold::Duplicate);
        assert_eq!(s, before);
    }

    #[test]
    fn vector_does_not_see_the_future() {
        let mut s = UserState::default();
        s.fold(&txn("late", T0 + HOUR_MS, 5_000));
        // An out-of-order event earlier than everything folded.
        let v = s.vector(&txn("early", T0, 1_000));
        assert_eq!(get(&v, "user_txn_count_24h"), 0.0);
        assert!((get(&v, "user_log_secs_since_prev") - SINCE_PREV_CAP_SECS.ln_1p()).abs() < 1e-12);
    }

    #[test]
    fn state_round_trips_through_serde() {
        let mut s = UserState::default();
        s.fold(&txn("a", T0, 1_000));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<UserState>(&json).unwrap(), s);
    }
}
