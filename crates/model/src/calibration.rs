//! Probability calibration: a monotone map from a model's raw score to a probability of
//! fraud, fitted on the validation window and stored in the artifact so that serving applies
//! exactly what training fitted.
//!
//! Two methods: Platt scaling (a two-parameter sigmoid; little data needed, assumes the
//! log-odds are linear in the score) and isotonic regression (any monotone shape; needs more
//! data). Both keep the ranking of scores, so rank metrics such as ROC-AUC do not change;
//! what changes is whether "0.8" means 80 %.

use serde::{Deserialize, Serialize};

/// Why a calibrator could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    #[error("cannot fit a calibrator on empty input")]
    Empty,
    #[error("scores and labels differ in length: {scores} scores, {labels} labels")]
    LengthMismatch { scores: usize, labels: usize },
    #[error("labels contain a single class ({positives} fraud, {negatives} legitimate)")]
    SingleClass { positives: usize, negatives: usize },
    #[error("score at index {index} is not finite: {value}")]
    NonFinite { index: usize, value: f64 },
    #[error("platt scaling did not converge in {iterations} iterations")]
    NotConverged { iterations: usize },
}

/// A fitted calibration map. Serialised with a `method` tag, e.g.
/// `{"method":"platt","a":1.3,"b":-2.0}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibrator {
    /// The score already is a probability.
    #[default]
    Identity,
    /// `p = sigmoid(a · score + b) = 1 / (1 + exp(−(a · score + b)))`. A score that grows
    /// with fraud gives `a > 0`. Platt's paper writes `1 / (1 + exp(A · f + B))`, i.e.
    /// `A = −a`, `B = −b`.
    Platt { a: f64, b: f64 },
    /// Piecewise-linear through the points `(x[i], y[i])`, `x` strictly increasing and `y`
    /// non-decreasing; constant beyond the first and last point.
    Isotonic { x: Vec<f64>, y: Vec<f64> },
}

/// Newton iterations allowed for Platt scaling; it converges in well under 20 in practice.
const PLATT_MAX_ITERATIONS: usize = 100;
/// Gradient size at which Platt scaling stops (Lin, Lin and Weng 2007 use 1e-5).
const PLATT_GRADIENT_TOLERANCE: f64 = 1e-5;
/// Ridge added to the Hessian diagonal so it stays invertible (also from Lin et al.).
const PLATT_HESSIAN_RIDGE: f64 = 1e-12;
/// Smallest line-search step before giving up on further improvement.
const PLATT_MIN_STEP: f64 = 1e-10;

