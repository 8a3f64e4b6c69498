//! Gradient-boosted trees with LightGBM (the field's standard, C++ via `lightgbm3`).
//!
//! Training only: the fitted model is saved in LightGBM's text format and scored everywhere
//! else by the pure-Rust [`model::trees::TreeEnsemble`], so inference links no C++.
//!
//! * Class imbalance: per-row weights — fraud rows weigh `positive_weight` (by default
//!   the square root of the legitimate/fraud ratio of the training window: the full ratio
//!   over-corrects and hurts calibration, no weight under-samples the rare class; the
//!   calibrator fitted on validation corrects the remaining shift).
//! * Early stopping on the validation window's average precision.
//! * Deterministic for a seed: `deterministic=true`, `force_row_wise=true` and a fixed
//!   thread count give bit-identical models across runs on the same machine.
//! * Categorical features arrive as frequency-rank codes from `trainset` (see
//!   `trainset::CategoryEncoding`) and are split on as ordinals: no category-to-bin
//!   mapping has to be carried to inference.
//! * Dataset-level parameters (`max_bin`, `categorical_feature`, `data_random_seed`, …)
//!   cannot be set: `lightgbm3` builds its `Dataset` with an empty parameter string and
//!   LightGBM ignores them once the Dataset exists. They are not offered here rather than
//!   accepted and silently ignored; LightGBM's defaults apply (255 bins).

use crate::{LearnError, Matrix};
use model::trees::TreeEnsemble;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// LightGBM parameters Vigil sets (the rest keep LightGBM's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbdtParams {
    pub num_leaves: u32,
    pub learning_rate: f64,
    pub max_iterations: u32,
    pub early_stopping_rounds: u32,
    pub min_data_in_leaf: u32,
    pub feature_fraction: f64,
    pub bagging_fraction: f64,
    pub bagging_freq: u32,
    pub lambda_l2: f64,
    /// Weight of a fraud row; `None` = sqrt(legitimate / fraud) of the training window.
    pub positive_weight: Option<f64>,
    pub seed: u64,
    pub threads: u32,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            num_leaves: 31,
            learning_rate: 0.05,
            max_iterations: 500,
            early_stopping_rounds: 50,
            min_data_in_leaf: 50,
            feature_fraction: 0.9,
            bagging_fraction: 0.8,
            bagging_freq: 1,
            lambda_l2: 1.0,
            positive_weight: None,
            seed: 42,
            threads: 2,
        }
    }
}

impl GbdtParams {
    /// The LightGBM parameter object (also what the Python reference run is given).
    pub fn lightgbm_params(&self, with_validation: bool) -> serde_json::Value {
        let mut p = serde_json::json!({
            "objective": "binary",
            "metric": "average_precision",
            "num_iterations": self.max_iterations,
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "deterministic": true,
            "force_row_wise": true,
            "num_threads": self.threads,
            "verbosity": -1,
        });
        if with_validation && self.early_stopping_rounds > 0 {
            p["early_stopping_rounds"] = self.early_stopping_rounds.into();
        }
        p
    }
}

/// A fitted booster: LightGBM's text model and the flat evaluator read from it.
#[derive(Debug, Clone)]
pub struct GbdtModel {
    /// LightGBM text format — the artifact's model file.
    pub text: String,
    pub ensemble: TreeEnsemble,
    pub iterations: usize,
    pub positive_weight: f64,
    /// Gain importance per feature (model order).
    pub importance: Vec<f64>,
    pub train_time: Duration,
}

fn lgb(context: &str) -> impl Fn(lightgbm3::Error) -> LearnError + '_ {
    move |e| LearnError::Engine(format!("LightGBM {context}: {e}"))
}

/// sqrt(legitimate / fraud) over `labels`.
pub fn default_positive_weight(labels: &[bool]) -> Result<f64, LearnError> {
    let pos = labels.iter().filter(|l| **l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(LearnError::Data(format!(
            "training window needs both classes, has {pos} fraud and {neg} legitimate rows"
        )));
    }
    Ok((neg as f64 / pos as f64).sqrt())
}

/// Fits on `train`, early-stopping on `valid`.
pub fn train(
    train: &Matrix<'_>,
    valid: &Matrix<'_>,
    params: &GbdtParams,
) -> Result<GbdtModel, LearnError> {
    let started = Instant::now();
    let positive_weight = match params.positive_weight {
        Some(w) => w,
        None => default_positive_weight(train.labels)?,
    };
    let to_f32 = |labels: &[bool]| {
        labels
            .iter()
            .map(|&l| f32::from(u8::from(l)))
            .collect::<Vec<f32>>()
    };
    let n = train.n_features as i32;
    let mut dtrain = lightgbm3::Dataset::from_slice(train.values, &to_f32(train.labels), n, true)
        .map_err(lgb("training dataset"))?;
    let weights: Vec<f32> = train
        .labels
        .iter()
        .map(|&l| if l { positive_weight as f32 } else { 1.0 })
        .collect();
    dtrain.set_weights(&weights).map_err(lgb("weights"))?;
    let names: Vec<String> = train.feature_names.to_vec();
    dtrain
        .set_feature_names(&names)
        .map_err(lgb("feature names"))?;
    let dvalid = lightgbm3::Dataset::from_slice_with_reference(
        valid.values,
        &to_f32(valid.labels),
        n,
        true,
        Some(&dtrain),
    )
    .map_err(lgb("validation dataset"))?;
    let booster =
        lightgbm3::Booster::train_with_valid(dtrain, Some(dvalid), &params.lightgbm_params(true))
            .map_err(lgb("training"))?;
    let train_time = started.elapsed();
    let text = booster.save_string().map_err(lgb("saving the model"))?;
    let importance = booster
        .feature_importance(lightgbm3::ImportanceType::Gain)
        .map_err(lgb("feature importance"))?;
    let ensemble = TreeEnsemble::from_lightgbm(&text)?;
    Ok(GbdtModel {
        iterations: ensemble.num_trees(),
        text,
        ensemble,
        positive_weight,
        importance,
        train_time,
    })
}

/// LightGBM's own raw scores for `rows` (for parity checks and the scorer benchmark).
pub fn lightgbm_raw_scores(
    text: &str,
    rows: &[f64],
    n_features: usize,
) -> Result<Vec<f64>, LearnError> {
    let booster = lightgbm3::Booster::from_string(text).map_err(lgb("loading the model"))?;
    booster
        .raw_scores(rows, n_features as i32, true)
        .map_err(lgb("predicting"))
}

/// LightGBM's own SHAP values (`predict_contrib`): `n_features + 1` per row.
pub fn lightgbm_contributions(
    text: &str,
    rows: &[f64],
    n_features: usize,
) -> Result<Vec<f64>, LearnError> {
    let booster = lightgbm3::Booster::from_string(text).map_err(lgb("loading the model"))?;
    booster
        .predict_contrib(rows, n_features as i32, true)
        .map_err(lgb("predicting contributions"))
}
