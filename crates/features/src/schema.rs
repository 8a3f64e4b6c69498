//! The feature set, defined once: every feature's name, type, entity, window, aggregation,
//! version and definition, in vector order. The schema hash, the documentation table and the
//! evaluation all derive from [`FEATURES`]; adding a feature is one entry here.

use crate::engine::Context;
use crate::tiles::{DAY_MS, HOUR_MS, MINUTE_MS, WindowSpec};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::OnceLock;

/// Version of the feature set as a whole (bumped when features are added or redefined).
pub const FEATURE_SET_VERSION: &str = "v3";

/// The value type of a feature (all values travel as `f64`; NaN means "undefined").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// A real number.
    Numeric,
    /// 0.0 or 1.0.
    Binary,
    /// A non-negative count.
    Count,
}

impl FeatureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureKind::Numeric => "numeric",
            FeatureKind::Binary => "binary",
            FeatureKind::Count => "count",
        }
    }
}

/// Whose state a feature reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// The transaction itself (request-time features).
    Request,
    /// The transaction's user (state keyed by `user_id`).
    User,
    /// The transaction's merchant (state keyed by `merchant_id`).
    Merchant,
    /// The user's profile version valid at the event time (keyed by `user_id`).
    Profile,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Request => "request",
            Entity::User => "user",
            Entity::Merchant => "merchant",
            Entity::Profile => "profile",
        }
    }
}

/// An aggregation over a window's amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Count,
    Sum,
    Mean,
    Max,
}

impl Agg {
    pub fn as_str(self) -> &'static str {
        match self {
            Agg::Count => "count",
            Agg::Sum => "sum",
            Agg::Mean => "mean",
            Agg::Max => "max",
        }
    }
}

/// How a feature is computed.
#[derive(Clone, Copy)]
pub enum Source {
    /// From the transaction alone.
    Request(fn(&Context<'_>) -> f64),
    /// An aggregation of the user's amounts over `USER_WINDOWS[window]`.
    UserWindow(usize, Agg),
    /// An aggregation of the merchant's amounts over `MERCHANT_WINDOWS[window]` (count, sum).
    MerchantWindow(usize, Agg),
    /// Any other function of the user's state (`window`: the one it reads, if any).
    User(Option<WindowSpec>, &'static str, fn(&Context<'_>) -> f64),
    /// Any other function of the merchant's state.
    Merchant(Option<WindowSpec>, &'static str, fn(&Context<'_>) -> f64),
    /// A function of the profile version valid at the event time (NaN without one).
    Profile(&'static str, fn(&Context<'_>) -> f64),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.entity().as_str(), self.aggregation())
    }
}

impl Source {
    pub fn entity(&self) -> Entity {
        match self {
            Source::Request(_) => Entity::Request,
            Source::UserWindow(..) | Source::User(..) => Entity::User,
            Source::MerchantWindow(..) | Source::Merchant(..) => Entity::Merchant,
            Source::Profile(..) => Entity::Profile,
        }
    }

    /// The window read, if any.
    pub fn window(&self) -> Option<WindowSpec> {
        match self {
            Source::Request(_) | Source::Profile(..) => None,
            Source::UserWindow(w, _) => Some(USER_WINDOWS[*w]),
            Source::MerchantWindow(w, _) => Some(MERCHANT_WINDOWS[*w]),
            Source::User(w, ..) | Source::Merchant(w, ..) => *w,
        }
    }

    /// The aggregation's name (`count`, `sum`, … or the function's short name).
    pub fn aggregation(&self) -> &'static str {
        match self {
            Source::Request(_) => "value",
            Source::UserWindow(_, a) | Source::MerchantWindow(_, a) => a.as_str(),
            Source::User(_, name, _) | Source::Merchant(_, name, _) | Source::Profile(name, _) => {
                name
            }
        }
    }
}

