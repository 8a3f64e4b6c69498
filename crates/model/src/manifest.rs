//! The manifest: everything needed to know what a model is, how it was made and how to check it.

use crate::policy::Thresholds;
use crate::reference::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The algorithm of the model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    LogisticRegression,
}

/// Time range of the data a model was trained on (unix ms, inclusive start, exclusive end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The training data split used (every window is time-ordered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Splits {
    pub train: Window,
    pub validation: Window,
    pub test: Window,
    pub train_rows: u64,
    pub validation_rows: u64,
    pub test_rows: u64,
}

/// The manifest of a model artifact (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub model_id: String,
    pub version: String,
    pub kind: ModelKind,
    pub created_at_ms: i64,
    pub feature_set_version: String,
    pub schema_hash: String,
    pub feature_names: Vec<String>,
    pub splits: Splits,
    /// sha256 over the training rows (ids, labels, values) — same data, same fingerprint.
    pub data_fingerprint: String,
    pub params: BTreeMap<String, serde_json::Value>,
    pub metrics: BTreeMap<String, f64>,
    pub thresholds: Thresholds,
    /// Score distribution on the validation window: the drift monitor's reference.
    pub reference_scores: Histogram,
    pub code_version: String,
    /// sha256 (hex) of every file of the artifact but the manifest, by file name.
    pub files: BTreeMap<String, String>,
    /// The model file, one of `files`.
    pub model_file: String,
}
