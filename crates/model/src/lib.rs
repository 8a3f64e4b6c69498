//! Vigil's model artifacts and everything needed to score with them, without network I/O.
//!
//! * [`manifest`] — the self-describing [`Manifest`] written next to every model file.
//! * [`artifact`] — writing an artifact directory and loading it back with sha256 and
//!   schema-hash verification ([`LoadedModel`]).
//! * [`linear`] — the logistic-regression scorer (standardisation folded in).
//! * [`metrics`] — the one implementation of every model-quality metric (ROC-AUC, average
//!   precision, recall at a false-positive rate, (card) precision@k, Brier, log loss,
//!   calibration error), used by the trainer, reports and benches alike.
//! * [`calibration`] — the [`Calibrator`] fitted on the validation window (Platt or
//!   isotonic) that turns a raw score into a probability.
//! * [`policy`] — turning a probability into APPROVE / REVIEW / BLOCK.
//! * [`reference`](mod@reference) — score histograms and the population stability index,
//!   shared by the trainer (which records the reference) and the drift monitor (which
//!   compares with it).
//! * [`profile`] — per-feature reference distributions ([`ReferenceProfile`]) for the drift
//!   monitor's feature PSI, binned once at training time, with the PSI formula of
//!   [`reference`](mod@reference).
//!
//! Architecture invariant: a model never scores a vector of another feature schema; the check
//! lives in [`LoadedModel::score`], the only scoring entry point.

pub mod artifact;
pub mod calibration;
pub mod linear;
pub mod manifest;
pub mod metrics;
pub mod policy;
pub mod profile;
pub mod reference;
pub mod trees;

pub use artifact::{
    LoadedModel, ModelFile, ReasonPolicy, Scored, read_reference_sample, write_artifact,
    write_reference_sample,
};
pub use calibration::{CalibrationError, Calibrator};
pub use manifest::{Manifest, ModelKind};
pub use policy::{Decision, Thresholds};
pub use profile::{FeatureProfile, ReferenceProfile};

/// Errors of loading or using a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed {path}: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("checksum mismatch for {file}: manifest says {expected}, file has {actual}")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("feature schema mismatch: model expects {expected}, vector has {actual}")]
    SchemaMismatch { expected: String, actual: String },
    #[error("vector has {actual} values, model expects {expected}")]
    Arity { expected: usize, actual: usize },
    #[error("invalid model: {0}")]
    Invalid(String),
}
