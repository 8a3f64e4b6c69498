//! Logistic regression with the training window's standardisation folded into the model file,
//! so the scorer applies exactly the preprocessing that training used.

use serde::{Deserialize, Serialize};

/// The model file of a [`crate::ModelKind::LogisticRegression`] model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticModel {
    /// Per-feature mean on the training window.
    pub means: Vec<f64>,
    /// Per-feature standard deviation on the training window (1.0 for constant features).
    pub scales: Vec<f64>,
    /// Coefficients on standardised features.
    pub weights: Vec<f64>,
    pub intercept: f64,
}

impl LogisticModel {
    pub fn validate(&self) -> Result<(), String> {
        let n = self.weights.len();
        if self.means.len() != n || self.scales.len() != n {
            return Err(format!(
                "means/scales/weights lengths differ: {}/{}/{}",
                self.means.len(),
                self.scales.len(),
                n
            ));
        }
        if self.scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err("scales must be finite and positive".into());
        }
        if self
            .weights
            .iter()
            .chain(&self.means)
            .any(|w| !w.is_finite())
            || !self.intercept.is_finite()
        {
            return Err("non-finite parameter".into());
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Per-feature contributions to the log-odds (excluding the intercept). A missing value
    /// (NaN) contributes nothing: it is imputed with the training mean, as in training.
    pub fn contributions(&self, x: &[f64]) -> impl Iterator<Item = f64> {
        x.iter()
            .zip(&self.means)
            .zip(&self.scales)
            .zip(&self.weights)
            .map(|(((x, m), s), w)| if x.is_finite() { w * (x - m) / s } else { 0.0 })
    }

    /// Log-odds of fraud.
    pub fn logit(&self, x: &[f64]) -> f64 {
        self.intercept + self.contributions(x).sum::<f64>()
    }

    /// Probability of fraud.
    pub fn predict(&self, x: &[f64]) -> f64 {
        sigmoid(self.logit(x))
    }
}

/// The logistic function, stable for large |z|.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicts_with_standardisation() {
        let m = LogisticModel {
            means: vec![10.0, 0.0],
            scales: vec![2.0, 1.0],
            weights: vec![1.0, -1.0],
            intercept: 0.0,
        };
        m.validate().unwrap();
        assert_eq!(m.predict(&[10.0, 0.0]), 0.5);
        let z: f64 = (14.0 - 10.0) / 2.0 - 1.0;
        assert!((m.predict(&[14.0, 1.0]) - sigmoid(z)).abs() < 1e-15);
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) <= 1.0);
    }
}