/// One feature.
#[derive(Debug, Clone, Copy)]
pub struct FeatureDef {
    pub name: &'static str,
    pub kind: FeatureKind,
    /// Version of this feature's definition.
    pub version: u32,
    pub source: Source,
    pub description: &'static str,
}

const fn def(
    name: &'static str,
    kind: FeatureKind,
    source: Source,
    description: &'static str,
) -> FeatureDef {
    FeatureDef {
        name,
        kind,
        version: 1,
        source,
        description,
    }
}

const fn w(name: &'static str, tile_ms: i64, tiles: i64, closed: bool) -> WindowSpec {
    WindowSpec {
        name,
        tile_ms,
        tiles,
        closed,
    }
}

/// The user windows (open: the event's own tile counts what was folded before it).
pub const USER_WINDOWS: [WindowSpec; 4] = [
    w("1h", 5 * MINUTE_MS, 12, false),
    w("24h", HOUR_MS, 24, false),
    w("7d", 6 * HOUR_MS, 28, false),
    w("30d", DAY_MS, 30, false),
];
/// The merchant windows over transactions (closed: complete tiles only).
pub const MERCHANT_WINDOWS: [WindowSpec; 3] = [
    w("1d", HOUR_MS, 24, true),
    w("7d", 6 * HOUR_MS, 28, true),
    w("30d", DAY_MS, 30, true),
];
/// The merchant windows over fraud reports, by `reported_at` (closed).
pub const LABEL_WINDOWS: [WindowSpec; 2] =
    [w("7d", 6 * HOUR_MS, 28, true), w("30d", DAY_MS, 30, true)];

/// The longest window any state must answer for: Redis keys live this long after their
/// last write.
pub const LONGEST_WINDOW_MS: i64 = 31 * DAY_MS;

/// Cap (and "no previous transaction" value) of the seconds-since-previous feature.
pub(crate) const SINCE_PREV_CAP_SECS: f64 = 30.0 * 86_400.0;
/// Cap of the implied travel speed (no scheduled flight is faster).
pub(crate) const SPEED_CAP_KMH: f64 = 2_000.0;

use Agg::{Count as C, Max as X, Mean as M, Sum as S};
use FeatureKind::{Binary, Count, Numeric};

macro_rules! user_window {
    ($w:expr, $count:literal, $sum:literal, $mean:literal, $max:literal, $span:literal) => {
        [
            def(
                $count,
                Count,
                Source::UserWindow($w, C),
                concat!("user's transactions in the last ", $span),
            ),
            def(
                $sum,
                Numeric,
                Source::UserWindow($w, S),
                concat!(
                    "sum of the user's amounts (major units) in the last ",
                    $span
                ),
            ),
            def(
                $mean,
                Numeric,
                Source::UserWindow($w, M),
                "mean of those amounts; NaN when there are none",
            ),
            def(
                $max,
                Numeric,
                Source::UserWindow($w, X),
                "max of those amounts; 0 when there are none",
            ),
        ]
    };
}

const fn concat_defs<const N: usize>(parts: &[&[FeatureDef]]) -> [FeatureDef; N] {
    let mut out = [parts[0][0]; N];
    let mut k = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[k] = parts[p][i];
            k += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(k == N, "feature count mismatch");
    out
}

