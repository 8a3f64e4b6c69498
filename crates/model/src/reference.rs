//! Fixed-bin histograms of scores and the population stability index (PSI).
//!
//! The trainer records the validation-window score histogram in the manifest; the drift
//! monitor fills the same bins from live scores and compares them here, so both sides use
//! one binning and one formula.

use serde::{Deserialize, Serialize};

/// Counts of values in fixed bins over [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bin edges, ascending, `counts.len() + 1` of them; first 0.0, last 1.0.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

impl Histogram {
    /// `bins` equal-width bins over [0, 1].
    pub fn uniform(bins: usize) -> Histogram {
        let bins = bins.max(1);
        Histogram {
            edges: (0..=bins).map(|i| i as f64 / bins as f64).collect(),
            counts: vec![0; bins],
        }
    }

    /// Bins whose edges are the quantiles of `values` (clamped to [0, 1]); better resolution
    /// where the scores are. Falls back to uniform edges when values repeat too much.
    pub fn quantile_edges(values: &[f64], bins: usize) -> Histogram {
        let mut sorted: Vec<f64> = values.iter().map(|v| v.clamp(0.0, 1.0)).collect();
        sorted.sort_unstable_by(f64::total_cmp);
        let mut edges = vec![0.0];
        if !sorted.is_empty() {
            for i in 1..bins {
                let q = sorted[(i * sorted.len() / bins).min(sorted.len() - 1)];
                if q > *edges.last().unwrap_or(&0.0) && q < 1.0 {
                    edges.push(q);
                }
            }
        }
        edges.push(1.0);
        let n = edges.len() - 1;
        let mut h = Histogram {
            edges,
            counts: vec![0; n],
        };
        for v in values {
            h.add(*v);
        }
        h
    }

    /// An empty histogram with the same bins.
    pub fn empty_like(&self) -> Histogram {
        Histogram {
            edges: self.edges.clone(),
            counts: vec![0; self.counts.len()],
        }
    }

    pub fn add(&mut self, value: f64) {
        let v = value.clamp(0.0, 1.0);
        // Index of the last edge <= v, with 1.0 in the last bin.
        let i = self.edges.partition_point(|e| *e <= v).saturating_sub(1);
        let i = i.min(self.counts.len() - 1);
        self.counts[i] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Proportion per bin.
    pub fn proportions(&self) -> Vec<f64> {
        let total = self.total().max(1) as f64;
        self.counts.iter().map(|c| *c as f64 / total).collect()
    }
}

/// PSI of `actual` against `expected`: Σ (a − e) · ln(a / e) over bins, empty bins smoothed.
/// Conventional reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift.
///
/// Returns `None` when the bins differ or either side is empty.
pub fn psi(expected: &Histogram, actual: &Histogram) -> Option<f64> {
    if expected.edges != actual.edges || expected.total() == 0 || actual.total() == 0 {
        return None;
    }
    Some(psi_fractions(
        &expected.proportions(),
        &actual.proportions(),
    ))
}

/// PSI of two aligned vectors of bin proportions (each summing to 1), empty bins floored at
/// [`drift::measures::PSI_FLOOR`]: `drift`'s one formula, used by [`psi`] and the feature
/// profiles' PSI.
pub(crate) fn psi_fractions(expected: &[f64], actual: &[f64]) -> f64 {
    drift::measures::psi_floored(expected, actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_have_zero_psi() {
        let mut a = Histogram::uniform(10);
        for i in 0..1000 {
            a.add(i as f64 / 1000.0);
        }
        assert_eq!(psi(&a, &a.clone()), Some(0.0));
    }

    #[test]
    fn psi_matches_a_hand_computed_value() {
        let mut e = Histogram::uniform(2);
        let mut a = Histogram::uniform(2);
        e.counts = vec![50, 50];
        a.counts = vec![80, 20];
        let expected = (0.8 - 0.5) * (0.8f64 / 0.5).ln() + (0.2 - 0.5) * (0.2f64 / 0.5).ln();
        assert!((psi(&e, &a).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn shifted_distribution_has_large_psi_and_bounds_are_binned() {
        let values: Vec<f64> = (0..1000).map(|i| i as f64 / 2000.0).collect();
        let reference = Histogram::quantile_edges(&values, 10);
        assert_eq!(reference.total(), 1000);
        let mut live = reference.empty_like();
        for i in 0..1000 {
            live.add(0.5 + i as f64 / 2000.0);
        }
        live.add(1.0);
        live.add(-3.0);
        assert!(psi(&reference, &live).unwrap() > 0.25);
        assert_eq!(psi(&reference, &Histogram::uniform(3)), None);
    }
}
