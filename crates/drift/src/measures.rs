//! Two-sample tests and distances between a reference and a current sample, each equal to
//! scipy's function of the same name on the same input (the parity fixtures in `tests/`).

use statrs::function::erf::erfc;
use statrs::function::gamma::gamma_ur;

/// A test statistic and its p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub pvalue: f64,
}

/// Pearson's χ² goodness-of-fit of `observed` counts against `expected` counts (scipy's
/// `chisquare(f_obs, f_exp)`): Σ (o − e)²/e with k − 1 degrees of freedom. `None` with
/// fewer than two categories, or an expected count that is not positive.
pub fn chi_square(observed: &[f64], expected: &[f64]) -> Option<TestResult> {
    if observed.len() != expected.len() || observed.len() < 2 || expected.iter().any(|&e| e <= 0.0)
    {
        return None;
    }
    let statistic: f64 = observed
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum();
    let dof = (observed.len() - 1) as f64;
    Some(TestResult {
        statistic,
        pvalue: chi2_sf(statistic, dof),
    })
}

/// Pearson's χ² test of homogeneity of two samples' category counts (scipy's
/// `chi2_contingency` on the 2 × k table, without Yates' correction): unlike the
/// goodness-of-fit form, it counts the reference's own sampling noise. Categories empty in
/// both samples are dropped; `None` with fewer than two left.
pub fn chi_square_homogeneity(reference: &[f64], current: &[f64]) -> Option<TestResult> {
    if reference.len() != current.len() {
        return None;
    }
    let kept: Vec<(f64, f64)> = reference
        .iter()
        .zip(current)
        .filter(|(r, c)| **r + **c > 0.0)
        .map(|(r, c)| (*r, *c))
        .collect();
    if kept.len() < 2 {
        return None;
    }
    let (nr, nc): (f64, f64) = kept
        .iter()
        .fold((0.0, 0.0), |(a, b), (r, c)| (a + r, b + c));
    let total = nr + nc;
    if nr == 0.0 || nc == 0.0 {
        return None;
    }
    let statistic: f64 = kept
        .iter()
        .map(|&(r, c)| {
            let col = r + c;
            let (er, ec) = (nr * col / total, nc * col / total);
            (r - er) * (r - er) / er + (c - ec) * (c - ec) / ec
        })
        .sum();
    let dof = (kept.len() - 1) as f64;
    Some(TestResult {
        statistic,
        pvalue: chi2_sf(statistic, dof),
    })
}

/// P(χ²_dof ≥ x), scipy's `chi2.sf`.
pub fn chi2_sf(x: f64, dof: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_ur(dof / 2.0, x / 2.0)
}

/// Standard normal CDF Φ(z).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The two-proportion z-test (pooled variance) on `x₁` successes of `n₁` against `x₂` of
/// `n₂`, two-sided; the form Evidently uses for binary columns. `None` when a sample is
/// empty or the pooled proportion is 0 or 1 (no variance to test against).
pub fn z_proportions(x1: f64, n1: f64, x2: f64, n2: f64) -> Option<TestResult> {
    if n1 <= 0.0 || n2 <= 0.0 {
        return None;
    }
    let (p1, p2) = (x1 / n1, x2 / n2);
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    let var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    if var <= 0.0 {
        return None;
    }
    let z = (p1 - p2) / var.sqrt();
    Some(TestResult {
        statistic: z,
        pvalue: 2.0 * (1.0 - normal_cdf(z.abs())),
    })
}

/// The first Wasserstein (earth mover's) distance between the empirical distributions of
/// two **sorted** samples: ∫ |F₁ − F₂|, exactly (scipy's `wasserstein_distance(u, v)`).
pub fn wasserstein_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let mut total = 0.0;
    let mut last: Option<f64> = None;
    for s in crate::binning::pooled_steps(a, b) {
        if let Some(prev) = last {
            // F₁ and F₂ are constant on [prev, v): their values just below v.
            total += (s.a_below as f64 / n1 - s.b_below as f64 / n2).abs() * (s.value - prev);
        }
        last = Some(s.value);
    }
    total
}

/// The Jensen–Shannon *distance* (the square root of the divergence, natural logarithm)
/// between two non-negative weight vectors, each normalised to sum 1 (scipy's
/// `spatial.distance.jensenshannon(p, q)`).
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let rel_entr = |x: f64, y: f64| -> f64 {
        if x > 0.0 && y > 0.0 {
            x * (x / y).ln()
        } else if x == 0.0 && y >= 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    };
    let (mut left, mut right) = (0.0, 0.0);
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        left += rel_entr(a, m);
        right += rel_entr(b, m);
    }
    ((left + right) / 2.0).sqrt()
}

/// The population stability index Σ (r − c)·ln(r / c) of two aligned vectors of bin
/// shares. Shares must be positive: how empty bins are smoothed is the caller's (the
/// policy's) choice.
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| (r - c) * (r / c).ln())
        .sum()
}

/// The share an empty bin counts as in [`psi_floored`] (a common PSI convention: avoids
/// ln 0 without moving non-empty bins).
pub const PSI_FLOOR: f64 = 1e-4;

/// PSI with every share floored at [`PSI_FLOOR`]: the one formula behind Vigil's PSI —
/// the score PSI and feature-profile PSI of `model`, [`crate::StatTest::PsiReferenceDeciles`]
/// and window summaries.
pub fn psi_floored(reference: &[f64], current: &[f64]) -> f64 {
    debug_assert_eq!(reference.len(), current.len(), "psi of misaligned bins");
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let (r, c) = (r.max(PSI_FLOOR), c.max(PSI_FLOOR));
            (r - c) * (r / c).ln()
        })
        .sum()
}

/// Population standard deviation (ddof = 0), two-pass.
pub fn std_population(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasserstein_of_a_shift_is_the_shift() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 2.5).collect();
        assert!((wasserstein_sorted(&a, &b) - 2.5).abs() < 1e-12);
        assert_eq!(wasserstein_sorted(&a, &a), 0.0);
    }

    #[test]
    fn jensen_shannon_is_zero_for_equal_and_sqrt_ln2_for_disjoint() {
        assert_eq!(jensen_shannon(&[1.0, 3.0], &[2.0, 6.0]), 0.0);
        let d = jensen_shannon(&[1.0, 0.0], &[0.0, 1.0]);
        assert!((d - std::f64::consts::LN_2.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn chi_square_matches_a_hand_computed_value() {
        // (10−15)²/15 + (20−15)²/15 = 50/15, one degree of freedom.
        let r = chi_square(&[10.0, 20.0], &[15.0, 15.0]).unwrap();
        assert!((r.statistic - 50.0 / 15.0).abs() < 1e-12);
        // P(χ²₁ ≥ x) = erfc(√(x/2)).
        let want = erfc((r.statistic / 2.0).sqrt());
        // statrs' incomplete gamma is good to ~1e-10 relative (scipy's to ~1e-15).
        assert!((r.pvalue - want).abs() / want < 1e-9, "{} {want}", r.pvalue);
        assert!(chi_square(&[1.0], &[1.0]).is_none());
        assert!(chi_square(&[1.0, 2.0], &[0.0, 3.0]).is_none());
    }

    #[test]
    fn homogeneity_counts_both_samples_noise() {
        // The same shares in both samples: statistic 0 whatever the sizes.
        let r = chi_square_homogeneity(&[10.0, 30.0], &[100.0, 300.0]).unwrap();
        assert!(r.statistic.abs() < 1e-12 && (r.pvalue - 1.0).abs() < 1e-12);
    }
}
