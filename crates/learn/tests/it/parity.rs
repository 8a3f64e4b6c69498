//! The pure-Rust flat scorer against LightGBM's own predictions on the same model.

use learn::Matrix;
use learn::gbdt::{self, GbdtParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FEATURES: usize = 20;

/// Rows with interactions, zeros, negative values and ~5 % missing values; label rate ≈ 3 %.
fn synthetic(rows: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(rows * FEATURES);
    let mut labels = Vec::with_capacity(rows);
    for _ in 0..rows {
        let row: Vec<f64> = (0..FEATURES)
            .map(|j| {
                if rng.random::<f64>() < 0.05 {
                    f64::NAN
                } else if j % 5 == 0 {
                    f64::from(rng.random_range(0..4u8)) // small integer-valued, many zeros
                } else {
                    rng.random::<f64>() * 4.0 - 2.0
                }
            })
            .collect();
        let x = |j: usize| if row[j].is_nan() { 0.0 } else { row[j] };
        let logit = -4.0 + 1.5 * x(1) + 1.2 * x(2) * x(3) + 0.8 * x(0) - (x(4) * 2.0).sin()
            + if row[6].is_nan() { 1.0 } else { 0.0 };
        labels.push(rng.random::<f64>() < 1.0 / (1.0 + (-logit).exp()));
        values.extend(row);
    }
    (values, labels)
}

fn names() -> Vec<String> {
    (0..FEATURES).map(|j| format!("f{j}")).collect()
}

fn fit(params: &GbdtParams) -> gbdt::GbdtModel {
    let names = names();
    let (tx, ty) = synthetic(40_000, 1);
    let (vx, vy) = synthetic(10_000, 2);
    let train = Matrix {
        values: &tx,
        labels: &ty,
        n_features: FEATURES,
        feature_names: &names,
    };
    let valid = Matrix {
        values: &vx,
        labels: &vy,
        n_features: FEATURES,
        feature_names: &names,
    };
    gbdt::train(&train, &valid, params).expect("training")
}

#[test]
fn flat_scorer_matches_lightgbm_on_100k_rows_and_shap_matches_predict_contrib() {
    let params = GbdtParams {
        max_iterations: 150,
        ..GbdtParams::default()
    };
    let model = fit(&params);
    assert!(model.iterations > 10, "trained {} trees", model.iterations);
    let (rows, _) = synthetic(100_000, 3);
    let ours = model.ensemble.raw_scores(&rows).unwrap();
    let theirs = gbdt::lightgbm_raw_scores(&model.text, &rows, FEATURES).unwrap();
    assert_eq!(ours.len(), 100_000);
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-6, "batch: max |ours − LightGBM| = {worst}");
    for (i, row) in rows.chunks_exact(FEATURES).enumerate().step_by(97) {
        let single = model.ensemble.raw_score(row).unwrap();
        assert!(
            (single - theirs[i]).abs() < 1e-6,
            "row {i}: {single} vs {}",
            theirs[i]
        );
    }
    // The scores are not trivially equal (a constant model would also "match").
    let spread = theirs.iter().copied().fold(f64::MIN, f64::max)
        - theirs.iter().copied().fold(f64::MAX, f64::min);
    assert!(spread > 1.0, "raw-score spread {spread}");

    let sample = &rows[..1000 * FEATURES];
    let expected = gbdt::lightgbm_contributions(&model.text, sample, FEATURES).unwrap();
    for (i, row) in sample.chunks_exact(FEATURES).enumerate() {
        let phi = model.ensemble.contributions(row).unwrap();
        let want = &expected[i * (FEATURES + 1)..(i + 1) * (FEATURES + 1)];
        for (j, (a, b)) in phi.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() < 1e-6,
                "row {i} feature {j}: ours {a}, LightGBM {b}"
            );
        }
    }
}

#[test]
fn same_seed_gives_the_same_model_and_early_stopping_stops() {
    let params = GbdtParams {
        max_iterations: 400,
        learning_rate: 0.3,
        early_stopping_rounds: 10,
        ..GbdtParams::default()
    };
    let a = fit(&params);
    let b = fit(&params);
    assert_eq!(
        a.text, b.text,
        "same seed and data must give the same model"
    );
    assert!(
        a.iterations < 400,
        "early stopping never triggered ({} trees)",
        a.iterations
    );
    let other = fit(&GbdtParams { seed: 7, ..params });
    assert_ne!(
        a.text, other.text,
        "the seed must matter (bagging and feature fraction)"
    );
}