const REQUEST: [FeatureDef; 12] = [
    def(
        "amount_log",
        Numeric,
        Source::Request(crate::engine::amount_log),
        "ln(1 + amount in major units)",
    ),
    def(
        "amount_is_round",
        Binary,
        Source::Request(crate::engine::amount_is_round),
        "amount is a whole multiple of 10 major units",
    ),
    def(
        "hour_sin",
        Numeric,
        Source::Request(crate::engine::hour_sin),
        "sin(2π·hour/24), hour of the event in UTC with minutes as fraction",
    ),
    def(
        "hour_cos",
        Numeric,
        Source::Request(crate::engine::hour_cos),
        "cos(2π·hour/24)",
    ),
    def(
        "weekday",
        Numeric,
        Source::Request(crate::engine::weekday),
        "day of the week in UTC, Monday = 0 … Sunday = 6",
    ),
    def(
        "is_weekend",
        Binary,
        Source::Request(crate::engine::is_weekend),
        "event on Saturday or Sunday (UTC)",
    ),
    def(
        "is_night",
        Binary,
        Source::Request(crate::engine::is_night),
        "event between 00:00 and 06:00 UTC",
    ),
    def(
        "channel_card_present",
        Binary,
        Source::Request(crate::engine::channel_card_present),
        "channel is card-present",
    ),
    def(
        "channel_online",
        Binary,
        Source::Request(crate::engine::channel_online),
        "channel is online (card-not-present)",
    ),
    def(
        "channel_atm",
        Binary,
        Source::Request(crate::engine::channel_atm),
        "channel is an ATM withdrawal",
    ),
    def(
        "channel_transfer",
        Binary,
        Source::Request(crate::engine::channel_transfer),
        "channel is an account transfer",
    ),
    def(
        "merchant_category_code",
        Numeric,
        Source::Request(crate::engine::mcc),
        "ISO 18245 merchant category code as a number (its ranges group industries)",
    ),
];

const USER_SETS: [FeatureDef; 2] = [
    def(
        "is_new_device",
        Binary,
        Source::User(None, "not_in_last_16", crate::engine::new_device),
        "device id not among the user's last 16 devices (0 without device)",
    ),
    def(
        "is_new_merchant",
        Binary,
        Source::User(None, "not_in_last_64", crate::engine::new_merchant),
        "merchant not among the user's last 64 merchants",
    ),
];

const USER_1H: [FeatureDef; 4] = user_window!(
    0,
    "user_txn_count_1h",
    "user_amount_sum_1h",
    "user_amount_mean_1h",
    "user_amount_max_1h",
    "hour (5-minute tiles)"
);
const USER_24H: [FeatureDef; 4] = user_window!(
    1,
    "user_txn_count_24h",
    "user_amount_sum_24h",
    "user_amount_mean_24h",
    "user_amount_max_24h",
    "24 h (1-hour tiles)"
);
const USER_7D: [FeatureDef; 4] = user_window!(
    2,
    "user_txn_count_7d",
    "user_amount_sum_7d",
    "user_amount_mean_7d",
    "user_amount_max_7d",
    "7 days (6-hour tiles)"
);
const USER_30D: [FeatureDef; 4] = user_window!(
    3,
    "user_txn_count_30d",
    "user_amount_sum_30d",
    "user_amount_mean_30d",
    "user_amount_max_30d",
    "30 days (1-day tiles)"
);

const USER_OTHER: [FeatureDef; 7] = [
    def(
        "user_amount_zscore_30d",
        Numeric,
        Source::User(Some(USER_WINDOWS[3]), "zscore", crate::engine::zscore_30d),
        "(amount − mean) / population std of the user's 30-day amounts; NaN with fewer than 2 or a zero std",
    ),
    def(
        "user_amount_ratio_30d",
        Numeric,
        Source::User(Some(USER_WINDOWS[3]), "ratio", crate::engine::ratio_30d),
        "amount / mean of the user's 30-day amounts; NaN when there are none",
    ),
    def(
        "user_log_secs_since_prev",
        Numeric,
        Source::User(None, "since_previous", crate::engine::since_prev),
        "ln(1 + seconds since the user's previous transaction at or before this one, among the last 16 folded), capped at 30 days; the cap when there is none",
    ),
    def(
        "user_distinct_devices_24h",
        Count,
        Source::User(None, "distinct_24h", crate::engine::devices_24h),
        "distinct devices the user was last seen with in the 24 h before",
    ),
    def(
        "user_distinct_countries_24h",
        Count,
        Source::User(None, "distinct_24h", crate::engine::countries_24h),
        "distinct countries the user was last seen in in the 24 h before",
    ),
    def(
        "user_travel_speed_kmh",
        Numeric,
        Source::User(None, "implied_speed", crate::engine::travel_speed),
        "great-circle distance from the user's latest located transaction before this one, divided by the time between them, in km/h, capped at 2000; NaN when either is not located",
    ),
    def(
        "user_atm_count_24h",
        Count,
        Source::User(Some(USER_WINDOWS[1]), "count_atm", crate::engine::atm_24h),
        "user's ATM withdrawals in the last 24 h (1-hour tiles)",
    ),
];

