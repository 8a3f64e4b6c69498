//! Turns a training run into the report crate's plain input.

use learn::pipeline::{TrainConfig, Trained};
use model::Manifest;
use model::metrics;
use report::{
    CalibrationPoint, CalibrationSeries, Curve, DataSummary, FeatureImportance, ModelCard,
    ModelColumn, ModelRole, ReportInput, ScoreHistogram, SplitSummary, ThresholdPolicy,
};
use std::collections::BTreeMap;
use trainset::TrainingSet;

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Keeps at most ~400 points of a curve (plots do not need 100 000).
fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let step = (points.len() / 400).max(1);
    let last = points.last().copied();
    let mut out: Vec<(f64, f64)> = points.into_iter().step_by(step).collect();
    if let Some(l) = last
        && out.last() != Some(&l)
    {
        out.push(l);
    }
    out
}

fn curves(label: &str, p: &[f64], y: &[bool]) -> (Curve, Curve) {
    let roc = metrics::roc_curve(p, y)
        .into_iter()
        .map(|r| (r.fpr, r.tpr))
        .collect();
    let pr = metrics::pr_curve(p, y)
        .into_iter()
        .map(|r| (r.recall, r.precision))
        .collect();
    (
        Curve {
            label: label.into(),
            points: thin(roc),
        },
        Curve {
            label: label.into(),
            points: thin(pr),
        },
    )
}

fn calibration(label: &str, p: &[f64], y: &[bool]) -> CalibrationSeries {
    CalibrationSeries {
        label: label.into(),
        points: metrics::calibration_curve(p, y, 10)
            .into_iter()
            .map(|b| CalibrationPoint {
                mean_predicted: b.mean_predicted,
                fraction_positive: b.fraction_positive,
                count: b.count as u64,
            })
            .collect(),
    }
}

/// Metrics shown as table rows, under names the report knows (`roc_auc`, …).
fn column(
    name: &str,
    role: ModelRole,
    metrics: &BTreeMap<String, f64>,
    prefix: &str,
) -> ModelColumn {
    ModelColumn {
        name: name.into(),
        role,
        metrics: metrics
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(prefix)?;
                (!rest.starts_with("logistic_") && !rest.starts_with("uncalibrated_"))
                    .then(|| (rest.to_owned(), *v))
            })
            .collect(),
    }
}

pub(crate) fn input(
    t: &Trained,
    previous: Option<&Manifest>,
    set: &TrainingSet,
    config: &TrainConfig,
) -> ReportInput {
    let m = &t.manifest;
    let c = &t.test_calibrated;
    let (roc_g, pr_g) = curves("GBDT (calibrated)", &c.probabilities, &c.labels);
    let (roc_l, pr_l) = curves(
        "logistic baseline",
        &t.test_logistic.probabilities,
        &t.test_logistic.labels,
    );
    let mut models = vec![
        column(
            &format!("candidate {} (GBDT)", m.version),
            ModelRole::Candidate,
            &m.metrics,
            "test_",
        ),
        column(
            "baseline (logistic)",
            ModelRole::Baseline,
            &m.metrics,
            "test_logistic_",
        ),
    ];
    if let Some(p) = previous {
        models.push(column(
            &format!("production {}", p.version),
            ModelRole::Production,
            &p.metrics,
            "test_",
        ));
    }
    let fraud_in =
        |r: std::ops::Range<usize>| set.labels()[r].iter().filter(|l| **l).count() as u64;
    let n = set.len();
    let (tr, va) = (
        m.splits.train_rows as usize,
        m.splits.validation_rows as usize,
    );
    let te = m.splits.test_rows as usize;
    let split = |name: &str, w: &model::manifest::Window, rows: usize, fraud: u64| SplitSummary {
        name: name.into(),
        start: date(w.start_ms),
        end: date(w.end_ms),
        rows: rows as u64,
        fraud,
    };
    let mut importance: Vec<FeatureImportance> = m
        .feature_names
        .iter()
        .zip(&t.gbdt.importance)
        .map(|(f, i)| FeatureImportance {
            feature: f.clone(),
            importance: *i,
        })
        .collect();
    importance.sort_by(|a, b| b.importance.total_cmp(&a.importance));
    ReportInput {
        title: format!("{} {}", m.model_id, m.version),
        model_id: m.model_id.clone(),
        version: m.version.clone(),
        created_at: date(m.created_at_ms),
        data: DataSummary {
            source: format!("training set `{}` ({} rows, fingerprint {}…)", set.name(), n, &m.data_fingerprint[..12.min(m.data_fingerprint.len())]),
            window_start: date(m.splits.train.start_ms),
            window_end: date(m.splits.test.end_ms),
            splits: vec![
                split("train", &m.splits.train, tr, fraud_in(0..tr)),
                split("validation", &m.splits.validation, va, fraud_in(n - te - va..n - te)),
                split("test", &m.splits.test, te, fraud_in(n - te..n)),
            ],
            label_delay: format!("gap {:.1} h between windows ({} rows dropped)", m.splits.gap_ms as f64 / 3.6e6, m.splits.gap_rows),
        },
        models,
        roc: vec![roc_g, roc_l],
        pr: vec![pr_g, pr_l],
        prevalence: m.metrics.get("test_fraud_rate").copied(),
        calibration: vec![
            calibration("GBDT before calibration", &t.test_uncalibrated.probabilities, &c.labels),
            calibration(&format!("GBDT after {} calibration", m.calibration.name()), &c.probabilities, &c.labels),
        ],
        score_histogram: Some(ScoreHistogram::from_scores(c.probabilities.iter().copied().zip(c.labels.iter().copied()), 20)),
        feature_importance: importance,
        importance_kind: "LightGBM total gain".into(),
        thresholds: vec![
            ThresholdPolicy { decision: "BLOCK".into(), threshold: m.thresholds.block, policy: format!("validation FPR ≤ {}%", config.policy.block_max_fpr * 100.0) },
            ThresholdPolicy { decision: "REVIEW".into(), threshold: m.thresholds.review, policy: format!("alert budget {}% of transactions", config.policy.review_alert_budget * 100.0) },
        ],
        params: m.params.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        card: ModelCard {
            owner: "Vigil ML platform".into(),
            model_type: format!("LightGBM gradient-boosted trees ({} trees), {} calibration; baseline logistic regression", t.gbdt.iterations, m.calibration.name()),
            intended_use: "Real-time fraud risk scoring of card and account transactions, deciding APPROVE / REVIEW / BLOCK under the stated policy, with human review of REVIEW alerts.".into(),
            out_of_scope_uses: vec![
                "Credit decisions or any decision about a person other than holding a transaction for review".into(),
                "Populations, products or currencies absent from the training window".into(),
            ],
            limitations: vec![
                "Labels arrive late: recent fraud is under-represented; the gap between windows only hides labels not known at training time.".into(),
                "Thresholds hold for the validation window's fraud mix; the drift monitor compares live scores and features with the recorded reference.".into(),
                "Trained on synthetic data when built by the demo.".into(),
            ],
            ethical_considerations: "Features describe transaction behaviour, not protected attributes; false positives inconvenience legitimate customers, so BLOCK is held to a false-positive budget.".into(),
        },
        warnings: m.warnings.clone(),
    }
}
