//! The baseline: logistic regression (linfa) on features standardised with means and scales
//! fit on the training window only.

use crate::{LearnError, Matrix};
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use model::linear::LogisticModel;
use ndarray::{Array1, Array2};

/// Fits the baseline on `train`. Missing values (NaN) are imputed with the training mean,
/// i.e. they standardise to 0.
pub fn train(train: &Matrix<'_>, max_iterations: u64) -> Result<LogisticModel, LearnError> {
    let (n, dim) = (train.rows(), train.n_features);
    if n == 0 {
        return Err(LearnError::Data("the training window is empty".into()));
    }
    let mut means = vec![0.0; dim];
    let mut counts = vec![0usize; dim];
    for row in train.values.chunks_exact(dim) {
        for ((m, c), v) in means.iter_mut().zip(&mut counts).zip(row) {
            if v.is_finite() {
                *m += v;
                *c += 1;
            }
        }
    }
    for (m, c) in means.iter_mut().zip(&counts) {
        *m = if *c > 0 { *m / *c as f64 } else { 0.0 };
    }
    let mut scales = vec![0.0; dim];
    for row in train.values.chunks_exact(dim) {
        for ((s, v), m) in scales.iter_mut().zip(row).zip(&means) {
            if v.is_finite() {
                *s += (v - m).powi(2);
            }
        }
    }
    for (s, c) in scales.iter_mut().zip(&counts) {
        let var = if *c > 0 { *s / *c as f64 } else { 0.0 };
        *s = if var > 1e-12 { var.sqrt() } else { 1.0 };
    }
    let x = Array2::from_shape_fn((n, dim), |(i, j)| {
        let v = train.values[i * dim + j];
        if v.is_finite() {
            (v - means[j]) / scales[j]
        } else {
            0.0
        }
    });
    let y: Array1<bool> = train.labels.iter().copied().collect();
    let fitted = LogisticRegression::default()
        .max_iterations(max_iterations)
        .fit(&Dataset::new(x, y))
        .map_err(|e| LearnError::Engine(format!("logistic regression: {e}")))?;
    let mut weights: Vec<f64> = fitted.params().to_vec();
    let mut intercept = fitted.intercept();
    // linfa's coefficients give the probability of its "positive" (larger) class; orient
    // them so the model predicts P(fraud) whichever class linfa picked.
    if !fitted.labels().pos.class {
        weights.iter_mut().for_each(|w| *w = -*w);
        intercept = -intercept;
    }
    Ok(LogisticModel {
        means,
        scales,
        weights,
        intercept,
    })
}