const MERCHANT: [FeatureDef; 10] = [
    def(
        "merchant_txn_count_1d",
        Count,
        Source::MerchantWindow(0, C),
        "merchant's transactions in the 24 complete hours before the event's hour",
    ),
    def(
        "merchant_txn_count_7d",
        Count,
        Source::MerchantWindow(1, C),
        "merchant's transactions in the 28 complete 6-hour tiles before the event's",
    ),
    def(
        "merchant_txn_count_30d",
        Count,
        Source::MerchantWindow(2, C),
        "merchant's transactions in the 30 complete UTC days before the event's day",
    ),
    def(
        "merchant_amount_sum_1d",
        Numeric,
        Source::MerchantWindow(0, S),
        "sum of those amounts (major units), 1-day window",
    ),
    def(
        "merchant_amount_sum_7d",
        Numeric,
        Source::MerchantWindow(1, S),
        "sum of those amounts (major units), 7-day window",
    ),
    def(
        "merchant_amount_sum_30d",
        Numeric,
        Source::MerchantWindow(2, S),
        "sum of those amounts (major units), 30-day window",
    ),
    def(
        "merchant_fraud_reports_7d",
        Count,
        Source::Merchant(
            Some(LABEL_WINDOWS[0]),
            "count_reported",
            crate::engine::fraud_reports_7d,
        ),
        "fraud labels on the merchant's transactions reported in the 28 complete 6-hour tiles before the event's (so always before the event)",
    ),
    def(
        "merchant_fraud_reports_30d",
        Count,
        Source::Merchant(
            Some(LABEL_WINDOWS[1]),
            "count_reported",
            crate::engine::fraud_reports_30d,
        ),
        "fraud labels reported in the 30 complete UTC days before the event's day",
    ),
    def(
        "merchant_fraud_share_7d",
        Numeric,
        Source::Merchant(
            Some(LABEL_WINDOWS[0]),
            "share_reported",
            crate::engine::fraud_share_7d,
        ),
        "merchant_fraud_reports_7d / merchant_txn_count_7d; NaN without transactions",
    ),
    def(
        "merchant_fraud_share_30d",
        Numeric,
        Source::Merchant(
            Some(LABEL_WINDOWS[1]),
            "share_reported",
            crate::engine::fraud_share_30d,
        ),
        "merchant_fraud_reports_30d / merchant_txn_count_30d; NaN without transactions",
    ),
];

const PROFILE: [FeatureDef; 6] = [
    def(
        "profile_account_age_days",
        Numeric,
        Source::Profile("age_at_event", crate::engine::account_age_days),
        "days from the account's opening to the event (0 if opened after it); NaN without a profile",
    ),
    def(
        "profile_is_business",
        Binary,
        Source::Profile("one_hot", crate::engine::is_business),
        "account type is business; NaN without a profile",
    ),
    def(
        "profile_is_student",
        Binary,
        Source::Profile("one_hot", crate::engine::is_student),
        "account type is student (personal: both one-hot values 0); NaN without a profile",
    ),
    def(
        "profile_credit_band",
        Numeric,
        Source::Profile("value", crate::engine::credit_band),
        "credit band 1 (lowest) … 5 (highest); NaN without a profile",
    ),
    def(
        "profile_income_band",
        Numeric,
        Source::Profile("value", crate::engine::income_band),
        "income band 1 (lowest) … 5 (highest); NaN without a profile",
    ),
    def(
        "is_foreign_country",
        Binary,
        Source::Profile("differs_from_home", crate::engine::is_foreign),
        "transaction country differs from the profile's home country; NaN without a profile",
    ),
];

