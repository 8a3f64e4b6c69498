//! Training: time-ordered split, standardisation fit on the training window only, logistic
//! regression (linfa), evaluation, thresholds from the validation window, manifest.

use crate::dataset::{Row, TrainingSet};
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use model::linear::LogisticModel;
use model::manifest::{Manifest, ModelKind, Splits, Window};
use model::policy::{Thresholds, threshold_for_budget};
use model::reference::Histogram;
use ndarray::{Array1, Array2};
use std::collections::BTreeMap;

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub model_id: String,
    pub max_iterations: u64,
    /// Fraction of validation transactions the REVIEW queue may take.
    pub review_budget: f64,
    /// Fraction of validation transactions that may be blocked.
    pub block_budget: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            model_id: "vigil-fraud".into(),
            max_iterations: 200,
            review_budget: 0.01,
            block_budget: 0.001,
        }
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("not enough labelled data: {0}")]
    NotEnoughData(String),
    #[error("logistic regression: {0}")]
    Fit(String),
}

fn window(rows: &[Row]) -> Window {
    Window {
        start_ms: rows.first().map_or(0, |r| r.event_time_ms),
        end_ms: rows.last().map_or(0, |r| r.event_time_ms + 1),
    }
}

fn check_both_classes(name: &str, rows: &[Row]) -> Result<(), TrainError> {
    let positives = rows.iter().filter(|r| r.label).count();
    if positives == 0 || positives == rows.len() {
        return Err(TrainError::NotEnoughData(format!(
            "the {name} window ({} rows) needs both fraud and legitimate examples, has {positives} fraud",
            rows.len()
        )));
    }
    Ok(())
}

/// Trains on `set` (rows in event-time order): 60 % train, 20 % validation, 20 % test, by time.
pub fn train(
    set: &TrainingSet,
    opts: &TrainOptions,
    now_ms: i64,
    version: &str,
) -> Result<(Manifest, LogisticModel), TrainError> {
    let rows = &set.rows;
    let n = rows.len();
    if n < 50 {
        return Err(TrainError::NotEnoughData(format!(
            "{n} labelled rows, need at least 50"
        )));
    }
    let (a, b) = (n * 6 / 10, n * 8 / 10);
    let (train, val, test) = (&rows[..a], &rows[a..b], &rows[b..]);
    check_both_classes("training", train)?;
    check_both_classes("validation", val)?;
    check_both_classes("test", test)?;
    let dim = features::FEATURES.len();

    // Standardisation, fit on the training window only.
    let mut means = vec![0.0; dim];
    for r in train {
        for (m, v) in means.iter_mut().zip(&r.values) {
            *m += v / train.len() as f64;
        }
    }
    let mut scales = vec![0.0; dim];
    for r in train {
        for ((s, v), m) in scales.iter_mut().zip(&r.values).zip(&means) {
            *s += (v - m).powi(2) / train.len() as f64;
        }
    }
    for s in &mut scales {
        *s = if *s > 1e-12 { s.sqrt() } else { 1.0 };
    }
    let x = Array2::from_shape_fn((train.len(), dim), |(i, j)| {
        (train[i].values[j] - means[j]) / scales[j]
    });
    let y: Array1<bool> = train.iter().map(|r| r.label).collect();
    let fitted = LogisticRegression::default()
        .max_iterations(opts.max_iterations)
        .fit(&Dataset::new(x.clone(), y))
        .map_err(|e| TrainError::Fit(e.to_string()))?;
    let mut weights: Vec<f64> = fitted.params().to_vec();
    let mut intercept = fitted.intercept();
    // linfa's coefficients give the probability of its "positive" (larger) class; orient them
    // so that the model predicts P(fraud) whichever class linfa picked.
    if !fitted.labels().pos.class {
        weights.iter_mut().for_each(|w| *w = -*w);
        intercept = -intercept;
    }
    let model = LogisticModel {
        means,
        scales,
        weights,
        intercept,
    };

    let score = |rows: &[Row]| -> (Vec<f64>, Vec<bool>) {
        (
            rows.iter().map(|r| model.predict(&r.values)).collect(),
            rows.iter().map(|r| r.label).collect(),
        )
    };
    let (val_scores, val_labels) = score(val);
    let (test_scores, test_labels) = score(test);
    let mut metrics = BTreeMap::new();
    let mut put = |name: &str, v: Option<f64>| {
        if let Some(v) = v {
            metrics.insert(name.to_owned(), v);
        }
    };
    put(
        "validation_roc_auc",
        model::metrics::roc_auc(&val_scores, &val_labels),
    );
    put(
        "validation_average_precision",
        model::metrics::average_precision(&val_scores, &val_labels),
    );
    put(
        "test_roc_auc",
        model::metrics::roc_auc(&test_scores, &test_labels),
    );
    put(
        "test_average_precision",
        model::metrics::average_precision(&test_scores, &test_labels),
    );
    put(
        "test_fraud_rate",
        Some(test_labels.iter().filter(|l| **l).count() as f64 / test.len() as f64),
    );

    let block = threshold_for_budget(&val_scores, opts.block_budget);
    let review = threshold_for_budget(&val_scores, opts.review_budget).min(block);
    let manifest = Manifest {
        model_id: opts.model_id.clone(),
        version: version.to_owned(),
        kind: ModelKind::LogisticRegression,
        created_at_ms: now_ms,
        feature_set_version: features::FEATURE_SET_VERSION.into(),
        schema_hash: features::schema_hash().into(),
        feature_names: features::FEATURES
            .iter()
            .map(|f| f.name.to_owned())
            .collect(),
        splits: Splits {
            train: window(train),
            validation: window(val),
            test: window(test),
            train_rows: train.len() as u64,
            validation_rows: val.len() as u64,
            test_rows: test.len() as u64,
        },
        data_fingerprint: set.fingerprint(),
        params: BTreeMap::from([
            ("algorithm".into(), serde_json::json!("logistic_regression")),
            (
                "max_iterations".into(),
                serde_json::json!(opts.max_iterations),
            ),
            (
                "review_budget".into(),
                serde_json::json!(opts.review_budget),
            ),
            ("block_budget".into(), serde_json::json!(opts.block_budget)),
        ]),
        metrics,
        thresholds: Thresholds { review, block },
        reference_scores: Histogram::quantile_edges(&val_scores, 10),
        code_version: env!("CARGO_PKG_VERSION").into(),
        files: BTreeMap::new(),
        model_file: String::new(),
    };
    Ok((manifest, model))
}
