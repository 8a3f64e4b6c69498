//! The training protocol, end to end: a generic training set in, a described model out.
//!
//! 1. Time split with a gap ≥ the label delay between train, validation and test
//!    (`trainset::split`); random splits are refused ([`SplitMethod::Random`]).
//! 2. Categorical encodings fit on the training window only.
//! 3. Time-ordered (forward-chaining) cross-validation inside the training window.
//! 4. LightGBM on train with early stopping on validation; logistic-regression baseline
//!    with standardisation fit on train.
//! 5. Calibration (isotonic or Platt) fit on validation; thresholds from the policy on
//!    calibrated validation scores.
//! 6. Evaluation on test — which nothing above has seen — with `model::metrics`.
//! 7. Reference profiles (features and scores on validation) for the drift monitor, leakage
//!    checks, and the manifest.

use crate::gbdt::{self, GbdtModel, GbdtParams};
use crate::{LearnError, Matrix, logistic};
use model::calibration::Calibrator;
use model::linear::{LogisticModel, sigmoid};
use model::manifest::{FeatureType, Manifest, Splits, Window};
use model::metrics::{self, Evaluation};
use model::policy::{Thresholds, threshold_for_budget};
use model::profile::{FeatureProfile, NamedProfile};
use model::reference::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use trainset::TrainingSet;
use trainset::split::{SplitSpec, time_series_cv, time_split};

const DAY_MS: i64 = 86_400_000;

/// How to split. Only `Time` trains; `Random` exists so that a configuration asking for it
/// gets a clear refusal instead of an inflated metric (see the leakage test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMethod {
    Time,
    Random,
}

/// Which calibrator to fit on the validation window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    Isotonic,
    Platt,
    None,
}

/// The decision policy thresholds are derived from (on calibrated validation scores).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// BLOCK where the validation false-positive rate stays at or under this.
    pub block_max_fpr: f64,
    /// REVIEW (or BLOCK) at most this share of validation transactions.
    pub review_alert_budget: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            block_max_fpr: 0.001,
            review_alert_budget: 0.01,
        }
    }
}

impl Policy {
    pub fn describe(&self) -> String {
        format!(
            "BLOCK where validation FPR ≤ {}%; REVIEW within an alert budget of {}% of transactions; otherwise APPROVE",
            self.block_max_fpr * 100.0,
            self.review_alert_budget * 100.0
        )
    }
}

/// Everything the protocol can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub model_id: String,
    pub split: SplitMethod,
    pub train_fraction: f64,
    pub validation_fraction: f64,
    /// Gap between windows; `None` = the training set's label delay. Smaller than the
    /// label delay is refused.
    pub gap_ms: Option<i64>,
    /// Forward-chaining folds inside the training window (0 = skip).
    pub cv_folds: usize,
    pub gbdt: GbdtParams,
    pub logistic_max_iterations: u64,
    pub calibration: CalibrationMethod,
    pub policy: Policy,
    /// `k` of precision@k and card-precision@k (alerts reviewed per day).
    pub alerts_per_day: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model_id: "vigil-fraud".into(),
            split: SplitMethod::Time,
            train_fraction: 0.6,
            validation_fraction: 0.2,
            gap_ms: None,
            cv_folds: 3,
            gbdt: GbdtParams::default(),
            logistic_max_iterations: 200,
            calibration: CalibrationMethod::Isotonic,
            policy: Policy::default(),
            alerts_per_day: 100,
        }
    }
}

/// Scores of one model on one window.
#[derive(Debug, Clone)]
pub struct WindowScores {
    pub probabilities: Vec<f64>,
    pub labels: Vec<bool>,
}

