//! The distribution of the one-sample Kolmogorov–Smirnov statistic Dₙ for a sample of `n`,
//! which the two-sample test uses for large samples (Smirnov's approximation with the
//! effective size n₁n₂/(n₁+n₂)).
//!
//! No well-kept Rust crate computes this distribution for finite `n` (statrs has none), so
//! it is written here from the published algorithms, with the method for each region of
//! (n, x) chosen by the rules of Simard & L'Ecuyer (2011), "Computing the Two-Sided
//! Kolmogorov–Smirnov Distribution", J. Stat. Software 39(11) — the rules scipy's `kstwo`
//! follows, so that p-values agree with scipy's to ~1e-10:
//! - exact where cheap: Ruben–Gambino's closed forms at the ends, Durbin's matrix formula in
//!   Marsaglia–Tsang–Wang's form (1968/2003) for small n·x²;
//! - Pelz–Good's asymptotic series (1976) for large n and moderate x;
//! - twice the one-sided Smirnov tail (Birnbaum–Tingey's exact sum) in the upper tail,
//!   where the two one-sided events are practically disjoint.

use statrs::function::gamma::ln_gamma;

/// P(Dₙ ≥ x): the survival function of the two-sided one-sample statistic.
pub fn sf(n: u64, x: f64) -> f64 {
    if x.is_nan() || n == 0 {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    let p = if t <= 1.0 {
        // Ruben–Gambino: P(Dₙ ≤ x) = n!/nⁿ (2t − 1)ⁿ for 1/2n ≤ x ≤ 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        1.0 - (ln_gamma(nf + 1.0) - nf * nf.ln() + nf * (2.0 * t - 1.0).ln()).exp()
    } else if t >= nf - 1.0 {
        // Ruben–Gambino: P(Dₙ ≥ x) = 2(1 − x)ⁿ for x ≥ 1 − 1/n.
        2.0 * (1.0 - x).powf(nf)
    } else if x >= 0.5 {
        // Both one-sided tails cannot happen together: exactly twice one of them.
        2.0 * smirnov_sf(n, x)
    } else {
        let nx2 = t * x;
        if n <= 140 {
            if nx2 <= 4.0 {
                // Simard–L'Ecuyer use Durbin below 0.754693 and Pomeranz up to 4; both are
                // exact, and Durbin's matrix stays below 47×47 here.
                1.0 - durbin_cdf(n, x)
            } else {
                2.0 * smirnov_sf(n, x)
            }
        } else if nx2 >= 370.0 {
            0.0
        } else if nx2 >= 2.2 {
            2.0 * smirnov_sf(n, x)
        } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
            1.0 - durbin_cdf(n, x)
        } else {
            1.0 - pelz_good_cdf(n, x)
        }
    };
    p.clamp(0.0, 1.0)
}

/// P(Dₙ⁺ ≥ x), the one-sided tail, by Birnbaum and Tingey's exact sum
/// x · Σⱼ C(n, j) (1 − x − j/n)ⁿ⁻ʲ (x + j/n)ʲ⁻¹ for j = 0 … ⌊n(1 − x)⌋, in logarithms
/// (every term is positive, so the sum has no cancellation).
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if n == 1 {
        return 1.0 - x;
    }
    let nf = n as f64;
    let last = (nf * (1.0 - x)).floor() as u64;
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut sum = 0.0;
    for j in 0..=last.min(n) {
        if j > 0 {
            ln_choose += ((n - j + 1) as f64 / j as f64).ln();
        }
        let jf = j as f64;
        let low = (nf - jf) / nf - x; // 1 − x − j/n
        if low <= 0.0 {
            break; // the term is 0 (or the bound was rounded past it)
        }
        let high = jf / nf + x; // x + j/n
        let ln_term = ln_choose + (nf - jf) * low.ln() + (jf - 1.0) * high.ln();
        sum += ln_term.exp();
    }
    (x * sum).clamp(0.0, 1.0)
}

/// P(Dₙ < x) by Durbin's matrix formula, as given by Marsaglia, Tsang and Wang (2003):
/// with k = ⌈nx⌉ and h = k − nx, the (k, k) entry of Hⁿ times n!/nⁿ, where H is a
/// (2k − 1)-square matrix of 1/(i − j + 1)! with corrections in its first column and last
/// row. Powers are taken by squaring, with a separately kept binary exponent so that
/// neither Hⁿ nor n!/nⁿ over- or underflows.
pub fn durbin_cdf(n: u64, x: f64) -> f64 {
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let nd = nf * x;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut fact = vec![1.0f64; m + 1]; // 1/i!
    for i in 1..=m {
        fact[i] = fact[i - 1] / i as f64;
    }
    let mut hm = Matrix::zeros(m);
    for r in 0..m {
        for c in 0..m {
            if r + 1 >= c {
                hm.set(r, c, fact[r + 1 - c]);
            }
        }
    }
    for r in 0..m {
        let v = hm.get(r, 0) - h.powi(r as i32 + 1) * fact[r + 1];
        hm.set(r, 0, v);
    }
    for c in 1..m {
        let v = hm.get(m - 1, c) - h.powi((m - c) as i32) * fact[m - c];
        hm.set(m - 1, c, v);
    }
    let corner = fact[m] * (1.0 - 2.0 * h.powi(m as i32) + (2.0 * h - 1.0).max(0.0).powi(m as i32));
    hm.set(m - 1, 0, corner);

    // Hⁿ by squaring, each factor carrying a power-of-two exponent.
    const SCALE_EXP: i32 = 128;
    let scale = 2f64.powi(SCALE_EXP);
    let (mut power, mut power_exp) = (Matrix::identity(m), 0i32);
    let (mut base, mut base_exp) = (hm, 0i32);
    let mut e = n;
    while e > 0 {
        if e % 2 == 1 {
            power = power.mul(&base);
            power_exp += base_exp;
        }
        e /= 2;
        if e > 0 {
            base = base.mul(&base);
            base_exp *= 2;
            if base.get(k - 1, k - 1).abs() > scale {
                base.scale(1.0 / scale);
                base_exp += SCALE_EXP;
            }
        }
    }
    let mut p = power.get(k - 1, k - 1);
    let mut exp = power_exp;
    for i in 1..=n {
        p = p * i as f64 / nf;
        if p.abs() < 1.0 / scale {
            p *= scale;
            exp -= SCALE_EXP;
        }
    }
    (p * 2f64.powi(exp)).clamp(0.0, 1.0)
}

