//! The feature set: every feature's name, type, version and definition, in vector order.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Version of the feature set as a whole (bumped when features are added or redefined).
pub const FEATURE_SET_VERSION: &str = "v1";

/// The value type of a feature (all values travel as `f64`).
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

/// One feature.
#[derive(Debug, Clone, Copy)]
pub struct FeatureDef {
    pub name: &'static str,
    pub kind: FeatureKind,
    /// Version of this feature's definition.
    pub version: u32,
    pub description: &'static str,
}

const fn def(name: &'static str, kind: FeatureKind, description: &'static str) -> FeatureDef {
    FeatureDef {
        name,
        kind,
        version: 1,
        description,
    }
}

use FeatureKind::{Binary, Count, Numeric};

/// Every feature of the set, in the order of vector values.
pub const FEATURES: &[FeatureDef] = &[
    def("amount_log", Numeric, "ln(1 + amount in major units)"),
    def(
        "amount_is_round",
        Binary,
        "amount is a whole multiple of 10 major units",
    ),
    def(
        "hour_sin",
        Numeric,
        "sin(2π·hour/24), hour of the event in UTC with minutes as fraction",
    ),
    def("hour_cos", Numeric, "cos(2π·hour/24)"),
    def("is_weekend", Binary, "event on Saturday or Sunday (UTC)"),
    def("is_night", Binary, "event between 00:00 and 06:00 UTC"),
    def("channel_card_present", Binary, "channel is card-present"),
    def(
        "channel_online",
        Binary,
        "channel is online (card-not-present)",
    ),
    def("channel_atm", Binary, "channel is an ATM withdrawal"),
    def("channel_transfer", Binary, "channel is an account transfer"),
    def(
        "is_new_device",
        Binary,
        "device id not seen before for this user (0 without device)",
    ),
    def(
        "is_new_merchant",
        Binary,
        "merchant not seen before for this user",
    ),
    def(
        "user_txn_count_1h",
        Count,
        "user's transactions in the hour before the event",
    ),
    def(
        "user_txn_count_24h",
        Count,
        "user's transactions in the 24 h before the event",
    ),
    def(
        "user_amount_sum_24h",
        Numeric,
        "sum of the user's amounts (major units) in the 24 h before",
    ),
    def(
        "user_amount_mean_24h",
        Numeric,
        "mean of those amounts, 0 when there are none",
    ),
    def(
        "user_amount_max_24h",
        Numeric,
        "max of those amounts, 0 when there are none",
    ),
    def(
        "user_log_secs_since_prev",
        Numeric,
        "ln(1 + seconds since the user's previous transaction), capped at 30 days; the cap when there is none",
    ),
    def(
        "user_distinct_countries_24h",
        Count,
        "distinct countries of the user's transactions in the 24 h before",
    ),
    def(
        "user_atm_count_24h",
        Count,
        "user's ATM withdrawals in the 24 h before",
    ),
];

/// Number of values in a vector.
pub fn len() -> usize {
    FEATURES.len()
}

/// Index of a feature by name.
pub fn index_of(name: &str) -> Option<usize> {
    FEATURES.iter().position(|f| f.name == name)
}

/// Hex sha256 over the set version and every feature's name, kind and version, in order.
/// Two vectors are comparable exactly when their schema hashes are equal.
pub fn schema_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(FEATURE_SET_VERSION.as_bytes());
        for f in FEATURES {
            h.update(b"\n");
            h.update(f.name.as_bytes());
            h.update(b":");
            h.update(f.kind.as_str().as_bytes());
            h.update(b":");
            h.update(f.version.to_string().as_bytes());
        }
        hex::encode(&h.finalize()[..16])
    })
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
}
