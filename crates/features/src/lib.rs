//! The single source of truth for Vigil's features.
//!
//! * [`schema`] lists every feature once — name, type, version, definition — and derives the
//!   feature set's schema hash; a model refuses vectors carrying another hash.
//! * [`UserState`] is the incremental per-user state; [`UserState::vector`] computes a
//!   transaction's vector *as of just before the event* (plus its request-time features) and
//!   [`UserState::fold`] adds the event to the state.
//!
//! The same code runs online (feature-service, state in Redis) and offline (the training-set
//! builder replays the lake through it), so training and serving cannot disagree.
//!
//! Architecture invariant: no I/O and no clock here. Time comes from the events themselves
//! (or from the caller for "as of now" reads), so tests and replays are deterministic.

pub mod schema;
mod state;

pub use schema::{FEATURE_SET_VERSION, FEATURES, FeatureDef, FeatureKind, schema_hash};
pub use state::{Fold, UserState};
