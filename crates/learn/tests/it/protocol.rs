//! The training protocol on generic training sets written to Parquet.

use learn::Matrix;
use learn::gbdt::{self, GbdtParams};
use learn::pipeline::{self, SplitMethod, TrainConfig};
use model::metrics;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use trainset::{NumericSetSpec, RowRef, TrainingSet, write_numeric};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

struct Synthetic {
    entities: Vec<String>,
    times: Vec<i64>,
    labels: Vec<bool>,
    rows: Vec<Vec<f64>>,
}

/// 60 days of transactions by `users` users (one every ~5 minutes). Fraud comes in *campaigns*: a compromised user
/// is defrauded repeatedly over a few days. Features: the user's numeric id and the day
/// (enough to memorise campaigns when the split is random), plus an amount-like signal
/// that genuinely generalises (`stable_signal`).
fn campaigns(stable_signal: f64, users: usize, seed: u64) -> Synthetic {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut campaign: Vec<Option<(i64, i64)>> = vec![None; users];
    for c in campaign.iter_mut() {
        if rng.random::<f64>() < 0.3 {
            let start = rng.random_range(0..57) * DAY_MS;
            *c = Some((start, start + 3 * DAY_MS));
        }
    }
    let mut s = Synthetic {
        entities: vec![],
        times: vec![],
        labels: vec![],
        rows: vec![],
    };
    let mut t = 0;
    while t < 60 * DAY_MS {
        t += rng.random_range(1..10) * 60_000;
        let u = rng.random_range(0..users);
        let fraud =
            matches!(campaign[u], Some((a, b)) if t >= a && t < b) && rng.random::<f64>() < 0.7;
        let amount = rng.random::<f64>() * 2.0 + if fraud { stable_signal } else { 0.0 };
        s.entities.push(format!("u{u}"));
        s.times.push(t);
        s.labels.push(fraud);
        s.rows.push(vec![
            u as f64,
            (t / DAY_MS) as f64,
            amount,
            rng.random::<f64>(),
        ]);
    }
    s
}

fn write(dir: &Path, s: &Synthetic, label_delay_ms: i64) -> std::path::PathBuf {
    let spec = NumericSetSpec {
        id_column: None,
        labels_as_of_ms: None,
        name: "campaigns".into(),
        entity_column: "user_id".into(),
        time_column: "event_time_ms".into(),
        label_column: "is_fraud".into(),
        label_delay_ms,
        feature_names: vec![
            "user_num".into(),
            "day".into(),
            "amount".into(),
            "noise".into(),
        ],
    };
    let rows = (0..s.times.len()).map(|i| RowRef {
        id: "",
        entity: &s.entities[i],
        time_ms: s.times[i],
        label: s.labels[i],
        features: &s.rows[i],
    });
    write_numeric(dir, &spec, rows).unwrap().manifest_path
}

fn quick() -> TrainConfig {
    TrainConfig {
        cv_folds: 2,
        gbdt: GbdtParams {
            max_iterations: 150,
            min_data_in_leaf: 5,
            ..GbdtParams::default()
        },
        alerts_per_day: 20,
        ..TrainConfig::default()
    }
}

