//! Which test judges a column, at which threshold: the per-column policy and the dataset
//! verdict.
//!
//! Two named policies:
//! - [`Policy::Evidently`] reproduces Evidently's default (`_get_default_stattest` and each
//!   test's default threshold): with at most 1 000 reference rows, KS for numeric columns
//!   with more than 5 distinct values, χ² goodness-of-fit for other columns with more than
//!   2, a two-proportion z-test for binary ones; above 1 000 rows, Wasserstein distance
//!   normalised by the reference's standard deviation (≥ 0.1) for numeric columns and
//!   Jensen–Shannon distance (≥ 0.1) otherwise.
//! - [`Policy::Vigil`], the default, changes three choices where Evidently's are known to
//!   mislead (each has a test below that shows it):
//!   1. the small-sample rule keys on the **smaller** sample, not the reference: a
//!      500-row window against a 100 k reference is a small sample, and a distance
//!      computed on it is mostly noise;
//!   2. categories are compared with χ² **homogeneity** (both samples are samples), not
//!      goodness-of-fit against the reference's shares taken as exact, which with a small
//!      reference flags noise at well above the nominal rate;
//!   3. numeric columns on large samples use the Wasserstein distance divided by the
//!      reference's **robust** scale (IQR / 1.349, the standard deviation of a normal with
//!      that IQR), not its standard deviation, which heavy tails — amounts — or one outlier
//!      in the reference inflate until a real shift looks small (threshold 0.1 as
//!      Evidently's).
//!
//!   Where PSI is asked for ([`StatTest::PsiReferenceDeciles`], the score PSI), it is
//!   binned on the reference's deciles, not on equal-width bins over the pooled range,
//!   which one outlier stretches until every value falls into one bin.
//!
//! Missing values (NaN, ±∞) are dropped before a test, as Evidently does; their share is
//! reported for each column beside the verdict.

use crate::binning;
use crate::ks::ks_2samp_sorted;
use crate::measures::{
    chi_square, chi_square_homogeneity, jensen_shannon, psi, psi_floored, std_population,
    wasserstein_sorted, z_proportions,
};
use serde::{Deserialize, Serialize};

/// How a column's values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Ordered values: distributions, quantiles, distances along the axis.
    Numeric,
    /// Codes of categories: only equality matters.
    Categorical,
}

/// A column's values prepared once for any number of comparisons: the finite values
/// sorted, the missing ones counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    sorted: Vec<f64>,
    missing: usize,
}

impl Sample {
    /// NaN and ±∞ count as missing.
    pub fn new(values: &[f64]) -> Sample {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        radsort::sort(&mut sorted);
        Sample {
            missing: values.len() - sorted.len(),
            sorted,
        }
    }

    /// The finite values, ascending.
    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }

    /// Finite values.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub fn missing(&self) -> usize {
        self.missing
    }

    /// Missing values as a share of all values (0 for an empty sample).
    pub fn missing_share(&self) -> f64 {
        let all = self.sorted.len() + self.missing;
        if all == 0 {
            0.0
        } else {
            self.missing as f64 / all as f64
        }
    }
}

/// A statistical test or distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatTest {
    /// Two-sample Kolmogorov–Smirnov; the score is the p-value.
    Ks,
    /// χ² goodness-of-fit of the current counts against the reference's shares; p-value.
    ChiSquare,
    /// χ² test of homogeneity of the two samples' counts; p-value.
    ChiSquareHomogeneity,
    /// Two-proportion z-test on a binary column; p-value.
    Z,
    /// Wasserstein distance divided by the reference's standard deviation (at least 0.001).
    WassersteinNormed,
    /// Wasserstein distance divided by the reference's IQR / 1.349 (its standard deviation
    /// when the IQR is 0; at least 0.001).
    WassersteinRobust,
    /// Jensen–Shannon distance of the binned shares (Sturges bins for numeric columns with
    /// more than 20 reference values, else per value).
    JensenShannon,
    /// PSI of Evidently's binning (as for Jensen–Shannon) with its empty-bin smoothing.
    PsiPooledBins,
    /// PSI over the reference's deciles, empty bins at 10⁻⁴.
    PsiReferenceDeciles,
}