/// Counts of (fraud, legitimate), after checking that the input can be fitted.
fn check_input(scores: &[f64], labels: &[bool]) -> Result<(usize, usize), CalibrationError> {
    if scores.len() != labels.len() {
        return Err(CalibrationError::LengthMismatch {
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    if scores.is_empty() {
        return Err(CalibrationError::Empty);
    }
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(CalibrationError::NonFinite { index, value });
    }
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(CalibrationError::SingleClass {
            positives,
            negatives,
        });
    }
    Ok((positives, negatives))
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + eᶻ) without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

impl Calibrator {
    /// Platt scaling (Platt 1999) with the numerically robust Newton method of Lin, Lin and
    /// Weng (2007, "A note on Platt's probabilistic outputs for support vector machines").
    ///
    /// Minimises the cross-entropy of `sigmoid(a · s + b)` against smoothed targets —
    /// (N₊ + 1)/(N₊ + 2) for fraud and 1/(N₋ + 2) for legitimate — which keeps the fit
    /// finite even when the classes are separable.
    pub fn fit_platt(raw_scores: &[f64], labels: &[bool]) -> Result<Calibrator, CalibrationError> {
        let (positives, negatives) = check_input(raw_scores, labels)?;
        let (np, nn) = (positives as f64, negatives as f64);
        let high = (np + 1.0) / (np + 2.0);
        let low = 1.0 / (nn + 2.0);
        let targets: Vec<f64> = labels.iter().map(|&l| if l { high } else { low }).collect();
        // Cross-entropy in terms of z = a·s + b: softplus(z) − t·z.
        let objective = |a: f64, b: f64| -> f64 {
            raw_scores
                .iter()
                .zip(&targets)
                .map(|(&s, &t)| {
                    let z = a * s + b;
                    softplus(z) - t * z
                })
                .sum()
        };

        let (mut a, mut b) = (0.0, ((np + 1.0) / (nn + 1.0)).ln());
        let mut value = objective(a, b);
        for _ in 0..PLATT_MAX_ITERATIONS {
            let (mut ga, mut gb) = (0.0, 0.0);
            let (mut haa, mut hab, mut hbb) = (PLATT_HESSIAN_RIDGE, 0.0, PLATT_HESSIAN_RIDGE);
            for (&s, &t) in raw_scores.iter().zip(&targets) {
                let p = sigmoid(a * s + b);
                let d = p - t;
                let w = p * (1.0 - p);
                ga += s * d;
                gb += d;
                haa += s * s * w;
                hab += s * w;
                hbb += w;
            }
            if ga.abs() < PLATT_GRADIENT_TOLERANCE && gb.abs() < PLATT_GRADIENT_TOLERANCE {
                return Ok(Calibrator::Platt { a, b });
            }
            let det = haa * hbb - hab * hab;
            let da = -(hbb * ga - hab * gb) / det;
            let db = -(haa * gb - hab * ga) / det;
            let slope = ga * da + gb * db;
            // Backtracking line search with the Armijo condition.
            let mut step = 1.0;
            loop {
                let (na, nb) = (a + step * da, b + step * db);
                let candidate = objective(na, nb);
                if candidate < value + 1e-4 * step * slope {
                    (a, b, value) = (na, nb, candidate);
                    break;
                }
                step /= 2.0;
                if step < PLATT_MIN_STEP {
                    // No descent left at double precision: this is the optimum.
                    return Ok(Calibrator::Platt { a, b });
                }
            }
        }
        Err(CalibrationError::NotConverged {
            iterations: PLATT_MAX_ITERATIONS,
        })
    }

    /// Isotonic regression by pool-adjacent-violators: the non-decreasing step function of
    /// the score closest (least squares) to the labels. Equal scores are pooled first.
    ///
    /// Each final block becomes one point: x = the mean score of its transactions, y = its
    /// fraud rate. [`Calibrator::apply`] interpolates linearly between these block centres,
    /// which keeps the map continuous, and clamps outside them. Interior points of a run of
    /// equal y are dropped; they do not change the map.
    pub fn fit_isotonic(scores: &[f64], labels: &[bool]) -> Result<Calibrator, CalibrationError> {
        check_input(scores, labels)?;
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&i, &j| scores[i].total_cmp(&scores[j]));

        /// A pooled run of transactions.
        struct Block {
            count: f64,
            score_sum: f64,
            label_sum: f64,
        }
        impl Block {
            fn mean(&self) -> f64 {
                self.label_sum / self.count
            }
        }
        // Equal scores must get one value, so each tie group starts as one block.
        let mut tie_groups: Vec<Block> = Vec::new();
        let mut previous_score = None;
        for i in order {
            let label = f64::from(u8::from(labels[i]));
            match tie_groups.last_mut() {
                Some(last) if previous_score == Some(scores[i]) => {
                    last.count += 1.0;
                    last.score_sum += scores[i];
                    last.label_sum += label;
                }
                _ => tie_groups.push(Block {
                    count: 1.0,
                    score_sum: scores[i],
                    label_sum: label,
                }),
            }
            previous_score = Some(scores[i]);
        }
        // Pool adjacent violators: merge each new block backwards while it is below its
        // predecessor. Equal means are not a violation and stay separate points.
        let mut blocks: Vec<Block> = Vec::with_capacity(tie_groups.len());
        for mut block in tie_groups {
            while let Some(previous) = blocks.pop_if(|p| p.mean() > block.mean()) {
                block.count += previous.count;
                block.score_sum += previous.score_sum;
                block.label_sum += previous.label_sum;
            }
            blocks.push(block);
        }

        let centres: Vec<(f64, f64)> = blocks
            .iter()
            .map(|b| (b.score_sum / b.count, b.mean()))
            .collect();
        let (x, y) = centres
            .iter()
            .enumerate()
            .filter(|&(i, &(_, value))| {
                i == 0
                    || i + 1 == centres.len()
                    || centres[i - 1].1 != value
                    || centres[i + 1].1 != value
            })
            .map(|(_, &point)| point)
            .unzip();
        Ok(Calibrator::Isotonic { x, y })
    }

    /// The calibrated probability for a raw score. NaN stays NaN. An isotonic table with
    /// no points (only possible from a hand-edited file) behaves as [`Calibrator::Identity`].
    pub fn apply(&self, score: f64) -> f64 {
        if score.is_nan() {
            return score;
        }
        match self {
            Calibrator::Identity => score,
            Calibrator::Platt { a, b } => sigmoid(a * score + b),
            Calibrator::Isotonic { x, y } => {
                let (Some(&first), Some(&last)) = (x.first(), x.last()) else {
                    return score;
                };
                if score <= first {
                    return y[0];
                }
                if score >= last {
                    return y[y.len().min(x.len()) - 1];
                }
                // first < score < last, so 1 <= i < x.len().
                let i = x.partition_point(|&v| v <= score);
                let (x0, x1, y0, y1) = (x[i - 1], x[i], y[i - 1], y[i]);
                y0 + (y1 - y0) * (score - x0) / (x1 - x0)
            }
        }
    }

    /// The method's name, as in the serialised `method` tag.
    pub fn name(&self) -> &'static str {
        match self {
            Calibrator::Identity => "identity",
            Calibrator::Platt { .. } => "platt",
            Calibrator::Isotonic { .. } => "isotonic",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::log_loss;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-12
    }

    /// Scores uniform on [−4, 4], labels drawn with P(fraud) = sigmoid(a·s + b).
    fn logistic_data(seed: u64, n: usize, a: f64, b: f64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s: Vec<f64> = (0..n).map(|_| rng.random_range(-4.0..4.0)).collect();
        let y = s
            .iter()
            .map(|&x| rng.random_bool(sigmoid(a * x + b)))
            .collect();
        (s, y)
    }

    #[test]
    fn isotonic_reproduces_a_hand_computed_pav() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = [false, true, false, false, true, true];
        // Labels 0 1 0 0 1 1. PAV: [0] [1]; 0 violates 1 → [1,0] = 1/2; 0 violates 1/2 →
        // [1,0,0] = 1/3; then 1 and 1 are fine (equal values are not violations).
        // Blocks: {1} → 0, {2,3,4} → 1/3 (centre 3), {5} → 1, {6} → 1.
        // The run of 1s has no interior point, so all four centres are kept.
        let c = Calibrator::fit_isotonic(&s, &y).unwrap();
        assert_eq!(
            c,
            Calibrator::Isotonic {
                x: vec![1.0, 3.0, 5.0, 6.0],
                y: vec![0.0, 1.0 / 3.0, 1.0, 1.0],
            }
        );
        assert_eq!(c.apply(0.0), 0.0); // clamped below
        assert!(close(c.apply(2.0), 1.0 / 6.0)); // halfway from (1, 0) to (3, 1/3)
        assert!(close(c.apply(4.0), 2.0 / 3.0)); // halfway from (3, 1/3) to (5, 1)
        assert_eq!(c.apply(5.5), 1.0);
        assert_eq!(c.apply(99.0), 1.0); // clamped above
        assert!(c.apply(f64::NAN).is_nan());
        assert_eq!(c.name(), "isotonic");
    }

    #[test]
    fn isotonic_pools_ties_and_drops_flat_interior_points() {
        // Score 1 twice (one fraud) → 1/2; score 2 → 0 violates → pooled with it: 1/3 at
        // centre (1 + 1 + 2) / 3 = 4/3. Then 3, 4, 5 all fraud → 1, 1, 1: 4 is interior.
        let s = [2.0, 1.0, 1.0, 3.0, 4.0, 5.0];
        let y = [false, true, false, true, true, true];
        let c = Calibrator::fit_isotonic(&s, &y).unwrap();
        assert_eq!(
            c,
            Calibrator::Isotonic {
                x: vec![4.0 / 3.0, 3.0, 5.0],
                y: vec![1.0 / 3.0, 1.0, 1.0],
            }
        );
    }

    #[test]
    fn isotonic_pools_a_whole_tie_group_before_comparing_it() {
        // Scores 0..=4 with labels 1 1 1 0 0 pool into one block of mean 3/5 (centre 2).
        // Score 5 → 1. Score 6 twice, labels 0 then 1 → tie block 1/2, below 1: pooled with
        // score 5 into 2/3 (centre 17/3), which is above 3/5, so pooling stops there.
        // (Pooling the 0 of the tie before its 1 would wrongly pull everything into 5/8.)
        let s = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0];
        let y = [true, true, true, false, false, true, false, true];
        let c = Calibrator::fit_isotonic(&s, &y).unwrap();
        assert_eq!(
            c,
            Calibrator::Isotonic {
                x: vec![2.0, 17.0 / 3.0],
                y: vec![0.6, 2.0 / 3.0],
            }
        );
    }

    #[test]
    fn isotonic_output_is_monotone_on_noisy_data() {
        let (s, y) = logistic_data(11, 5000, 1.0, -1.0);
        let c = Calibrator::fit_isotonic(&s, &y).unwrap();
        let Calibrator::Isotonic { x, y: values } = &c else {
            panic!("expected isotonic, got {c:?}");
        };
        assert!(x.windows(2).all(|w| w[0] < w[1]));
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
        assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
        let mut previous = f64::NEG_INFINITY;
        for i in 0..=1000 {
            let p = c.apply(-5.0 + i as f64 * 0.01);
            assert!(p >= previous, "not monotone at step {i}");
            previous = p;
        }
    }

    #[test]
    fn platt_recovers_known_parameters() {
        let (s, y) = logistic_data(3, 50_000, 1.5, -0.5);
        let Calibrator::Platt { a, b } = Calibrator::fit_platt(&s, &y).unwrap() else {
            panic!("expected platt");
        };
        assert!((a - 1.5).abs() < 0.1, "a = {a}");
        assert!((b + 0.5).abs() < 0.1, "b = {b}");
    }

    #[test]
    fn calibrating_a_badly_scaled_score_reduces_held_out_log_loss() {
        // The true log-odds are s; the model outputs the margin m = 3s + 1.5, whose naive
        // probability sigmoid(m) is over-confident and shifted.
        let margin = |s: &[f64]| -> Vec<f64> { s.iter().map(|x| 3.0 * x + 1.5).collect() };
        let (fit_s, fit_y) = logistic_data(5, 20_000, 1.0, 0.0);
        let (test_s, test_y) = logistic_data(6, 20_000, 1.0, 0.0);
        let (fit_m, test_m) = (margin(&fit_s), margin(&test_s));

        let naive: Vec<f64> = test_m.iter().map(|&m| sigmoid(m)).collect();
        let naive_loss = log_loss(&naive, &test_y).unwrap();
        let oracle: Vec<f64> = test_s.iter().map(|&x| sigmoid(x)).collect();
        let oracle_loss = log_loss(&oracle, &test_y).unwrap();

        for calibrator in [
            Calibrator::fit_platt(&fit_m, &fit_y).unwrap(),
            Calibrator::fit_isotonic(&fit_m, &fit_y).unwrap(),
        ] {
            let calibrated: Vec<f64> = test_m.iter().map(|&m| calibrator.apply(m)).collect();
            let loss = log_loss(&calibrated, &test_y).unwrap();
            assert!(
                loss < naive_loss - 0.05 && loss < oracle_loss + 0.01,
                "{}: {loss} vs naive {naive_loss}, oracle {oracle_loss}",
                calibrator.name()
            );
        }
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            Calibrator::fit_platt(&[], &[]),
            Err(CalibrationError::Empty)
        );
        assert_eq!(
            Calibrator::fit_isotonic(&[0.1, 0.2], &[true]),
            Err(CalibrationError::LengthMismatch {
                scores: 2,
                labels: 1
            })
        );
        let single = Calibrator::fit_platt(&[0.1, 0.2], &[false, false]).unwrap_err();
        assert_eq!(
            single,
            CalibrationError::SingleClass {
                positives: 0,
                negatives: 2
            }
        );
        assert_eq!(
            single.to_string(),
            "labels contain a single class (0 fraud, 2 legitimate)"
        );
        assert!(matches!(
            Calibrator::fit_isotonic(&[0.1, f64::INFINITY], &[true, false]),
            Err(CalibrationError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn serde_uses_the_method_tag() {
        let platt = Calibrator::Platt { a: 2.0, b: -1.0 };
        let json = serde_json::to_string(&platt).unwrap();
        assert_eq!(json, r#"{"method":"platt","a":2.0,"b":-1.0}"#);
        assert_eq!(serde_json::from_str::<Calibrator>(&json).unwrap(), platt);
        let identity: Calibrator = serde_json::from_str(r#"{"method":"identity"}"#).unwrap();
        assert_eq!(identity.apply(0.25), 0.25);
        assert_eq!(identity.name(), "identity");
        let isotonic = Calibrator::Isotonic {
            x: vec![0.0, 1.0],
            y: vec![0.1, 0.9],
        };
        let back: Calibrator =
            serde_json::from_str(&serde_json::to_string(&isotonic).unwrap()).unwrap();
        assert_eq!(back, isotonic);
        assert_eq!(platt.apply(0.5), 0.5); // sigmoid(2 · 0.5 − 1) = sigmoid(0)
    }
}
