//! Vigil's model training: everything that needs a learning library, kept out of inference.
//!
//! * [`gbdt`] — the main model, LightGBM gradient-boosted trees.
//! * [`logistic`] — the baseline, logistic regression with train-only standardisation.
//!
//! Scoring, metrics, calibration and the artifact format live in the `model` crate, which
//! the inference service shares; this crate only fits.

pub mod gbdt;
pub mod logistic;
pub mod pipeline;

/// The code that trained a model: crate version and, when built from a git checkout, the
/// commit (set by `build.rs`).
pub const CODE_VERSION: &str = env!("VIGIL_CODE_VERSION");

/// A borrowed, row-major feature matrix with its labels.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    pub values: &'a [f64],
    pub labels: &'a [bool],
    pub n_features: usize,
    pub feature_names: &'a [String],
}

impl Matrix<'_> {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("training data: {0}")]
    Data(String),
    #[error("{0}")]
    Engine(String),
    #[error("refused: {0}")]
    Protocol(String),
    #[error(transparent)]
    Model(#[from] model::ModelError),
}
