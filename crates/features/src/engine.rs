//! The one feature engine: "vector as of just before the event, then fold", de-duplication,
//! labels, and the evaluation of every [`FeatureDef`](crate::FeatureDef).
//!
//! Adapters (the Redis speed layer, the offline builder, inference's degraded path) hold
//! their states behind [`States`] and call [`on_transaction`] / [`on_label`] / [`vector`];
//! they never compute a feature themselves.

use crate::merchant::{self, Counter, MerchantDelta, MerchantState};
use crate::profile::{NO_PROFILE, ProfileHistory};
use crate::schema::{self, FEATURES, SINCE_PREV_CAP_SECS, SPEED_CAP_KMH, Source};
use crate::tiles::{DAY_MS, HOUR_MS, UserAgg};
use crate::user::UserState;
use domain::{AccountType, Channel, Label, Transaction, UserProfile};
use std::collections::HashMap;

/// The states of a transaction's entities, as of just before it: what a vector is computed
/// from.
#[derive(Debug, Clone, Copy)]
pub struct Entities<'a> {
    pub user: &'a UserState,
    pub merchant: &'a MerchantState,
    pub profile: &'a ProfileHistory,
}

impl Entities<'static> {
    /// No history at all (a first transaction, inference's degraded path).
    pub fn none() -> Entities<'static> {
        static USER: std::sync::OnceLock<UserState> = std::sync::OnceLock::new();
        static MERCHANT: std::sync::OnceLock<MerchantState> = std::sync::OnceLock::new();
        Entities {
            user: USER.get_or_init(UserState::default),
            merchant: MERCHANT.get_or_init(MerchantState::default),
            profile: &NO_PROFILE,
        }
    }
}

/// Everything a feature can read for one transaction: the transaction, the time the vector is
/// evaluated at, and its entities' states as of just before the event.
#[derive(Debug)]
pub struct Context<'a> {
    pub(crate) txn: &'a Transaction,
    /// Evaluation time: the event time (stream, offline) or the bounded serving time (sync).
    pub(crate) t: i64,
    pub(crate) user: &'a UserState,
    /// The profile version valid at `t`, if any.
    pub(crate) profile: Option<&'a UserProfile>,
    user_aggs: [UserAgg; schema::USER_WINDOWS.len()],
    /// Every merchant window sum at `t`, computed once (several features share each).
    merchant_sums: [i64; merchant::SERIES],
}

impl<'a> Context<'a> {
    /// The context of `txn` evaluated at `t` over the given states.
    pub fn new(txn: &'a Transaction, t: i64, e: Entities<'a>) -> Self {
        let user_aggs = std::array::from_fn(|w| e.user.aggregate(w, t));
        Context {
            txn,
            t,
            user: e.user,
            profile: e.profile.at(t),
            user_aggs,
            merchant_sums: e.merchant.sums_at(t),
        }
    }

    /// The merchant's sum of `counter` over its window `w` at the evaluation time.
    fn merchant_sum(&self, counter: Counter, w: usize) -> i64 {
        self.merchant_sums[merchant::series_index(counter, w as u8)]
    }

    fn eval(&self, source: &Source) -> f64 {
        match *source {
            Source::Request(f)
            | Source::User(_, _, f)
            | Source::Merchant(_, _, f)
            | Source::Profile(_, f) => f(self),
            Source::UserWindow(w, agg) => {
                let a = &self.user_aggs[w];
                window_value(agg, a.count as i64, a.sum, Some(a.max))
            }
            Source::MerchantWindow(w, agg) => {
                let count = self.merchant_sum(Counter::Transactions, w);
                let sum = self.merchant_sum(Counter::Amount, w);
                window_value(agg, count, sum, None)
            }
        }
    }
}