impl StatTest {
    /// Whether the score is a p-value (drift when below the threshold) rather than a
    /// distance (drift when at or above it).
    pub fn is_hypothesis_test(self) -> bool {
        matches!(
            self,
            StatTest::Ks | StatTest::ChiSquare | StatTest::ChiSquareHomogeneity | StatTest::Z
        )
    }

    /// The threshold both policies use for this test.
    pub fn default_threshold(self) -> f64 {
        if self.is_hypothesis_test() { 0.05 } else { 0.1 }
    }

    /// The test's score on two non-empty samples, or `None` when it is undefined there
    /// (e.g. χ² with a single category).
    pub fn score(self, kind: Kind, reference: &Sample, current: &Sample) -> Option<f64> {
        let (r, c) = (reference.sorted(), current.sorted());
        if r.is_empty() || c.is_empty() {
            return None;
        }
        match self {
            StatTest::Ks => ks_2samp_sorted(r, c).map(|t| t.pvalue),
            StatTest::ChiSquare => {
                let (rc, cc) = binning::value_counts_sorted(r, c);
                let k = c.len() as f64 / r.len() as f64;
                let expected: Vec<f64> = rc.iter().map(|&v| v as f64 * k).collect();
                let observed: Vec<f64> = cc.iter().map(|&v| v as f64).collect();
                chi_square(&observed, &expected).map(|t| t.pvalue)
            }
            StatTest::ChiSquareHomogeneity => {
                let (rc, cc) = binning::value_counts_sorted(r, c);
                let f = |v: &[u64]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
                chi_square_homogeneity(&f(&rc), &f(&cc)).map(|t| t.pvalue)
            }
            StatTest::Z => {
                // Evidently's form: the first (smallest) value against the rest; two
                // constant samples of the same value do not differ.
                let first = r[0].min(c[0]);
                let (rd, cd) = (binning::distinct_sorted(r), binning::distinct_sorted(c));
                if rd == 1 && cd == 1 && r[0] == c[0] {
                    return Some(1.0);
                }
                let others = |s: &[f64]| s.iter().filter(|&&v| v != first).count() as f64;
                z_proportions(others(r), r.len() as f64, others(c), c.len() as f64)
                    .map(|t| t.pvalue)
            }
            StatTest::WassersteinNormed => {
                let norm = std_population(r).max(0.001);
                Some(wasserstein_sorted(r, c) / norm)
            }
            StatTest::WassersteinRobust => {
                let iqr = binning::quantile_sorted(r, 0.75) - binning::quantile_sorted(r, 0.25);
                let scale = if iqr > 0.0 {
                    iqr / 1.349
                } else {
                    std_population(r)
                };
                Some(wasserstein_sorted(r, c) / scale.max(0.001))
            }
            StatTest::JensenShannon => {
                let (rp, cp) = evidently_shares(kind, r, c, false);
                Some(jensen_shannon(&rp, &cp))
            }
            StatTest::PsiPooledBins => {
                let (rp, cp) = evidently_shares(kind, r, c, true);
                Some(psi(&rp, &cp))
            }
            StatTest::PsiReferenceDeciles => {
                let (rp, cp) = match kind {
                    Kind::Numeric => {
                        let edges = binning::quantile_edges_sorted(r, 10);
                        (
                            binning::quantile_counts_sorted(r, &edges),
                            binning::quantile_counts_sorted(c, &edges),
                        )
                    }
                    Kind::Categorical => binning::value_counts_sorted(r, c),
                };
                Some(psi_floored(
                    &binning::shares(&rp, r.len()),
                    &binning::shares(&cp, c.len()),
                ))
            }
        }
    }
}