/// The outcome of [`train`]: the model, its manifest (without file checksums, which the
/// artifact writer adds) and what the report needs.
#[derive(Debug, Clone)]
pub struct Trained {
    pub manifest: Manifest,
    pub gbdt: GbdtModel,
    pub logistic: LogisticModel,
    /// Calibrated GBDT scores, uncalibrated GBDT and the baseline on the test window.
    pub test_calibrated: WindowScores,
    pub test_uncalibrated: WindowScores,
    pub test_logistic: WindowScores,
    pub test_evaluation: Evaluation,
    pub logistic_evaluation: Evaluation,
    pub cv_auc: Vec<f64>,
    /// Rows of the validation window for the drift monitor's two-sample tests (row-major,
    /// the manifest's feature order): all of them up to [`REFERENCE_SAMPLE_ROWS`], else
    /// that many evenly spaced over the window so that every part of it is represented.
    pub reference_sample: Vec<f64>,
}

/// Most validation rows kept as the drift reference sample (20 000 rows of 53 features are
/// 8.5 MB, and every two-sample test is already precise at that size).
pub const REFERENCE_SAMPLE_ROWS: usize = 20_000;

/// Up to `max` rows of a row-major matrix of `width` columns, evenly spaced, in order.
fn evenly_spaced_rows(values: &[f64], width: usize, max: usize) -> Vec<f64> {
    let rows = values.len() / width.max(1);
    if rows <= max {
        return values.to_vec();
    }
    (0..max)
        .flat_map(|i| {
            let r = i * rows / max;
            values[r * width..(r + 1) * width].iter().copied()
        })
        .collect()
}

fn window(times: &[i64], range: &Range<usize>) -> Window {
    Window {
        start_ms: times[range.start],
        end_ms: times[range.end - 1] + 1,
    }
}

fn matrix<'a>(set: &'a TrainingSet, names: &'a [String], rows: &Range<usize>) -> Matrix<'a> {
    let w = set.n_features();
    Matrix {
        values: &set.values()[rows.start * w..rows.end * w],
        labels: &set.labels()[rows.clone()],
        n_features: w,
        feature_names: names,
    }
}

fn put(metrics: &mut BTreeMap<String, f64>, prefix: &str, e: &Evaluation) {
    for (k, v) in e.to_map() {
        metrics.insert(format!("{prefix}{k}"), v);
    }
}

/// Warnings for features that alone separate the classes almost perfectly on the
/// validation window — the usual sign of a label leaking into a feature.
fn leakage_warnings(valid: &Matrix<'_>) -> Vec<String> {
    let mut warnings = Vec::new();
    for j in 0..valid.n_features {
        let column: Vec<f64> = valid
            .values
            .chunks_exact(valid.n_features)
            .map(|r| if r[j].is_nan() { f64::MIN } else { r[j] })
            .collect();
        if let Some(auc) = metrics::roc_auc(&column, valid.labels) {
            let separation = auc.max(1.0 - auc);
            if separation > 0.99 {
                warnings.push(format!(
                    "feature `{}` alone separates the classes on validation (AUC {separation:.4}): check it for label leakage",
                    valid.feature_names[j]
                ));
            }
        }
    }
    warnings
}