fn window_value(agg: schema::Agg, count: i64, sum_units: i64, max_units: Option<i64>) -> f64 {
    match agg {
        schema::Agg::Count => count as f64,
        schema::Agg::Sum => units_to_major(sum_units),
        schema::Agg::Mean if count > 0 => units_to_major(sum_units) / count as f64,
        schema::Agg::Mean => f64::NAN,
        schema::Agg::Max => max_units.map_or(f64::NAN, units_to_major),
    }
}

/// Integer amount units per major unit: 10⁴, so every ISO-4217 exponent (0–4) is exact.
pub const UNITS_PER_MAJOR: i64 = 10_000;

/// The amount in integer units of 10⁻⁴ major units. Sums of integers commute, so windows
/// summed in any order (Redis `HINCRBY` from several instances, the offline builder) agree
/// to the bit. No currency conversion: amounts of different currencies add up as numbers.
pub fn amount_units(txn: &Transaction) -> i64 {
    let exp = u32::from(txn.currency.exponent()).min(4);
    txn.amount_minor.saturating_mul(10i64.pow(4 - exp))
}

fn units_to_major(units: i64) -> f64 {
    units as f64 / UNITS_PER_MAJOR as f64
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn hour(c: &Context<'_>) -> f64 {
    (c.t.rem_euclid(DAY_MS) as f64) / HOUR_MS as f64
}

fn weekday_of(t: i64) -> i64 {
    // 1970-01-01 was a Thursday: Monday = 0 .. Sunday = 6.
    (t.div_euclid(DAY_MS) + 3).rem_euclid(7)
}

pub(crate) fn amount_log(c: &Context<'_>) -> f64 {
    c.txn.amount_major().ln_1p()
}
pub(crate) fn amount_is_round(c: &Context<'_>) -> f64 {
    let ten = 10i64.saturating_mul(10i64.pow(u32::from(c.txn.currency.exponent())));
    flag(c.txn.amount_minor % ten == 0)
}
pub(crate) fn hour_sin(c: &Context<'_>) -> f64 {
    (2.0 * std::f64::consts::PI * hour(c) / 24.0).sin()
}
pub(crate) fn hour_cos(c: &Context<'_>) -> f64 {
    (2.0 * std::f64::consts::PI * hour(c) / 24.0).cos()
}
pub(crate) fn weekday(c: &Context<'_>) -> f64 {
    weekday_of(c.t) as f64
}
pub(crate) fn is_weekend(c: &Context<'_>) -> f64 {
    flag(weekday_of(c.t) >= 5)
}
pub(crate) fn is_night(c: &Context<'_>) -> f64 {
    flag(hour(c) < 6.0)
}
pub(crate) fn channel_card_present(c: &Context<'_>) -> f64 {
    flag(c.txn.channel == Channel::CardPresent)
}
pub(crate) fn channel_online(c: &Context<'_>) -> f64 {
    flag(c.txn.channel == Channel::Online)
}
pub(crate) fn channel_atm(c: &Context<'_>) -> f64 {
    flag(c.txn.channel == Channel::Atm)
}
pub(crate) fn channel_transfer(c: &Context<'_>) -> f64 {
    flag(c.txn.channel == Channel::Transfer)
}
pub(crate) fn mcc(c: &Context<'_>) -> f64 {
    c.txn
        .merchant_category
        .parse::<u16>()
        .map_or(f64::NAN, f64::from)
}
pub(crate) fn new_device(c: &Context<'_>) -> f64 {
    flag(!c.txn.device_id.is_empty() && !c.user.knows_device(&c.txn.device_id))
}
pub(crate) fn new_merchant(c: &Context<'_>) -> f64 {
    flag(!c.user.knows_merchant(&c.txn.merchant_id))
}

fn agg_30d<'c>(c: &'c Context<'_>) -> &'c UserAgg {
    &c.user_aggs[3]
}

pub(crate) fn zscore_30d(c: &Context<'_>) -> f64 {
    let a = agg_30d(c);
    if a.count < 2 {
        return f64::NAN;
    }
    let n = a.count as f64;
    let mean = units_to_major(a.sum) / n;
    let var = (a.sumsq / n - mean * mean).max(0.0);
    let std = var.sqrt();
    if std <= 1e-9 {
        return f64::NAN;
    }
    (c.txn.amount_major() - mean) / std
}
pub(crate) fn ratio_30d(c: &Context<'_>) -> f64 {
    let a = agg_30d(c);
    if a.count == 0 || a.sum <= 0 {
        return f64::NAN;
    }
    c.txn.amount_major() / (units_to_major(a.sum) / a.count as f64)
}
pub(crate) fn since_prev(c: &Context<'_>) -> f64 {
    c.user
        .previous_before(c.t)
        .map(|prev| ((c.t - prev) as f64 / 1000.0).min(SINCE_PREV_CAP_SECS))
        .unwrap_or(SINCE_PREV_CAP_SECS)
        .ln_1p()
}
pub(crate) fn devices_24h(c: &Context<'_>) -> f64 {
    c.user.distinct_devices(c.t - DAY_MS, c.t) as f64
}
pub(crate) fn countries_24h(c: &Context<'_>) -> f64 {
    c.user.distinct_countries(c.t - DAY_MS, c.t) as f64
}
pub(crate) fn travel_speed(c: &Context<'_>) -> f64 {
    let (Some(here), Some(prev)) = (c.txn.geo, c.user.located()) else {
        return f64::NAN;
    };
    if prev.at_ms > c.t {
        // The latest located transaction is in this one's future: no "previous" known.
        return f64::NAN;
    }
    let km = haversine_km(prev.lat, prev.lon, here.lat, here.lon);
    let hours = (c.t - prev.at_ms) as f64 / HOUR_MS as f64;
    if hours <= 0.0 {
        return if km > 1.0 { SPEED_CAP_KMH } else { 0.0 };
    }
    (km / hours).min(SPEED_CAP_KMH)
}
pub(crate) fn atm_24h(c: &Context<'_>) -> f64 {
    c.user_aggs[1].atm as f64
}
pub(crate) fn fraud_reports_7d(c: &Context<'_>) -> f64 {
    c.merchant_sum(Counter::FraudReports, 0) as f64
}
pub(crate) fn fraud_reports_30d(c: &Context<'_>) -> f64 {
    c.merchant_sum(Counter::FraudReports, 1) as f64
}
fn share(reports: i64, txns: i64) -> f64 {
    if txns > 0 {
        reports as f64 / txns as f64
    } else {
        f64::NAN
    }
}
pub(crate) fn fraud_share_7d(c: &Context<'_>) -> f64 {
    share(
        c.merchant_sum(Counter::FraudReports, 0),
        c.merchant_sum(Counter::Transactions, 1),
    )
}
pub(crate) fn fraud_share_30d(c: &Context<'_>) -> f64 {
    share(
        c.merchant_sum(Counter::FraudReports, 1),
        c.merchant_sum(Counter::Transactions, 2),
    )
}

fn profile_value(c: &Context<'_>, f: impl Fn(&UserProfile) -> f64) -> f64 {
    c.profile.map_or(f64::NAN, f)
}
pub(crate) fn account_age_days(c: &Context<'_>) -> f64 {
    profile_value(c, |p| {
        ((c.t - p.account_opened_ms) as f64 / DAY_MS as f64).max(0.0)
    })
}
pub(crate) fn is_business(c: &Context<'_>) -> f64 {
    profile_value(c, |p| flag(p.account_type == AccountType::Business))
}
pub(crate) fn is_student(c: &Context<'_>) -> f64 {
    profile_value(c, |p| flag(p.account_type == AccountType::Student))
}
pub(crate) fn credit_band(c: &Context<'_>) -> f64 {
    profile_value(c, |p| f64::from(p.credit_band))
}
pub(crate) fn income_band(c: &Context<'_>) -> f64 {
    profile_value(c, |p| f64::from(p.income_band))
}
pub(crate) fn is_foreign(c: &Context<'_>) -> f64 {
    profile_value(c, |p| flag(p.home_country != c.txn.country))
}

fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const R: f64 = 6_371.0;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * a.sqrt().min(1.0).asin()
}

