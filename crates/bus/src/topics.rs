//! Topic names. Versioned: an incompatible value schema gets a new topic.

pub const TRANSACTIONS: &str = "vigil.transactions.v1";
pub const FEATURES: &str = "vigil.features.v1";
pub const SCORES: &str = "vigil.scores.v1";
pub const LABELS: &str = "vigil.labels.v1";
pub const PROFILES: &str = "vigil.profiles.v1";
pub const QUARANTINE: &str = "vigil.quarantine.v1";
pub const DRIFT: &str = "vigil.drift.v1";

/// Every topic Vigil uses.
pub const ALL: &[&str] = &[
    TRANSACTIONS,
    FEATURES,
    SCORES,
    LABELS,
    PROFILES,
    QUARANTINE,
    DRIFT,
];