/// Evidently's `get_binned_data`: Sturges bins over the pooled range for numeric columns
/// with more than 20 distinct reference values, else one bin per value; shares of each
/// sample's size, empty ones optionally smoothed.
fn evidently_shares(kind: Kind, r: &[f64], c: &[f64], fill: bool) -> (Vec<f64>, Vec<f64>) {
    let (rc, cc) = if kind == Kind::Numeric && binning::distinct_sorted(r) > 20 {
        let edges = binning::sturges_edges(r, c);
        (
            binning::histogram_sorted(r, &edges),
            binning::histogram_sorted(c, &edges),
        )
    } else {
        binning::value_counts_sorted(r, c)
    };
    let (mut rp, mut cp) = (binning::shares(&rc, r.len()), binning::shares(&cc, c.len()));
    if fill {
        binning::fill_empty_evidently(&mut rp);
        binning::fill_empty_evidently(&mut cp);
    }
    (rp, cp)
}

/// The verdict on one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub test: StatTest,
    /// The p-value of a hypothesis test, or the distance.
    pub score: f64,
    pub threshold: f64,
    pub drifted: bool,
    pub reference_size: usize,
    pub current_size: usize,
    pub reference_missing_share: f64,
    pub current_missing_share: f64,
}

/// Why a column got no verdict.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ColumnError {
    #[error("the {0} sample has no finite value")]
    Empty(&'static str),
    #[error("{test:?} is undefined on these samples (a single category?)")]
    Undefined { test: StatTest },
}

/// A per-column test-selection policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Evidently's default choice and thresholds, reproduced.
    Evidently,
    /// Vigil's default (see the module documentation).
    #[default]
    Vigil,
}

/// Samples up to this size get hypothesis tests, larger ones distances (Evidently's
/// boundary, applied by Evidently to the reference size and by Vigil to the smaller one).
pub const SMALL_SAMPLE: usize = 1_000;

impl Policy {
    /// The test this policy applies to a column.
    pub fn select(self, kind: Kind, reference: &Sample, current: &Sample) -> StatTest {
        // Only "more than 2" and "more than 5" matter.
        let distinct = binning::distinct_union_sorted(reference.sorted(), current.sorted(), 6);
        match self {
            Policy::Evidently => {
                let small = reference.len() <= SMALL_SAMPLE;
                let numeric = kind == Kind::Numeric && distinct > 5;
                match (small, numeric) {
                    (true, true) => StatTest::Ks,
                    (true, false) if distinct > 2 => StatTest::ChiSquare,
                    (true, false) => StatTest::Z,
                    (false, true) => StatTest::WassersteinNormed,
                    (false, false) => StatTest::JensenShannon,
                }
            }
            Policy::Vigil => {
                let small = reference.len().min(current.len()) <= SMALL_SAMPLE;
                let numeric = kind == Kind::Numeric && distinct > 5;
                match (small, numeric) {
                    (true, true) => StatTest::Ks,
                    (true, false) => StatTest::ChiSquareHomogeneity,
                    (false, true) => StatTest::WassersteinRobust,
                    (false, false) => StatTest::JensenShannon,
                }
            }
        }
    }

    /// Selects the test, scores the column and decides.
    pub fn column(
        self,
        kind: Kind,
        reference: &Sample,
        current: &Sample,
    ) -> Result<ColumnDrift, ColumnError> {
        if reference.is_empty() {
            return Err(ColumnError::Empty("reference"));
        }
        if current.is_empty() {
            return Err(ColumnError::Empty("current"));
        }
        let test = self.select(kind, reference, current);
        let threshold = test.default_threshold();
        let score = test
            .score(kind, reference, current)
            .ok_or(ColumnError::Undefined { test })?;
        let drifted = match test {
            // Evidently's KS flags at p ≤ α, its χ² and z at p < α.
            StatTest::Ks => score <= threshold,
            t if t.is_hypothesis_test() => score < threshold,
            _ => score >= threshold,
        };
        Ok(ColumnDrift {
            test,
            score,
            threshold,
            drifted,
            reference_size: reference.len(),
            current_size: current.len(),
            reference_missing_share: reference.missing_share(),
            current_missing_share: current.missing_share(),
        })
    }
}