/// The vector of `txn` evaluated at `t` over the given states, in [`FEATURES`] order.
/// Read-only.
pub fn vector_at(txn: &Transaction, t: i64, e: Entities<'_>) -> Vec<f64> {
    let c = Context::new(txn, t, e);
    FEATURES.iter().map(|f| c.eval(&f.source)).collect()
}

/// The vector of `txn` as of just before it (evaluated at its event time).
pub fn vector(txn: &Transaction, e: Entities<'_>) -> Vec<f64> {
    vector_at(txn, txn.event_time_ms, e)
}

/// The vector over empty history (inference's degraded fallback): request-time features
/// are real, every history and profile feature reads as for a first transaction of an
/// unknown user.
pub fn cold_vector(txn: &Transaction) -> Vec<f64> {
    vector(txn, Entities::none())
}

/// The windowed aggregates of a user evaluated at `t`, by feature name: what
/// `GetOnlineFeatures` shows.
pub fn user_aggregates_at(user: &UserState, t: i64) -> Vec<(&'static str, f64)> {
    FEATURES
        .iter()
        .filter_map(|f| match f.source {
            Source::UserWindow(w, agg) => {
                let a = user.aggregate(w, t);
                Some((
                    f.name,
                    window_value(agg, a.count as i64, a.sum, Some(a.max)),
                ))
            }
            _ => None,
        })
        .collect()
}