/// Trains and evaluates under the protocol above. `schema_hash` and `feature_set_version`
/// identify the feature vectors the model accepts at inference.
pub fn train(
    set: &mut TrainingSet,
    config: &TrainConfig,
    schema_hash: &str,
    feature_set_version: &str,
    version: &str,
    now_ms: i64,
) -> Result<Trained, LearnError> {
    if config.split == SplitMethod::Random {
        return Err(LearnError::Protocol(
            "a random split lets the model train on transactions later than the ones it is evaluated on (and on labels not yet known at that time): metrics would be inflated; use `split = \"time\"`".into(),
        ));
    }
    let gap_ms = config.gap_ms.unwrap_or(set.label_delay_ms());
    if gap_ms < set.label_delay_ms() {
        return Err(LearnError::Protocol(format!(
            "gap_ms {gap_ms} is shorter than the training set's label delay {} ms: validation would see labels not known at training time",
            set.label_delay_ms()
        )));
    }
    let splits = time_split(
        set.times_ms(),
        &SplitSpec {
            train_fraction: config.train_fraction,
            validation_fraction: config.validation_fraction,
            gap_ms,
        },
    )
    .map_err(|e| LearnError::Data(e.to_string()))?;
    let (tr, va, te) = (splits.train(), splits.validation(), splits.test());
    for (name, range) in [("training", &tr), ("validation", &va), ("test", &te)] {
        let pos = set.labels()[range.clone()].iter().filter(|l| **l).count();
        if pos == 0 || pos == range.len() {
            return Err(LearnError::Data(format!(
                "the {name} window ({} rows) needs both fraud and legitimate examples, has {pos} fraud",
                range.len()
            )));
        }
    }
    let encodings = set.encode_categoricals(tr.clone());
    let names: Vec<String> = set.feature_names().iter().map(|s| s.to_string()).collect();
    let (train_m, valid_m, test_m) = (
        matrix(set, &names, &tr),
        matrix(set, &names, &va),
        matrix(set, &names, &te),
    );

    // Forward-chaining CV inside the training window (its own early stopping on each fold's
    // evaluation block; the validation and test windows stay unseen).
    let mut cv_auc = Vec::new();
    let mut protocol_notes: Vec<String> = Vec::new();
    if config.cv_folds > 0 {
        let folds = time_series_cv(tr.clone(), set.times_ms(), config.cv_folds, gap_ms)
            .unwrap_or_else(|e| {
                protocol_notes.push(format!("time-ordered cross-validation skipped: {e}"));
                Vec::new()
            });
        let both_classes = |l: &[bool]| l.iter().any(|x| *x) && l.iter().any(|x| !*x);
        for fold in folds {
            let fit = matrix(set, &names, &fold.fit);
            let eval = matrix(set, &names, &fold.evaluate);
            if !both_classes(fit.labels) || !both_classes(eval.labels) {
                tracing::warn!(
                    ?fold,
                    "CV fold skipped: a block lacks fraud or legitimate rows"
                );
                continue;
            }
            let m = gbdt::train(&fit, &eval, &config.gbdt)?;
            let scores = m.ensemble.raw_scores(eval.values)?;
            if let Some(auc) = metrics::roc_auc(&scores, eval.labels) {
                cv_auc.push(auc);
            }
        }
    }

    let gbdt = gbdt::train(&train_m, &valid_m, &config.gbdt)?;
    let logistic = logistic::train(&train_m, config.logistic_max_iterations)?;

    let probs = |m: &Matrix<'_>| -> Result<Vec<f64>, LearnError> {
        Ok(gbdt
            .ensemble
            .raw_scores(m.values)?
            .into_iter()
            .map(sigmoid)
            .collect())
    };
    let val_raw = probs(&valid_m)?;
    let calibration = match config.calibration {
        CalibrationMethod::Isotonic => Calibrator::fit_isotonic(&val_raw, valid_m.labels),
        CalibrationMethod::Platt => Calibrator::fit_platt(&val_raw, valid_m.labels),
        CalibrationMethod::None => Ok(Calibrator::Identity),
    }
    .map_err(|e| LearnError::Data(format!("calibration on the validation window: {e}")))?;
    let val_cal: Vec<f64> = val_raw.iter().map(|p| calibration.apply(*p)).collect();

    let block = metrics::recall_at_fpr(&val_cal, valid_m.labels, config.policy.block_max_fpr)
        .map(|op| op.threshold.min(1.0))
        .ok_or_else(|| {
            LearnError::Data("cannot derive the BLOCK threshold on validation".into())
        })?;
    let review = threshold_for_budget(&val_cal, config.policy.review_alert_budget).min(block);
    let thresholds = Thresholds { review, block };

    let test_raw = probs(&test_m)?;
    let test_cal: Vec<f64> = test_raw.iter().map(|p| calibration.apply(*p)).collect();
    let test_lr: Vec<f64> = test_m
        .values
        .chunks_exact(test_m.n_features)
        .map(|r| logistic.predict(r))
        .collect();
    let entities: Vec<&str> = set.entities()[te.clone()]
        .iter()
        .map(String::as_str)
        .collect();
    let days: Vec<i64> = set.times_ms()[te.clone()]
        .iter()
        .map(|t| t.div_euclid(DAY_MS))
        .collect();
    let k = config.alerts_per_day;
    let test_evaluation = metrics::evaluate(&test_cal, test_m.labels, &entities, &days, k);
    let uncalibrated = metrics::evaluate(&test_raw, test_m.labels, &entities, &days, k);
    let logistic_evaluation = metrics::evaluate(&test_lr, test_m.labels, &entities, &days, k);

    let mut m = BTreeMap::new();
    put(&mut m, "test_", &test_evaluation);
    put(&mut m, "test_uncalibrated_", &uncalibrated);
    put(&mut m, "test_logistic_", &logistic_evaluation);
    let val_eval = metrics::evaluate(&val_cal, valid_m.labels, &[], &[], k);
    put(&mut m, "validation_", &val_eval);
    if !cv_auc.is_empty() {
        let mean = cv_auc.iter().sum::<f64>() / cv_auc.len() as f64;
        let sd =
            (cv_auc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / cv_auc.len() as f64).sqrt();
        m.insert("cv_roc_auc_mean".into(), mean);
        m.insert("cv_roc_auc_sd".into(), sd);
    }
    // What the policy does on the unseen test window.
    let negatives = test_m.labels.iter().filter(|l| !**l).count().max(1) as f64;
    let positives = test_m.labels.iter().filter(|l| **l).count().max(1) as f64;
    let count = |pred: &dyn Fn(f64) -> bool, fraud: Option<bool>| {
        test_cal
            .iter()
            .zip(test_m.labels)
            .filter(|(p, l)| pred(**p) && fraud.is_none_or(|f| f == **l))
            .count() as f64
    };
    m.insert(
        "test_block_fpr".into(),
        count(&|p| p >= block, Some(false)) / negatives,
    );
    m.insert(
        "test_block_recall".into(),
        count(&|p| p >= block, Some(true)) / positives,
    );
    m.insert(
        "test_alert_rate".into(),
        count(&|p| p >= review, None) / test_cal.len() as f64,
    );
    m.insert(
        "test_alert_recall".into(),
        count(&|p| p >= review, Some(true)) / positives,
    );
    m.insert("test_fraud_rate".into(), positives / test_cal.len() as f64);
    m.insert("gbdt_trees".into(), gbdt.iterations as f64);
    m.insert("gbdt_train_seconds".into(), gbdt.train_time.as_secs_f64());

    let feature_types = set.feature_types();
    let reference_features = (0..set.n_features())
        .map(|j| -> Result<NamedProfile, LearnError> {
            let profile = match feature_types[j] {
                trainset::FeatureType::Numeric => {
                    let column: Vec<f64> = valid_m
                        .values
                        .chunks_exact(valid_m.n_features)
                        .map(|r| r[j])
                        .collect();
                    FeatureProfile::numeric(&column, 10)
                }
                trainset::FeatureType::Categorical => {
                    let k = set
                        .categorical_features()
                        .iter()
                        .position(|&c| c == j)
                        .ok_or_else(|| {
                            LearnError::Data(format!(
                                "feature `{}` is categorical but has no raw values",
                                names[j]
                            ))
                        })?;
                    let raw: Vec<String> = set.categorical_raw()[k][va.clone()]
                        .iter()
                        // A missing category is "" — the profile's missing value.
                        .map(|v| v.clone().unwrap_or_default())
                        .collect();
                    FeatureProfile::categorical(&raw)
                }
            };
            Ok(NamedProfile {
                name: names[j].clone(),
                profile,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let reference_sample =
        evenly_spaced_rows(valid_m.values, valid_m.n_features, REFERENCE_SAMPLE_ROWS);

    let mut warnings = leakage_warnings(&valid_m);
    for note in &protocol_notes {
        tracing::warn!("{note}");
    }
    warnings.extend(protocol_notes);
    if let (Some(cv), Some(test)) = (m.get("cv_roc_auc_mean"), m.get("test_uncalibrated_roc_auc"))
        && test - cv > 0.05
    {
        warnings.push(format!(
            "test ROC-AUC {test:.4} is far above the time-ordered CV estimate {cv:.4}: check the test window for leakage"
        ));
    }

    let mut params: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    params.insert("algorithm".into(), "lightgbm_gbdt".into());
    params.insert("lightgbm".into(), config.gbdt.lightgbm_params(true));
    params.insert("positive_weight".into(), gbdt.positive_weight.into());
    params.insert(
        "calibration".into(),
        serde_json::to_value(config.calibration).unwrap_or_default(),
    );
    params.insert("cv_folds".into(), config.cv_folds.into());
    params.insert(
        "split".into(),
        serde_json::json!({
            "method": "time", "train_fraction": config.train_fraction,
            "validation_fraction": config.validation_fraction, "gap_ms": gap_ms,
        }),
    );
    params.insert(
        "categorical_encoding".into(),
        "frequency_rank_codes_fit_on_train".into(),
    );
    params.insert("training_set".into(), set.name().into());

    let times = set.times_ms();
    let manifest = Manifest {
        model_id: config.model_id.clone(),
        version: version.to_owned(),
        created_at_ms: now_ms,
        feature_set_version: feature_set_version.to_owned(),
        schema_hash: schema_hash.to_owned(),
        feature_names: names.clone(),
        feature_types: set
            .feature_types()
            .iter()
            .map(|t| match t {
                trainset::FeatureType::Numeric => FeatureType::Numeric,
                trainset::FeatureType::Categorical => FeatureType::Categorical,
            })
            .collect(),
        categories: encodings
            .iter()
            .map(|e| (e.feature().to_owned(), e.categories().to_vec()))
            .collect(),
        splits: Splits {
            train: window(times, &tr),
            validation: window(times, &va),
            test: window(times, &te),
            train_rows: tr.len() as u64,
            validation_rows: va.len() as u64,
            test_rows: te.len() as u64,
            gap_ms,
            gap_rows: splits.gap_rows() as u64,
        },
        data_fingerprint: set.fingerprint(),
        params,
        metrics: m,
        calibration,
        thresholds,
        policy: config.policy.describe(),
        reference_scores: Histogram::quantile_edges(&val_cal, 10),
        reference_features,
        warnings,
        code_version: crate::CODE_VERSION.into(),
        ..Manifest::default()
    };
    Ok(Trained {
        manifest,
        test_calibrated: WindowScores {
            probabilities: test_cal,
            labels: test_m.labels.to_vec(),
        },
        test_uncalibrated: WindowScores {
            probabilities: test_raw,
            labels: test_m.labels.to_vec(),
        },
        test_logistic: WindowScores {
            probabilities: test_lr,
            labels: test_m.labels.to_vec(),
        },
        gbdt,
        logistic,
        test_evaluation,
        logistic_evaluation,
        cv_auc,
        reference_sample,
    })
}

#[cfg(test)]
mod tests {
    use super::evenly_spaced_rows;

    #[test]
    fn the_reference_sample_spans_the_whole_window() {
        // 10 rows of 2: all kept up to the cap, else rows 0, 3, 6 (evenly spaced, in order).
        let values: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(evenly_spaced_rows(&values, 2, 10), values);
        assert_eq!(
            evenly_spaced_rows(&values, 2, 3),
            vec![0.0, 1.0, 6.0, 7.0, 12.0, 13.0]
        );
    }
}