/// A deliberately leaky protocol — a random split — reports a clearly better test metric
/// than the time-respecting one on the same data, and the trainer refuses it.
#[test]
fn a_random_split_inflates_the_metric_and_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = campaigns(0.3, 50, 11);
    let path = write(dir.path(), &s, DAY_MS);
    let mut set = TrainingSet::load(&path).unwrap();

    let honest = pipeline::train(&mut set, &quick(), "h", "v1", "1", 0).unwrap();
    let honest_auc = honest.manifest.metrics["test_uncalibrated_roc_auc"];

    // The leaky protocol, done by hand: shuffle rows, 60/20/20.
    let names: Vec<String> = set.feature_names().iter().map(|s| s.to_string()).collect();
    let w = set.n_features();
    let mut idx: Vec<usize> = (0..set.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(5));
    let take = |ids: &[usize]| -> (Vec<f64>, Vec<bool>) {
        (
            ids.iter().flat_map(|&i| set.row(i).to_vec()).collect(),
            ids.iter().map(|&i| set.labels()[i]).collect(),
        )
    };
    let n = idx.len();
    let (tx, ty) = take(&idx[..n * 6 / 10]);
    let (vx, vy) = take(&idx[n * 6 / 10..n * 8 / 10]);
    let (ex, ey) = take(&idx[n * 8 / 10..]);
    let m = gbdt::train(
        &Matrix {
            values: &tx,
            labels: &ty,
            n_features: w,
            feature_names: &names,
        },
        &Matrix {
            values: &vx,
            labels: &vy,
            n_features: w,
            feature_names: &names,
        },
        &quick().gbdt,
    )
    .unwrap();
    let leaky_auc = metrics::roc_auc(&m.ensemble.raw_scores(&ex).unwrap(), &ey).unwrap();
    assert!(
        leaky_auc > honest_auc + 0.05,
        "random split AUC {leaky_auc:.4} should be inflated over the time split's {honest_auc:.4}"
    );

    let refused = pipeline::train(
        &mut set,
        &TrainConfig {
            split: SplitMethod::Random,
            ..quick()
        },
        "h",
        "v1",
        "1",
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("random split"), "{refused}");
    let short_gap = pipeline::train(
        &mut set,
        &TrainConfig {
            gap_ms: Some(HOUR_MS),
            ..quick()
        },
        "h",
        "v1",
        "1",
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(short_gap.contains("label delay"), "{short_gap}");
}

/// The whole protocol on a learnable set: windows separated by the label delay, thresholds
/// that honour the policy on validation, metrics present, reference profiles, and an
/// artifact that scores exactly as the pipeline did.
#[test]
fn trains_calibrates_and_describes_a_model_that_the_artifact_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let s = campaigns(1.5, 300, 3);
    let path = write(dir.path(), &s, 2 * DAY_MS);
    let mut set = TrainingSet::load(&path).unwrap();
    let t = pipeline::train(&mut set, &quick(), "schema-x", "v1", "7", 1234).unwrap();
    let m = &t.manifest;

    assert!(
        m.splits.validation.start_ms >= m.splits.train.end_ms - 1 + 2 * DAY_MS,
        "{:?}",
        m.splits
    );
    assert!(
        m.splits.test.start_ms >= m.splits.validation.end_ms - 1 + 2 * DAY_MS,
        "{:?}",
        m.splits
    );
    assert!(m.splits.gap_rows > 0);
    for key in [
        "test_roc_auc",
        "test_average_precision",
        "test_recall_at_1pct_fpr",
        "test_brier",
        "test_log_loss",
        "test_ece",
        "test_logistic_roc_auc",
        "cv_roc_auc_mean",
        "test_card_precision_at_k",
    ] {
        assert!(
            m.metrics.contains_key(key),
            "missing metric {key}: {:?}",
            m.metrics.keys()
        );
    }
    assert!(
        m.metrics["test_uncalibrated_roc_auc"] > 0.8,
        "{:?}",
        m.metrics
    );
    assert!(m.thresholds.review <= m.thresholds.block);
    assert_eq!(m.reference_features.len(), 4);
    assert_eq!(m.schema_hash, "schema-x");
    assert_eq!(m.data_fingerprint, set.fingerprint());
    assert!(m.code_version.starts_with(env!("CARGO_PKG_VERSION")));
    assert_ne!(m.calibration, model::Calibrator::Identity);

    let art = tempfile::tempdir().unwrap();
    model::write_artifact(
        art.path(),
        m.clone(),
        model::ModelFile::LightGbm(&t.gbdt.text),
    )
    .unwrap();
    let loaded = model::LoadedModel::load(art.path()).unwrap();
    let test_start = set.len() - t.test_calibrated.probabilities.len();
    for (k, p) in t
        .test_calibrated
        .probabilities
        .iter()
        .enumerate()
        .step_by(50)
    {
        let scored = loaded
            .score(
                "schema-x",
                set.row(test_start + k),
                model::ReasonPolicy::always(3),
            )
            .unwrap();
        assert!(
            (scored.probability - p).abs() < 1e-9,
            "row {k}: {} vs {p}",
            scored.probability
        );
        assert_eq!(scored.reasons.len(), 3);
    }
    assert!(
        loaded
            .score("schema-y", set.row(0), model::ReasonPolicy::NONE)
            .is_err()
    );
}