/// The serving time of the synchronous path: the client's event time bounded by the server
/// clock, `now ± skew`. A client cannot move its vector into the past (to hide recent
/// velocity) or the future (to age it out) by more than the allowed skew.
pub fn serving_time(event_time_ms: i64, now_ms: i64, skew_ms: i64) -> i64 {
    event_time_ms.clamp(
        now_ms.saturating_sub(skew_ms),
        now_ms.saturating_add(skew_ms),
    )
}

/// Where an adapter keeps entity states while the engine works on them.
///
/// The speed layer loads a batch's users, merchants and profiles from Redis into a working
/// set and persists what changed; the offline builder keeps everything in memory
/// ([`MemoryStates`]). The engine only sees this trait.
pub trait States {
    fn user(&mut self, user_id: &str) -> &mut UserState;
    fn merchant(&mut self, merchant_id: &str) -> &mut MerchantState;
    fn profile(&mut self, user_id: &str) -> &mut ProfileHistory;
    /// A transaction's entities at once: user and merchant to fold into, profile to read.
    fn entities(
        &mut self,
        user_id: &str,
        merchant_id: &str,
    ) -> (&mut UserState, &mut MerchantState, &ProfileHistory);
}

/// What [`on_transaction`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// A new transaction: its vector (as of just before it) and the merchant increments now
    /// applied to the merchant state (the speed layer persists them with `HINCRBY`).
    New {
        values: Vec<f64>,
        merchant_delta: MerchantDelta,
    },
    /// The transaction id was already folded in: nothing changed, no vector.
    Duplicate,
}

/// Vector as of just before `txn`, then fold it into its user's and merchant's states.
pub fn on_transaction<S: States + ?Sized>(states: &mut S, txn: &Transaction) -> Applied {
    let (user, merchant, profile) = states.entities(&txn.user_id, &txn.merchant_id);
    let applied = on_transaction_read_merchant(user, merchant, profile, txn);
    if let Applied::New { merchant_delta, .. } = &applied {
        merchant.apply(merchant_delta);
    }
    applied
}