/// P(Dₙ ≤ x) by Pelz and Good's (1976) transformation of the Li-Chien–Korolyuk expansion
/// K₀(z) + K₁(z)/√n + K₂(z)/n + K₃(z)/n^{3/2} with z = x√n, each term a theta-function
/// series that converges fast for small z.
pub fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z * z * z, z.powi(4), z.powi(6));
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let ln_q = -pi2 / 8.0 / z2;
    if ln_q < -708.0 {
        return 0.0;
    }
    let terms = (16.0 * z / PI).ceil() as u32;
    let mut k = [0.0f64; 4];
    for kk in 1..=terms {
        let m = f64::from(2 * kk - 1);
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let q = (ln_q * m2).exp(); // q^{(2k−1)²}
        k[0] += q;
        k[1] += q * (pi2 / 4.0 * m2 - z2);
        k[2] += q
            * (6.0 * z6
                + 2.0 * z4
                + (2.0 * z4 - 5.0 * z2) * pi2 / 4.0 * m2
                + pi4 * (1.0 - 2.0 * z2) / 16.0 * m4);
        k[3] += q
            * (-30.0 * z6 - 90.0 * z.powi(8)
                + pi2 * (135.0 * z4 - 96.0 * z6) / 4.0 * m2
                + pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0 * m4
                + pi6 * (5.0 - 30.0 * z2) / 64.0 * m6);
    }
    let root_2pi = (2.0 * PI).sqrt();
    let denominators = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (v, d) in k.iter_mut().zip(denominators) {
        *v *= root_2pi / d;
    }
    let ln_q2 = -pi2 / 2.0 / z2;
    let (mut extra2, mut extra3) = (0.0, 0.0);
    for kk in 1..=terms {
        let kf = f64::from(kk);
        let k2 = kf * kf;
        let q = (ln_q2 * k2).exp();
        extra2 += k2 * q;
        extra3 += (3.0 * z2 - pi2 * k2) * k2 * q;
    }
    k[2] += extra2 * pi2 * root_2pi / (-36.0 * z3);
    k[3] += extra3 * pi2 * root_2pi / (216.0 * z6);
    let root_n = nf.sqrt();
    (k[0] + k[1] / root_n + k[2] / nf + k[3] / (nf * root_n)).clamp(0.0, 1.0)
}

/// A small dense square matrix for Durbin's formula (at most ~120 × 120 in the regions it
/// is used; a linear-algebra crate would be a heavy dependency for one product).
#[derive(Clone)]
struct Matrix {
    n: usize,
    a: Vec<f64>,
}

impl Matrix {
    fn zeros(n: usize) -> Matrix {
        Matrix {
            n,
            a: vec![0.0; n * n],
        }
    }

    fn identity(n: usize) -> Matrix {
        let mut m = Matrix::zeros(n);
        for i in 0..n {
            m.set(i, i, 1.0);
        }
        m
    }

    fn get(&self, r: usize, c: usize) -> f64 {
        self.a[r * self.n + c]
    }

    fn set(&mut self, r: usize, c: usize, v: f64) {
        self.a[r * self.n + c] = v;
    }

    fn scale(&mut self, s: f64) {
        self.a.iter_mut().for_each(|v| *v *= s);
    }

    fn mul(&self, other: &Matrix) -> Matrix {
        let n = self.n;
        let mut out = Matrix::zeros(n);
        for r in 0..n {
            for k in 0..n {
                let a = self.a[r * n + k];
                if a == 0.0 {
                    continue;
                }
                let row = &other.a[k * n..(k + 1) * n];
                let dst = &mut out.a[r * n..(r + 1) * n];
                for (d, b) in dst.iter_mut().zip(row) {
                    *d += a * b;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_methods_agree_where_their_regions_meet() {
        // Durbin is exact; Pelz–Good is an expansion that is already close at n = 1 000.
        for &(n, x) in &[(1_000u64, 0.02), (1_000, 0.03), (5_000, 0.012)] {
            let d = durbin_cdf(n, x);
            let p = pelz_good_cdf(n, x);
            assert!(
                (d - p).abs() < 1e-4,
                "n={n} x={x}: durbin {d} pelz-good {p}"
            );
        }
        // In the upper tail, 2·Smirnov and the exact two-sided value agree.
        let exact = 1.0 - durbin_cdf(400, 0.09);
        let smirnov = 2.0 * smirnov_sf(400, 0.09);
        assert!((exact - smirnov).abs() / exact < 1e-6, "{exact} {smirnov}");
    }

    #[test]
    fn ends_are_exact() {
        assert_eq!(sf(10, 0.0), 1.0);
        assert_eq!(sf(10, 1.0), 0.0);
        assert_eq!(sf(10, 0.04), 1.0); // x ≤ 1/2n
        // n = 1: D₁ = max(U, 1 − U) ≥ x with probability 2(1 − x) for x ≥ 1/2.
        assert!((sf(1, 0.7) - 0.6).abs() < 1e-15);
        assert!((smirnov_sf(1, 0.3) - 0.7).abs() < 1e-15);
    }
}