const N_FEATURES: usize = 12 + 2 + 16 + 7 + 10 + 6;

/// Every feature of the set, in the order of vector values.
pub const FEATURES: &[FeatureDef] = &concat_defs::<N_FEATURES>(&[
    &REQUEST,
    &USER_SETS,
    &USER_1H,
    &USER_24H,
    &USER_7D,
    &USER_30D,
    &USER_OTHER,
    &MERCHANT,
    &PROFILE,
]);

/// Number of values in a vector.
pub fn len() -> usize {
    FEATURES.len()
}

/// Index of a feature by name.
pub fn index_of(name: &str) -> Option<usize> {
    FEATURES.iter().position(|f| f.name == name)
}

fn window_key(w: Option<WindowSpec>) -> String {
    match w {
        None => "-".into(),
        Some(w) => format!(
            "{}x{}{}",
            w.tiles,
            w.tile_ms,
            if w.closed { "c" } else { "o" }
        ),
    }
}

/// Hex sha256 (first 16 bytes) over the set version and every feature's name, kind, entity,
/// window, aggregation and version, in order. Two vectors are comparable exactly when their
/// schema hashes are equal.
pub fn schema_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(FEATURE_SET_VERSION.as_bytes());
        for f in FEATURES {
            h.update(
                format!(
                    "\n{}:{}:{}:{}:{}:{}",
                    f.name,
                    f.kind.as_str(),
                    f.source.entity().as_str(),
                    window_key(f.source.window()),
                    f.source.aggregation(),
                    f.version
                )
                .as_bytes(),
            );
        }
        hex::encode(&h.finalize()[..16])
    })
}

/// The feature table in Markdown (what `docs/features.md` holds; `vigil-trainer features`
/// prints it).
pub fn markdown_table() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Vigil feature set {FEATURE_SET_VERSION}\n\nGenerated from `crates/features/src/schema.rs` by \
         `vigil-trainer features` — do not edit by hand. Schema hash `{}`, {} features.\n",
        schema_hash(),
        FEATURES.len()
    );
    let _ = writeln!(
        out,
        "| # | name | type | entity | window | aggregation | version | definition |\n|---:|---|---|---|---|---|---:|---|"
    );
    for (i, f) in FEATURES.iter().enumerate() {
        let window = f.source.window().map_or_else(
            || "—".to_owned(),
            |w| format!("{} ({})", w.name, w.describe()),
        );
        let _ = writeln!(
            out,
            "| {i} | `{}` | {} | {} | {window} | {} | {} | {} |",
            f.name,
            f.kind.as_str(),
            f.source.entity().as_str(),
            f.source.aggregation(),
            f.version,
            f.description
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_hash_is_stable() {
        let mut names: Vec<_> = FEATURES.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FEATURES.len());
        assert_eq!(schema_hash().len(), 32);
        assert_eq!(schema_hash(), schema_hash());
        assert_eq!(index_of("amount_log"), Some(0));
    }

    #[test]
    fn window_names_match_the_windows_they_read() {
        for f in FEATURES {
            if let Some(w) = f.source.window()
                && !f.name.ends_with(w.name)
            {
                // 1d merchant windows are named 1d, user 24 h windows 24h: the suffix must
                // always be the window's own name.
                panic!(
                    "{} reads window {} but is not named after it",
                    f.name, w.name
                );
            }
        }
    }

    #[test]
    fn the_generated_table_is_committed() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/features.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == markdown_table(),
            "docs/features.md is out of date: run `cargo run -p trainer --bin vigil-trainer -- features > docs/features.md`"
        );
    }
}
