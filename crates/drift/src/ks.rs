//! The two-sample Kolmogorov–Smirnov test (two-sided), with scipy's `ks_2samp(method="auto")`
//! choice of p-value: exact while both samples have at most [`MAX_EXACT_N`] values,
//! Smirnov's large-sample approximation above.

use crate::kolmogorov;

/// Up to this many values in the larger sample the p-value is exact (scipy's `MAX_AUTO_N`).
pub const MAX_EXACT_N: usize = 10_000;

/// How a p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The exact distribution of the two-sample statistic under H₀ (lattice-path counts).
    Exact,
    /// The one-sample distribution at the effective size n₁n₂/(n₁+n₂).
    Asymptotic,
}

/// A test's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// sup |F₁ − F₂| over the pooled values.
    pub statistic: f64,
    pub pvalue: f64,
    pub method: Method,
}

/// Two-sided two-sample KS test of `a` against `b`, both already **sorted** ascending and
/// free of NaN (see [`crate::sorted_finite`]); `None` if either is empty.
pub fn ks_2samp_sorted(a: &[f64], b: &[f64]) -> Option<KsResult> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let d = statistic_sorted(a, b);
    if n1.max(n2) <= MAX_EXACT_N
        && let Some((d, p)) = exact(n1 as u64, n2 as u64, d)
    {
        return Some(KsResult {
            statistic: d,
            pvalue: p,
            method: Method::Exact,
        });
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let effective = (m * n / (m + n)).round_ties_even();
    Some(KsResult {
        statistic: d,
        pvalue: kolmogorov::sf(effective as u64, d),
        method: Method::Asymptotic,
    })
}

/// sup |F₁(v) − F₂(v)| with right-continuous empirical CDFs, evaluated at every pooled value
/// (each difference computed as i₁/n₁ − i₂/n₂, the way the reference implementations do, so
/// ties in the maximum resolve identically).
fn statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut max_diff, mut min_diff) = (f64::NEG_INFINITY, f64::INFINITY);
    for s in crate::binning::pooled_steps(a, b) {
        let diff = s.a_upto as f64 / n1 - s.b_upto as f64 / n2;
        max_diff = max_diff.max(diff);
        min_diff = min_diff.min(diff);
    }
    let below = (-min_diff).clamp(0.0, 1.0);
    if below > max_diff { below } else { max_diff }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The exact p-value P(D ≥ d) and `d` rounded onto the lattice of attainable values
/// (multiples of 1/lcm(n₁, n₂)); `None` when the computation is not representable.
fn exact(n1: u64, n2: u64, d: f64) -> Option<(f64, f64)> {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return Some((d, 1.0));
    }
    let p = if n1 == n2 {
        outside_square(n1, h)
    } else {
        outside_band(n1, n2, g, h)
    };
    (p.is_finite() && (0.0..=1.0).contains(&p)).then_some((d, p))
}

/// For equal sizes n, P(D ≥ h/n) = 2 Σₖ₌₁ (−1)ᵏ⁺¹ C(2n, n − kh) / C(2n, n) (the reflection
/// principle), evaluated as 2·A₀(1 − A₁(1 − A₂(…))) with Aₖ = C(2n, n − (k+1)h) / C(2n, n − kh)
/// so that the alternating sum has no cancellation.
fn outside_square(n: u64, h: u64) -> f64 {
    let mut p = 0.0;
    let mut k = n / h;
    loop {
        let mut a = 1.0;
        for j in 0..h {
            let top = n as f64 - (k * h + j) as f64;
            a = top * a / (n + k * h + j + 1) as f64;
        }
        p = a * (1.0 - p);
        if k == 0 {
            break;
        }
        k -= 1;
    }
    2.0 * p
}

/// For unequal sizes m ≥ n: the share of monotone lattice paths from (0, 0) to (m, n) that
/// touch the boundary |x·n/g − y·m/g| ≥ h at some point (Hodges 1958, in Viehmann's
/// (2021, arXiv:2102.08037) form that computes this share directly rather than 1 − it).
///
/// q(x, y) — the share of paths to (x, y) that have touched the boundary — is 1 on and
/// outside it and q(x, y) = (x·q(x−1, y) + y·q(x, y−1)) / (x + y) inside; only the band
/// inside is stored, column by column.
fn outside_band(n1: u64, n2: u64, g: u64, h: u64) -> f64 {
    let (m, n) = (n1.max(n2), n1.min(n2));
    let (mg, ng) = ((m / g) as i64, (n / g) as i64);
    let h = h as i64;
    let n = n as i64;
    // Inside at column x: the y with |x·ng − y·mg| < h.
    let band = |x: i64| -> (i64, i64) {
        let lo = (x * ng - h).div_euclid(mg) + 1;
        let hi = (x * ng + h + mg - 1).div_euclid(mg); // exclusive: ⌈(x·ng + h)/mg⌉
        (lo.clamp(0, n), hi.clamp(0, n + 1))
    };
    let mut prev = vec![1.0f64; n as usize + 1];
    let mut cur = vec![1.0f64; n as usize + 1];
    let (lo0, hi0) = band(0);
    for y in lo0..hi0 {
        prev[y as usize] = 0.0; // on the y-axis inside the band: not touched yet
    }
    let (mut plo, mut phi) = (lo0, hi0);
    for x in 1..=(m as i64) {
        let (lo, hi) = band(x);
        if hi <= lo {
            return 1.0; // the band closes: every path touches
        }
        let xf = x as f64;
        // Below the band the previous value (y − 1) is outside: 1; except at y = 0 it is unused.
        let mut below = 1.0;
        for y in lo..hi {
            let left = if (plo..phi).contains(&y) {
                prev[y as usize]
            } else {
                1.0
            };
            let yf = y as f64;
            let v = (left * xf + below * yf) / (xf + yf);
            cur[y as usize] = v;
            below = v;
        }
        // Values of older columns left outside this band are never read: reads are gated
        // by the band they were written in.
        std::mem::swap(&mut prev, &mut cur);
        (plo, phi) = (lo, hi);
    }
    prev[n as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_have_statistic_zero_and_pvalue_one() {
        let a: Vec<f64> = (0..50).map(f64::from).collect();
        let r = ks_2samp_sorted(&a, &a).unwrap();
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.pvalue, 1.0);
        assert_eq!(r.method, Method::Exact);
    }

    #[test]
    fn disjoint_samples_have_statistic_one() {
        let a: Vec<f64> = (0..20).map(f64::from).collect();
        let b: Vec<f64> = (100..130).map(f64::from).collect();
        let r = ks_2samp_sorted(&a, &b).unwrap();
        assert_eq!(r.statistic, 1.0);
        // Exactly: only the 2 extreme paths of C(50, 20) touch the corner.
        let c = (1..=20).fold(1.0, |acc, i| acc * f64::from(30 + i) / f64::from(i));
        assert!(
            (r.pvalue - 2.0 / c).abs() / (2.0 / c) < 1e-9,
            "{} {}",
            r.pvalue,
            2.0 / c
        );
    }

    #[test]
    fn the_band_and_the_square_agree_for_equal_sizes() {
        for h in 1..=12 {
            let square = outside_square(12, h);
            let band = outside_band(12, 12, 12, h);
            assert!((square - band).abs() < 1e-12, "h={h}: {square} {band}");
        }
    }

    #[test]
    fn empty_is_none() {
        assert!(ks_2samp_sorted(&[], &[1.0]).is_none());
    }
}
