//! The single source of truth for Vigil's features: definitions, state and evaluation.
//!
//! * [`schema`] lists every feature once — name, type, entity, window, aggregation, version,
//!   definition — and derives the schema hash and the documentation table from that list.
//! * [`UserState`] (tiled windows and bounded last-seen sets, one per user),
//!   [`MerchantState`] (commutative integer counters per closed tile, one per merchant) and
//!   [`ProfileHistory`] (the last versions of the user dimension) are the incremental states;
//!   all are bounded whatever the event rate (see [`tiles`]).
//! * [`engine`] is the one API every adapter calls: [`on_transaction`] = vector as of just
//!   before the event, then fold (idempotent on the transaction id), [`on_label`] = a fraud
//!   report counted for its merchant at its `reported_at`, [`on_profile`] = a profile version
//!   kept for the transactions it is valid for, [`vector_at`] for read-only
//!   "as of now" reads, over any [`States`] implementation.
//!
//! The same code runs online (feature-service, states in Redis) and offline (the point-in-time
//! builder replays the lake through it), so training and serving cannot disagree.
//!
//! Architecture invariant: no I/O and no clock here. Time comes from the events themselves
//! (or from the caller, [`serving_time`]), so tests and replays are deterministic.

pub mod engine;
mod merchant;
mod profile;
pub mod schema;
pub mod tiles;
mod user;

pub use engine::{
    Applied, Entities, MemoryStates, StateMap, States, amount_units, cold_vector, fold_transaction,
    on_fraud_report, on_label, on_profile, on_transaction, on_transaction_read_merchant,
    serving_time, user_aggregates_at, vector, vector_at,
};
pub use merchant::{Counter, CounterKey, MerchantDelta, MerchantState};
pub use profile::{MAX_PROFILE_VERSIONS, ProfileHistory};
pub use schema::{
    FEATURE_SET_VERSION, FEATURES, FeatureDef, FeatureKind, LONGEST_WINDOW_MS, schema_hash,
};
pub use tiles::WindowSpec;
pub use user::UserState;

#[cfg(test)]
mod tests;
