//! The manifest: everything needed to know what a model is, how it was made and how to check it.

use crate::calibration::Calibrator;
use crate::policy::Thresholds;
use crate::profile::NamedProfile;
use crate::reference::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The algorithm of the model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    #[default]
    LogisticRegression,
    /// LightGBM text format, scored by [`crate::trees::TreeEnsemble`].
    GradientBoostedTrees,
}

/// How a feature is represented in the vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    #[default]
    Numeric,
    /// Frequency-rank codes (see [`Manifest::categories`]).
    Categorical,
}

/// Time range of the data a model was trained on (unix ms, inclusive start, exclusive end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The training data split used (every window is time-ordered).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Splits {
    pub train: Window,
    pub validation: Window,
    pub test: Window,
    pub train_rows: u64,
    pub validation_rows: u64,
    pub test_rows: u64,
    /// The gap left between windows (≥ the label delay) and the rows dropped in it.
    #[serde(default)]
    pub gap_ms: i64,
    #[serde(default)]
    pub gap_rows: u64,
}

/// The manifest of a model artifact (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub model_id: String,
    pub version: String,
    pub kind: ModelKind,
    pub created_at_ms: i64,
    pub feature_set_version: String,
    pub schema_hash: String,
    pub feature_names: Vec<String>,
    /// One per feature; empty in manifests written before types were recorded (all numeric).
    #[serde(default)]
    pub feature_types: Vec<FeatureType>,
    /// For each categorical feature, its categories in code order (code = index; unseen =
    /// `len`, missing = NaN).
    #[serde(default)]
    pub categories: BTreeMap<String, Vec<String>>,
    pub splits: Splits,
    /// sha256 over the training rows (ids, labels, values) — same data, same fingerprint.
    pub data_fingerprint: String,
    pub params: BTreeMap<String, serde_json::Value>,
    /// Flat metric names: `test_roc_auc` (main model), `test_logistic_roc_auc` (baseline),
    /// `cv_roc_auc_mean`, … (see the trainer's report for the full list).
    pub metrics: BTreeMap<String, f64>,
    /// Probability calibration fitted on the validation window, applied before thresholds.
    #[serde(default)]
    pub calibration: Calibrator,
    pub thresholds: Thresholds,
    /// The policy the thresholds were derived from, in words (for the report and audits).
    #[serde(default)]
    pub policy: String,
    /// Score distribution on the validation window: the drift monitor's reference.
    pub reference_scores: Histogram,
    /// Per-feature reference distributions (quantile bins or category frequencies) on the
    /// validation window.
    #[serde(default)]
    pub reference_features: Vec<NamedProfile>,
    /// Protocol warnings raised during training (e.g. leakage checks); empty when clean.
    #[serde(default)]
    pub warnings: Vec<String>,
    pub code_version: String,
    /// sha256 (hex) of every file of the artifact but the manifest, by file name.
    pub files: BTreeMap<String, String>,
    /// The model file, one of `files`.
    pub model_file: String,
}

impl Default for Thresholds {
    /// Nothing is flagged until a trainer chooses thresholds.
    fn default() -> Self {
        Thresholds {
            review: 1.0,
            block: 1.0,
        }
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::uniform(10)
    }
}