/// [`on_transaction`] without the vector: folds `txn` into its user's and merchant's states
/// (de-duplication included) and says whether it was new. What a pass that only rebuilds
/// states needs (the offline builder's first pass, a bootstrap of the online store): the
/// states end exactly as after [`on_transaction`], at a fraction of its cost.
pub fn fold_transaction<S: States + ?Sized>(states: &mut S, txn: &Transaction) -> bool {
    let (user, merchant, _) = states.entities(&txn.user_id, &txn.merchant_id);
    if !user.fold(txn) {
        return false;
    }
    merchant.apply(&MerchantDelta::transaction(
        txn.event_time_ms,
        amount_units(txn),
    ));
    true
}

/// [`on_transaction`] for a merchant state that already holds every increment (the offline
/// builder's second pass): the user state is folded, the merchant state only read. Merchant
/// features read closed tiles only, so increments of this and later events are invisible
/// to them either way.
pub fn on_transaction_read_merchant(
    user: &mut UserState,
    merchant: &MerchantState,
    profile: &ProfileHistory,
    txn: &Transaction,
) -> Applied {
    if user.has_seen(&txn.transaction_id) {
        return Applied::Duplicate;
    }
    let values = vector(
        txn,
        Entities {
            user,
            merchant,
            profile,
        },
    );
    user.fold(txn);
    Applied::New {
        values,
        merchant_delta: MerchantDelta::transaction(txn.event_time_ms, amount_units(txn)),
    }
}

/// Folds a label into the merchant of its transaction. Only fraud reports count (at the
/// label's `reported_at`); the increments applied are returned (empty for a non-fraud label).
pub fn on_label<S: States + ?Sized>(
    states: &mut S,
    merchant_id: &str,
    label: &Label,
) -> MerchantDelta {
    if !label.is_fraud {
        return MerchantDelta::default();
    }
    on_fraud_report(states, merchant_id, label.reported_at_ms)
}

/// Counts one fraud report for `merchant_id` at `reported_at_ms` (what [`on_label`] does for
/// a fraud label): for callers that hold only the report's time, such as the offline
/// builder, which need not build a whole `Label` per report.
pub fn on_fraud_report<S: States + ?Sized>(
    states: &mut S,
    merchant_id: &str,
    reported_at_ms: i64,
) -> MerchantDelta {
    let delta = MerchantDelta::fraud_report(reported_at_ms);
    states.merchant(merchant_id).apply(&delta);
    delta
}

/// Folds a profile version into its user's history. Returns whether the history changed
/// (a repeat of a kept version changes nothing).
pub fn on_profile<S: States + ?Sized>(states: &mut S, profile: &UserProfile) -> bool {
    states.profile(&profile.user_id).fold(profile)
}

/// A map of entity states by id. FNV instead of std's SipHash: the keys are ids the
/// platform's own clients send, short, and hashed several times per event — SipHash's
/// HashDoS resistance is not worth its cost on this hot path (an offline build, a test).
pub type StateMap<V> = HashMap<String, V, fnv::FnvBuildHasher>;

/// Every state in memory: the offline builder, tests, benchmarks.
#[derive(Debug, Default)]
pub struct MemoryStates {
    pub users: StateMap<UserState>,
    pub merchants: StateMap<MerchantState>,
    pub profiles: StateMap<ProfileHistory>,
}

/// The entry of `key`, created empty if missing; allocates the key only when it is new.
fn slot<'m, V: Default>(map: &'m mut StateMap<V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

impl States for MemoryStates {
    fn user(&mut self, user_id: &str) -> &mut UserState {
        slot(&mut self.users, user_id)
    }

    fn merchant(&mut self, merchant_id: &str) -> &mut MerchantState {
        slot(&mut self.merchants, merchant_id)
    }

    fn profile(&mut self, user_id: &str) -> &mut ProfileHistory {
        slot(&mut self.profiles, user_id)
    }

    fn entities(
        &mut self,
        user_id: &str,
        merchant_id: &str,
    ) -> (&mut UserState, &mut MerchantState, &ProfileHistory) {
        (
            slot(&mut self.users, user_id),
            slot(&mut self.merchants, merchant_id),
            self.profiles.get(user_id).unwrap_or(&NO_PROFILE),
        )
    }
}