/// The dataset verdict: drift when at least `share` of the judged columns drifted
/// (Evidently's default share is 0.5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DatasetDrift {
    pub columns: usize,
    pub drifted_columns: usize,
    pub share_drifted: f64,
    pub drifted: bool,
}

/// Evidently's default share of drifted columns for dataset drift.
pub const DEFAULT_DATASET_SHARE: f64 = 0.5;

pub fn dataset_drift<'a>(
    columns: impl IntoIterator<Item = &'a ColumnDrift>,
    share: f64,
) -> DatasetDrift {
    let (mut n, mut drifted) = (0usize, 0usize);
    for c in columns {
        n += 1;
        drifted += usize::from(c.drifted);
    }
    let share_drifted = if n == 0 {
        0.0
    } else {
        drifted as f64 / n as f64
    };
    DatasetDrift {
        columns: n,
        drifted_columns: drifted,
        share_drifted,
        drifted: n > 0 && share_drifted >= share,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn normal(rng: &mut ChaCha8Rng) -> f64 {
        // Box–Muller, enough for tests.
        let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    fn categories(rng: &mut ChaCha8Rng, n: usize, k: u32) -> Vec<f64> {
        // Zipf-like shares over k codes.
        let weights: Vec<f64> = (1..=k).map(|i| 1.0 / f64::from(i)).collect();
        let total: f64 = weights.iter().sum();
        (0..n)
            .map(|_| {
                let mut u = rng.random::<f64>() * total;
                for (i, w) in weights.iter().enumerate() {
                    if u < *w {
                        return i as f64;
                    }
                    u -= w;
                }
                f64::from(k - 1)
            })
            .collect()
    }

    /// Choice 1: a 500-row window drawn from the reference itself, 50 categories. Evidently
    /// (reference of 100 k → "large") scores it with Jensen–Shannon, whose value on 500
    /// rows is sampling noise of the order of its threshold; Vigil (smaller sample 500 →
    /// "small") uses χ² homogeneity, which holds its nominal 5 %.
    #[test]
    fn a_small_window_against_a_large_reference_gets_a_small_sample_test() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let reference = Sample::new(&categories(&mut rng, 100_000, 50));
        let (mut evidently, mut vigil) = (0, 0);
        let trials = 200;
        for _ in 0..trials {
            let window = Sample::new(&categories(&mut rng, 500, 50));
            let e = Policy::Evidently
                .column(Kind::Categorical, &reference, &window)
                .unwrap();
            let v = Policy::Vigil
                .column(Kind::Categorical, &reference, &window)
                .unwrap();
            assert_eq!(e.test, StatTest::JensenShannon);
            assert_eq!(v.test, StatTest::ChiSquareHomogeneity);
            evidently += usize::from(e.drifted);
            vigil += usize::from(v.drifted);
        }
        let (e, v) = (
            evidently as f64 / trials as f64,
            vigil as f64 / trials as f64,
        );
        assert!(e > 0.5, "Evidently's false-alarm rate on no drift: {e}");
        assert!(v < 0.1, "Vigil's false-alarm rate on no drift: {v}");
    }

    /// Choice 2: 200 reference rows and 200 current rows of the same 6 categories.
    /// Goodness-of-fit takes the reference's shares as exact, so its statistic is about
    /// twice as large as it should be and it flags far more than 5 % of no-drift windows;
    /// homogeneity counts both samples' noise and stays near 5 %.
    #[test]
    fn categories_of_two_small_samples_are_compared_as_two_samples() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (mut gof, mut homogeneity) = (0, 0);
        let trials = 400;
        for _ in 0..trials {
            let r = Sample::new(&categories(&mut rng, 200, 6));
            let c = Sample::new(&categories(&mut rng, 200, 6));
            let e = Policy::Evidently.column(Kind::Categorical, &r, &c).unwrap();
            let v = Policy::Vigil.column(Kind::Categorical, &r, &c).unwrap();
            assert_eq!(e.test, StatTest::ChiSquare);
            gof += usize::from(e.drifted);
            homogeneity += usize::from(v.drifted);
        }
        let (g, h) = (
            gof as f64 / trials as f64,
            homogeneity as f64 / trials as f64,
        );
        assert!(g > 0.15, "goodness-of-fit false alarms: {g}");
        assert!(h < 0.09, "homogeneity false alarms: {h}");
    }

    /// Choice 3: the reference holds one mistyped amount, 10⁵ among 20 000 standard
    /// normal values, and the current window moved by half a standard deviation. The
    /// outlier inflates the reference's standard deviation about 700-fold, so Evidently's
    /// normed Wasserstein distance sees a shift of 0.0007; the IQR does not move.
    #[test]
    fn one_outlier_in_the_reference_does_not_blind_the_numeric_distance() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut r: Vec<f64> = (0..20_000).map(|_| normal(&mut rng)).collect();
        r.push(1e5);
        let c: Vec<f64> = (0..20_000).map(|_| normal(&mut rng) + 0.5).collect();
        let (r, c) = (Sample::new(&r), Sample::new(&c));
        let e = Policy::Evidently.column(Kind::Numeric, &r, &c).unwrap();
        let v = Policy::Vigil.column(Kind::Numeric, &r, &c).unwrap();
        assert_eq!(e.test, StatTest::WassersteinNormed);
        assert!(!e.drifted && e.score < 0.01, "{e:?}");
        assert_eq!(v.test, StatTest::WassersteinRobust);
        assert!(v.drifted && v.score > 0.4, "{v:?}");
    }

    /// Why PSI bins on the reference's deciles: the current window moved by half a
    /// standard deviation and holds one outlier. Equal-width bins over the pooled range put
    /// all but the outlier into the first bin, so PSI on them stays under its threshold;
    /// the reference's deciles do not move with the outlier.
    #[test]
    fn one_outlier_does_not_blind_psi_on_reference_deciles() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let r: Vec<f64> = (0..20_000).map(|_| normal(&mut rng)).collect();
        let mut c: Vec<f64> = (0..20_000).map(|_| normal(&mut rng) + 0.5).collect();
        c.push(1e7);
        let (r, c) = (Sample::new(&r), Sample::new(&c));
        let pooled = StatTest::PsiPooledBins
            .score(Kind::Numeric, &r, &c)
            .unwrap();
        let deciles = StatTest::PsiReferenceDeciles
            .score(Kind::Numeric, &r, &c)
            .unwrap();
        assert!(pooled < 0.1, "PSI on pooled equal-width bins: {pooled}");
        assert!(deciles > 0.2, "PSI on reference deciles: {deciles}");
    }

    #[test]
    fn missing_values_are_dropped_and_reported() {
        let r = Sample::new(&[1.0, 2.0, f64::NAN, 3.0]);
        let c = Sample::new(&[f64::INFINITY, f64::NAN, 1.0, 2.0]);
        assert_eq!((r.len(), r.missing()), (3, 1));
        assert_eq!(c.missing_share(), 0.5);
        let d = Policy::Vigil.column(Kind::Numeric, &r, &c).unwrap();
        assert_eq!(d.current_missing_share, 0.5);
        let empty = Sample::new(&[f64::NAN]);
        assert_eq!(
            Policy::Vigil.column(Kind::Numeric, &r, &empty),
            Err(ColumnError::Empty("current"))
        );
    }

    #[test]
    fn dataset_drift_is_at_half_the_columns() {
        let col = |drifted| ColumnDrift {
            test: StatTest::Ks,
            score: 0.0,
            threshold: 0.05,
            drifted,
            reference_size: 1,
            current_size: 1,
            reference_missing_share: 0.0,
            current_missing_share: 0.0,
        };
        let cols = [col(true), col(false), col(false), col(true)];
        assert!(dataset_drift(&cols, DEFAULT_DATASET_SHARE).drifted);
        assert!(!dataset_drift(&cols[1..], DEFAULT_DATASET_SHARE).drifted);
        assert!(!dataset_drift(&[], DEFAULT_DATASET_SHARE).drifted);
    }
}
