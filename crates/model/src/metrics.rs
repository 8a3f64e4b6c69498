//! Model-quality metrics: the one implementation used by the trainer, the report and the
//! benches, so a number printed anywhere in Vigil means the same thing everywhere.
//!
//! Conventions shared by every function here:
//!
//! * scores and probabilities are `f64`, labels are `bool` with `true` = fraud;
//! * an alert rule is always `score >= threshold`, and thresholds are only ever placed at
//!   distinct score values, so a group of tied scores is either all alerted or not at all;
//! * invalid input never panics: mismatched slice lengths, empty input or a NaN score give
//!   `None` (or an empty curve), and so does a metric that is undefined for the data, such as
//!   ROC-AUC when one class is absent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A point of the ROC curve: the rates of the rule `score >= threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocPoint {
    pub fpr: f64,
    pub tpr: f64,
    pub threshold: f64,
}

/// A point of the precision–recall curve for the rule `score >= threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrPoint {
    pub recall: f64,
    pub precision: f64,
    pub threshold: f64,
}

/// What the rule `score >= threshold` achieves on a labelled set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OperatingPoint {
    pub threshold: f64,
    pub recall: f64,
    pub fpr: f64,
    pub precision: f64,
}

/// One non-empty bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub mean_predicted: f64,
    pub fraction_positive: f64,
}

/// The confusion counts of `score >= threshold` at one distinct score value.
struct Step {
    threshold: f64,
    tp: usize,
    fp: usize,
}

/// Scores grouped by distinct value, highest first, with cumulative counts.
struct Ranking {
    steps: Vec<Step>,
    positives: usize,
    negatives: usize,
}

impl Ranking {
    fn new(scores: &[f64], labels: &[bool]) -> Option<Ranking> {
        if scores.len() != labels.len() || scores.is_empty() || scores.iter().any(|s| s.is_nan()) {
            return None;
        }
        let order = descending_order(scores);
        let mut steps = Vec::new();
        let (mut tp, mut fp) = (0, 0);
        for (position, &i) in order.iter().enumerate() {
            if labels[i] {
                tp += 1;
            } else {
                fp += 1;
            }
            // `==` rather than `total_cmp` so that -0.0 and 0.0 form one group, as they do
            // for the rule `score >= threshold`; they are adjacent after the sort.
            let last_of_group = order
                .get(position + 1)
                .is_none_or(|&next| scores[next] != scores[i]);
            if last_of_group {
                steps.push(Step {
                    threshold: scores[i],
                    tp,
                    fp,
                });
            }
        }
        Some(Ranking {
            steps,
            positives: tp,
            negatives: fp,
        })
    }

    fn has_both_classes(&self) -> bool {
        self.positives > 0 && self.negatives > 0
    }
}

/// Indices sorted by descending score; equal scores keep index order (the sort is stable).
fn descending_order(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]));
    order
}

/// ROC-AUC: the probability that a random fraud scores above a random legitimate
/// transaction, ties counted as one half (the mid-rank Mann–Whitney statistic, equal to the
/// trapezoidal area under [`roc_curve`]). A constant score gives exactly 0.5.
///
/// `None` when a class is absent or the input is invalid.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let ranking = Ranking::new(scores, labels)?;
    if !ranking.has_both_classes() {
        return None;
    }
    // Twice the trapezoidal area in count units; every term is an integer, so the sum is
    // exact up to 2^53.
    let (mut doubled_area, mut previous_tp, mut previous_fp) = (0.0, 0, 0);
    for step in &ranking.steps {
        doubled_area += (step.fp - previous_fp) as f64 * (step.tp + previous_tp) as f64;
        previous_tp = step.tp;
        previous_fp = step.fp;
    }
    Some(doubled_area / (2.0 * ranking.positives as f64 * ranking.negatives as f64))
}

/// The ROC curve, one point per distinct score in descending order of threshold, preceded
/// by (0, 0) at threshold `+inf` (alert nothing). Ends at (1, 1).
///
/// Empty when a class is absent or the input is invalid.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Vec<RocPoint> {
    let Some(ranking) = Ranking::new(scores, labels).filter(Ranking::has_both_classes) else {
        return Vec::new();
    };
    let (p, n) = (ranking.positives as f64, ranking.negatives as f64);
    std::iter::once(RocPoint {
        fpr: 0.0,
        tpr: 0.0,
        threshold: f64::INFINITY,
    })
    .chain(ranking.steps.iter().map(|s| RocPoint {
        fpr: s.fp as f64 / n,
        tpr: s.tp as f64 / p,
        threshold: s.threshold,
    }))
    .collect()
}

/// Average precision as scikit-learn defines it: Σₙ (Rₙ − Rₙ₋₁) · Pₙ over the distinct
/// thresholds in descending order, ties grouped (no interpolation).
///
/// `None` when there is no fraud or the input is invalid.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let ranking = Ranking::new(scores, labels)?;
    if ranking.positives == 0 {
        return None;
    }
    // Σ ΔTP · P, divided by the number of frauds once at the end.
    let (mut sum, mut previous_tp) = (0.0, 0);
    for step in &ranking.steps {
        let precision = step.tp as f64 / (step.tp + step.fp) as f64;
        sum += (step.tp - previous_tp) as f64 * precision;
        previous_tp = step.tp;
    }
    Some(sum / ranking.positives as f64)
}

/// The precision–recall curve, one point per distinct score in descending order of
/// threshold (so recall is non-decreasing). No artificial (recall 0, precision 1) point is
/// added.
///
/// Empty when there is no fraud or the input is invalid.
pub fn pr_curve(scores: &[f64], labels: &[bool]) -> Vec<PrPoint> {
    let Some(ranking) = Ranking::new(scores, labels).filter(|r| r.positives > 0) else {
        return Vec::new();
    };
    let positives = ranking.positives as f64;
    ranking
        .steps
        .iter()
        .map(|s| PrPoint {
            recall: s.tp as f64 / positives,
            precision: s.tp as f64 / (s.tp + s.fp) as f64,
            threshold: s.threshold,
        })
        .collect()
}

/// The operating point of highest recall whose false-positive rate is at most `max_fpr`,
/// among thresholds at distinct score values (a tie group is all in or all out). Among
/// thresholds of equal recall the highest one (lowest FPR) wins.
///
/// When even the top score group exceeds `max_fpr`, the only admissible rule alerts nothing:
/// threshold `+inf`, recall 0, FPR 0 and precision 1 (the convention for an empty alert set).
///
/// `None` when a class is absent, `max_fpr` is NaN or the input is invalid.
pub fn recall_at_fpr(scores: &[f64], labels: &[bool], max_fpr: f64) -> Option<OperatingPoint> {
    if max_fpr.is_nan() {
        return None;
    }
    let ranking = Ranking::new(scores, labels)?;
    if !ranking.has_both_classes() {
        return None;
    }
    let (p, n) = (ranking.positives as f64, ranking.negatives as f64);
    let mut best = OperatingPoint {
        threshold: f64::INFINITY,
        recall: 0.0,
        fpr: 0.0,
        precision: 1.0,
    };
    for step in &ranking.steps {
        let fpr = step.fp as f64 / n;
        if fpr > max_fpr {
            break; // FPR only grows as the threshold falls
        }
        let recall = step.tp as f64 / p;
        if recall > best.recall {
            best = OperatingPoint {
                threshold: step.threshold,
                recall,
                fpr,
                precision: step.tp as f64 / (step.tp + step.fp) as f64,
            };
        }
    }
    Some(best)
}

/// Fraction of fraud among the `k` highest scores. Ties are broken by index (the earlier
/// transaction first), so the result is deterministic. When fewer than `k` transactions
/// exist, all of them are taken and the precision is over that number.
///
/// `None` when `k == 0` or the input is invalid.
pub fn precision_at_k(scores: &[f64], labels: &[bool], k: usize) -> Option<f64> {
    if k == 0 || scores.len() != labels.len() || scores.is_empty() {
        return None;
    }
    if scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let top = descending_order(scores);
    let top = &top[..k.min(top.len())];
    Some(top.iter().filter(|&&i| labels[i]).count() as f64 / top.len() as f64)
}

/// Card precision@k (Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud
/// Detection — Practical Handbook*, 2022): investigators check cards, not transactions, and
/// can check `k` per day.
///
/// For each day separately: every entity (card or user) is scored by its maximum score that
/// day and is compromised when it has at least one fraudulent transaction that day; the `k`
/// highest-scored distinct entities are alerted (ties broken by the entity's first
/// transaction index that day); the day's precision is the number of compromised alerted
/// entities divided by `k`, or by the number of entities when the day has fewer than `k`.
/// The result is the mean over the days present in `days`.
///
/// Unlike the handbook's evaluation loop, entities found compromised on earlier days are
/// not removed from later days; each day stands alone.
///
/// `None` when `k == 0`, the four slices differ in length, or the input is empty or has a
/// NaN score.
pub fn card_precision_at_k(
    scores: &[f64],
    labels: &[bool],
    entities: &[&str],
    days: &[i64],
    k: usize,
) -> Option<f64> {
    let n = scores.len();
    if k == 0 || n == 0 || labels.len() != n || entities.len() != n || days.len() != n {
        return None;
    }
    if scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    struct Entity {
        max_score: f64,
        first_index: usize,
        compromised: bool,
    }
    let mut per_day: BTreeMap<i64, BTreeMap<&str, Entity>> = BTreeMap::new();
    for i in 0..n {
        per_day
            .entry(days[i])
            .or_default()
            .entry(entities[i])
            .and_modify(|e| {
                e.max_score = e.max_score.max(scores[i]);
                e.compromised |= labels[i];
            })
            .or_insert(Entity {
                max_score: scores[i],
                first_index: i,
                compromised: labels[i],
            });
    }
    let mut sum = 0.0;
    for day in per_day.values() {
        let mut ranked: Vec<&Entity> = day.values().collect();
        ranked.sort_by(|a, b| {
            b.max_score
                .total_cmp(&a.max_score)
                .then(a.first_index.cmp(&b.first_index))
        });
        let alerted = &ranked[..k.min(ranked.len())];
        sum += alerted.iter().filter(|e| e.compromised).count() as f64 / alerted.len() as f64;
    }
    Some(sum / per_day.len() as f64)
}

/// Checks that probabilities and labels pair up and no probability is NaN.
fn valid_probabilities(probs: &[f64], labels: &[bool]) -> bool {
    probs.len() == labels.len() && !probs.is_empty() && !probs.iter().any(|p| p.is_nan())
}

/// Brier score: mean of (p − y)², y ∈ {0, 1}. Lower is better. `None` for invalid input.
pub fn brier_score(probs: &[f64], labels: &[bool]) -> Option<f64> {
    if !valid_probabilities(probs, labels) {
        return None;
    }
    let sum: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &y)| (p - f64::from(u8::from(y))).powi(2))
        .sum();
    Some(sum / probs.len() as f64)
}

/// Probabilities are clipped to [ε, 1 − ε] before taking logs, as scikit-learn does.
const LOG_LOSS_EPSILON: f64 = 1e-15;

/// Log loss (binary cross-entropy, natural log), mean over transactions, probabilities
/// clipped to [1e-15, 1 − 1e-15]. `None` for invalid input.
pub fn log_loss(probs: &[f64], labels: &[bool]) -> Option<f64> {
    if !valid_probabilities(probs, labels) {
        return None;
    }
    let sum: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    Some(sum / probs.len() as f64)
}

/// Reliability diagram over `bins` equal-width bins of [0, 1]: bin `i` is
/// [i/bins, (i+1)/bins), the last one also holding 1.0; a probability goes to bin
/// ⌊p · bins⌋, values outside [0, 1] to the end bins. Empty bins are omitted.
///
/// Empty when `bins == 0` or the input is invalid.
pub fn calibration_curve(probs: &[f64], labels: &[bool], bins: usize) -> Vec<CalibrationBin> {
    if bins == 0 || !valid_probabilities(probs, labels) {
        return Vec::new();
    }
    // (count, Σ p, positives) per bin.
    let mut sums = vec![(0usize, 0.0, 0usize); bins];
    for (&p, &y) in probs.iter().zip(labels) {
        // The float-to-int cast saturates, so negative values land in bin 0.
        let i = ((p * bins as f64).floor() as usize).min(bins - 1);
        sums[i].0 += 1;
        sums[i].1 += p;
        sums[i].2 += usize::from(y);
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(i, &(count, sum, positives))| CalibrationBin {
            lower: i as f64 / bins as f64,
            upper: (i + 1) as f64 / bins as f64,
            count,
            mean_predicted: sum / count as f64,
            fraction_positive: positives as f64 / count as f64,
        })
        .collect()
}

/// Expected calibration error: Σ (countᵢ / n) · |mean_predictedᵢ − fraction_positiveᵢ| over
/// the bins of [`calibration_curve`]. `None` when `bins == 0` or the input is invalid.
pub fn expected_calibration_error(probs: &[f64], labels: &[bool], bins: usize) -> Option<f64> {
    let curve = calibration_curve(probs, labels, bins);
    if curve.is_empty() {
        return None;
    }
    let total = curve.iter().map(|b| b.count).sum::<usize>() as f64;
    Some(
        curve
            .iter()
            .map(|b| b.count as f64 / total * (b.mean_predicted - b.fraction_positive).abs())
            .sum(),
    )
}

/// Number of equal-width bins [`evaluate`] uses for the expected calibration error.
pub const EVALUATION_CALIBRATION_BINS: usize = 10;

/// The standard set of metrics reported for a model on one labelled window. A field is
/// `None` where the metric is undefined for the data (e.g. ROC-AUC with one class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub roc_auc: Option<f64>,
    pub average_precision: Option<f64>,
    /// Best recall with FPR ≤ 0.1 %.
    pub recall_at_0_1pct_fpr: Option<f64>,
    /// Best recall with FPR ≤ 1 %.
    pub recall_at_1pct_fpr: Option<f64>,
    pub precision_at_k: Option<f64>,
    pub card_precision_at_k: Option<f64>,
    pub brier: Option<f64>,
    pub log_loss: Option<f64>,
    /// Expected calibration error over [`EVALUATION_CALIBRATION_BINS`] bins.
    pub ece: Option<f64>,
}

/// Computes every [`Evaluation`] metric for calibrated probabilities `probs`. `k` is used for
/// both precision@k and card precision@k. Pass empty `entities` and `days` when they are not
/// known: card precision@k is then `None` and everything else is still computed.
pub fn evaluate(
    probs: &[f64],
    labels: &[bool],
    entities: &[&str],
    days: &[i64],
    k: usize,
) -> Evaluation {
    Evaluation {
        roc_auc: roc_auc(probs, labels),
        average_precision: average_precision(probs, labels),
        recall_at_0_1pct_fpr: recall_at_fpr(probs, labels, 0.001).map(|p| p.recall),
        recall_at_1pct_fpr: recall_at_fpr(probs, labels, 0.01).map(|p| p.recall),
        precision_at_k: precision_at_k(probs, labels, k),
        card_precision_at_k: card_precision_at_k(probs, labels, entities, days, k),
        brier: brier_score(probs, labels),
        log_loss: log_loss(probs, labels),
        ece: expected_calibration_error(probs, labels, EVALUATION_CALIBRATION_BINS),
    }
}

impl Evaluation {
    /// The defined metrics keyed by field name (e.g. `"roc_auc"`), for manifests and reports.
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        [
            ("roc_auc", self.roc_auc),
            ("average_precision", self.average_precision),
            ("recall_at_0_1pct_fpr", self.recall_at_0_1pct_fpr),
            ("recall_at_1pct_fpr", self.recall_at_1pct_fpr),
            ("precision_at_k", self.precision_at_k),
            ("card_precision_at_k", self.card_precision_at_k),
            ("brier", self.brier),
            ("log_loss", self.log_loss),
            ("ece", self.ece),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-12
    }

    // Six transactions with a tie at 0.7 between a fraud and a legitimate one.
    // Distinct thresholds, highest first, with cumulative (tp, fp); P = 3, N = 3:
    //   0.9 → (1, 0)   0.8 → (1, 1)   0.7 → (2, 2)   0.4 → (3, 2)   0.2 → (3, 3)
    const S: [f64; 6] = [0.9, 0.8, 0.7, 0.7, 0.4, 0.2];
    const Y: [bool; 6] = [true, false, true, false, true, false];

    /// O(n²) pair counting, the definition of AUC.
    fn brute_force_auc(s: &[f64], y: &[bool]) -> f64 {
        let (mut won, mut pairs) = (0.0, 0.0);
        for i in (0..s.len()).filter(|&i| y[i]) {
            for j in (0..s.len()).filter(|&j| !y[j]) {
                pairs += 1.0;
                won += if s[i] > s[j] {
                    1.0
                } else if s[i] == s[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
        won / pairs
    }

    fn random_set(seed: u64, n: usize, decimals: i32) -> (Vec<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let scale = 10f64.powi(decimals);
        let s: Vec<f64> = (0..n)
            .map(|_| (rng.random::<f64>() * scale).round() / scale)
            .collect();
        let y = s.iter().map(|&p| rng.random_bool(p)).collect();
        (s, y)
    }

    #[test]
    fn auc_hand_computed_with_a_tie() {
        // Frauds 0.9, 0.7, 0.4 against legitimate 0.8, 0.7, 0.2:
        //   0.9 beats all three → 3; 0.7 beats 0.2, ties 0.7, loses to 0.8 → 1.5;
        //   0.4 beats 0.2 → 1.  AUC = 5.5 / 9.
        assert!(close(roc_auc(&S, &Y).unwrap(), 5.5 / 9.0));
        assert_eq!(roc_auc(&S, &[true; 6]), None);
        assert_eq!(roc_auc(&S, &[false; 6]), None);
        assert_eq!(roc_auc(&S, &Y[..5]), None);
        assert_eq!(roc_auc(&[], &[]), None);
        assert_eq!(roc_auc(&[0.1, f64::NAN], &[true, false]), None);
    }

    #[test]
    fn auc_extremes() {
        assert_eq!(roc_auc(&[0.3; 6], &Y), Some(0.5));
        // Frauds all above legitimate ⇒ 1; the reverse ⇒ 0.
        let y = [true, true, false, false, false];
        let s = [5.0, 4.0, 3.0, 2.0, 1.0];
        assert_eq!(roc_auc(&s, &y), Some(1.0));
        let reversed: Vec<f64> = s.iter().map(|x| -x).collect();
        assert_eq!(roc_auc(&reversed, &y), Some(0.0));
    }

    #[test]
    fn auc_matches_pair_counting_and_is_invariant_under_monotone_transforms() {
        // Two decimals ⇒ many ties on 2000 points.
        let (s, y) = random_set(42, 2000, 2);
        let auc = roc_auc(&s, &y).unwrap();
        assert!((auc - brute_force_auc(&s, &y)).abs() < 1e-12);
        assert!(auc > 0.6, "labels drawn with p = score must rank: {auc}");
        let exp: Vec<f64> = s.iter().map(|x| x.exp()).collect();
        let cube: Vec<f64> = s.iter().map(|x| (x - 0.5).powi(3)).collect();
        assert_eq!(roc_auc(&exp, &y), Some(auc));
        assert_eq!(roc_auc(&cube, &y), Some(auc));
    }

    #[test]
    fn roc_curve_points() {
        let curve = roc_curve(&S, &Y);
        let expected = [
            (0.0, 0.0, f64::INFINITY),
            (0.0, 1.0 / 3.0, 0.9),
            (1.0 / 3.0, 1.0 / 3.0, 0.8),
            (2.0 / 3.0, 2.0 / 3.0, 0.7),
            (2.0 / 3.0, 1.0, 0.4),
            (1.0, 1.0, 0.2),
        ];
        assert_eq!(curve.len(), expected.len());
        for (point, (fpr, tpr, threshold)) in curve.iter().zip(expected) {
            assert!(close(point.fpr, fpr) && close(point.tpr, tpr), "{point:?}");
            assert_eq!(point.threshold, threshold);
        }
        assert!(roc_curve(&S, &[true; 6]).is_empty());
    }

    #[test]
    fn average_precision_hand_computed() {
        // Σ ΔR · P over thresholds: 0.9 → 1/3 · 1; 0.8 → ΔR = 0; 0.7 (tie group) → 1/3 · 2/4;
        // 0.4 → 1/3 · 3/5; 0.2 → ΔR = 0.  AP = 1/3 + 1/6 + 1/5 = 0.7.
        assert!(close(average_precision(&S, &Y).unwrap(), 0.7));
        assert_eq!(average_precision(&S, &[false; 6]), None);
        // No negatives is fine: every threshold has precision 1.
        assert_eq!(average_precision(&S, &[true; 6]), Some(1.0));

        let curve = pr_curve(&S, &Y);
        let recalls: Vec<f64> = curve.iter().map(|p| p.recall).collect();
        let precisions: Vec<f64> = curve.iter().map(|p| p.precision).collect();
        let third = 1.0 / 3.0;
        assert_eq!(recalls, [third, third, 2.0 * third, 1.0, 1.0]);
        assert_eq!(precisions, [1.0, 0.5, 0.5, 0.6, 0.5]);
        assert_eq!(curve[2].threshold, 0.7);
    }

    #[test]
    fn recall_at_fpr_respects_tie_groups() {
        // FPR ≤ 0.5: 0.9 (FPR 0) and 0.8 (FPR 1/3) qualify, recall 1/3 at both, so the
        // higher threshold wins. Taking only the fraud of the 0.7 tie would give recall 2/3
        // at FPR 1/3, but the tie group brings its legitimate twin: FPR 2/3 > 0.5.
        let point = recall_at_fpr(&S, &Y, 0.5).unwrap();
        assert_eq!(point.threshold, 0.9);
        assert!(close(point.recall, 1.0 / 3.0));
        assert_eq!((point.fpr, point.precision), (0.0, 1.0));

        // FPR ≤ 0.7: 0.7 (FPR 2/3, recall 2/3) and 0.4 (FPR 2/3, recall 1) qualify.
        let point = recall_at_fpr(&S, &Y, 0.7).unwrap();
        assert_eq!(point.threshold, 0.4);
        assert!(close(point.recall, 1.0) && close(point.fpr, 2.0 / 3.0));
        assert!(close(point.precision, 3.0 / 5.0));

        // Nothing admissible: alert nothing.
        let legit_on_top = [false, true, true, false, true, false];
        let point = recall_at_fpr(&S, &legit_on_top, 0.0).unwrap();
        assert_eq!(point.threshold, f64::INFINITY);
        assert_eq!((point.recall, point.fpr), (0.0, 0.0));

        assert_eq!(recall_at_fpr(&S, &Y, f64::NAN), None);
        assert_eq!(recall_at_fpr(&S, &[true; 6], 0.1), None);
    }

    #[test]
    fn recall_at_fpr_matches_exhaustive_search() {
        let (s, y) = random_set(7, 500, 2);
        let negatives = y.iter().filter(|l| !**l).count() as f64;
        let positives = y.len() as f64 - negatives;
        for max_fpr in [0.0, 0.001, 0.01, 0.05, 0.2, 0.5, 1.0] {
            let mut best_recall = 0.0;
            for &t in &s {
                let alerted = |want: bool| {
                    s.iter()
                        .zip(&y)
                        .filter(|(x, l)| **x >= t && **l == want)
                        .count() as f64
                };
                if alerted(false) / negatives <= max_fpr {
                    best_recall = f64::max(best_recall, alerted(true) / positives);
                }
            }
            let point = recall_at_fpr(&s, &y, max_fpr).unwrap();
            assert_eq!(point.recall, best_recall, "max_fpr {max_fpr}");
            assert!(point.fpr <= max_fpr);
        }
    }

    #[test]
    fn precision_at_k_hand_computed() {
        // Top 2: 0.9 (fraud), 0.8 (legit) → 1/2.
        assert_eq!(precision_at_k(&S, &Y, 2), Some(0.5));
        // Top 3 reaches into the 0.7 tie: index 2 (fraud) comes before index 3 → 2/3.
        assert!(close(precision_at_k(&S, &Y, 3).unwrap(), 2.0 / 3.0));
        // Swap the tie's labels: now index 2 is the legitimate one → 1/3.
        let swapped = [true, false, false, true, true, false];
        assert!(close(precision_at_k(&S, &swapped, 3).unwrap(), 1.0 / 3.0));
        // k larger than n: all six, 3 frauds.
        assert_eq!(precision_at_k(&S, &Y, 100), Some(0.5));
        assert_eq!(precision_at_k(&S, &Y, 0), None);
        assert_eq!(precision_at_k(&S, &Y[..2], 1), None);
    }

    #[test]
    fn card_precision_at_k_over_two_days() {
        let scores = [0.9, 0.1, 0.8, 0.3, 0.2, 0.95, 0.5, 0.6];
        let labels = [false, true, false, true, false, true, false, false];
        let cards = ["a", "a", "b", "c", "d", "e", "a", "e"];
        let days = [1, 1, 1, 1, 1, 2, 2, 2];
        // Day 1, by max score: a 0.9 (compromised: its 0.1 transaction is fraud),
        //   b 0.8 (no), c 0.3 (yes), d 0.2 (no).
        // Day 2: e 0.95 (yes, from its first transaction), a 0.5 (no: day 1's fraud does
        //   not count on day 2).
        // k = 2: day 1 {a, b} → 1/2; day 2 {e, a} → 1/2; mean 1/2.
        assert_eq!(
            card_precision_at_k(&scores, &labels, &cards, &days, 2),
            Some(0.5)
        );
        // k = 3: day 1 {a, b, c} → 2/3; day 2 has only 2 cards → 1/2; mean 7/12.
        let cp3 = card_precision_at_k(&scores, &labels, &cards, &days, 3).unwrap();
        assert!(close(cp3, 7.0 / 12.0));
        // k = 1: day 1 {a} → 1; day 2 {e} → 1. Transaction-level precision@1 per day
        // would be 0 on day 1 (the 0.9 transaction itself is legitimate).
        assert_eq!(
            card_precision_at_k(&scores, &labels, &cards, &days, 1),
            Some(1.0)
        );
        assert_eq!(
            card_precision_at_k(&scores, &labels, &cards[..7], &days, 1),
            None
        );
        assert_eq!(
            card_precision_at_k(&scores, &labels, &cards, &days, 0),
            None
        );
    }

    #[test]
    fn card_precision_breaks_ties_by_first_transaction() {
        // Both cards score 0.5; "z" appears first, so with k = 1 it is the one alerted.
        let scores = [0.5, 0.5];
        let cards = ["z", "a"];
        let days = [0, 0];
        assert_eq!(
            card_precision_at_k(&scores, &[true, false], &cards, &days, 1),
            Some(1.0)
        );
        assert_eq!(
            card_precision_at_k(&scores, &[false, true], &cards, &days, 1),
            Some(0.0)
        );
    }

    #[test]
    fn brier_and_log_loss_hand_computed() {
        let p = [0.9, 0.2, 0.6, 0.4];
        let y = [true, false, false, true];
        // (0.1² + 0.2² + 0.6² + 0.6²) / 4 = (0.01 + 0.04 + 0.36 + 0.36) / 4 = 0.1925
        assert!(close(brier_score(&p, &y).unwrap(), 0.1925));
        // −(ln 0.9 + ln 0.8 + ln 0.4 + ln 0.4) / 4
        let expected = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln() + 0.4f64.ln()) / 4.0;
        assert!(close(log_loss(&p, &y).unwrap(), expected));
        // Clipping: a confident mistake costs −ln(1e-15) ≈ 34.54, not infinity.
        let clipped = log_loss(&[0.0], &[true]).unwrap();
        assert!(close(clipped, -(1e-15f64).ln()));
        assert!(log_loss(&[1.0], &[true]).unwrap() < 1e-14);
        assert_eq!(brier_score(&p, &y[..3]), None);
        assert_eq!(log_loss(&[], &[]), None);
    }

    #[test]
    fn calibration_curve_and_ece_hand_computed() {
        let p = [0.1, 0.15, 0.8, 0.9, 0.85];
        let y = [false, true, true, true, false];
        // Two bins: [0, 0.5) holds 0.1, 0.15 → mean 0.125, 1 of 2 positive;
        //           [0.5, 1] holds 0.8, 0.9, 0.85 → mean 0.85, 2 of 3 positive.
        let curve = calibration_curve(&p, &y, 2);
        assert_eq!(curve.len(), 2);
        assert_eq!(
            (curve[0].lower, curve[0].upper, curve[0].count),
            (0.0, 0.5, 2)
        );
        assert!(close(curve[0].mean_predicted, 0.125) && close(curve[0].fraction_positive, 0.5));
        assert_eq!(
            (curve[1].lower, curve[1].upper, curve[1].count),
            (0.5, 1.0, 3)
        );
        assert!(close(curve[1].mean_predicted, 0.85));
        assert!(close(curve[1].fraction_positive, 2.0 / 3.0));
        // ECE = 2/5 · |0.125 − 0.5| + 3/5 · |0.85 − 2/3| = 0.15 + 0.11 = 0.26
        assert!(close(expected_calibration_error(&p, &y, 2).unwrap(), 0.26));
        // Ten bins: only bins 1, 8 and 9 are occupied; 1.0 goes to the last bin.
        let lowers: Vec<f64> = calibration_curve(&p, &y, 10)
            .iter()
            .map(|b| b.lower)
            .collect();
        assert_eq!(lowers, [0.1, 0.8, 0.9]);
        assert_eq!(calibration_curve(&[1.0], &[true], 4)[0].lower, 0.75);
        assert_eq!(expected_calibration_error(&p, &y, 0), None);
    }

    #[test]
    fn calibrated_synthetic_data_has_small_ece_and_miscalibrated_does_not() {
        let mut rng = ChaCha8Rng::seed_from_u64(2024);
        let p: Vec<f64> = (0..100_000).map(|_| rng.random::<f64>()).collect();
        let y: Vec<bool> = p.iter().map(|&q| rng.random_bool(q)).collect();
        let ece = expected_calibration_error(&p, &y, 10).unwrap();
        assert!(ece < 0.02, "ece {ece}");
        // Squaring the probabilities keeps the ranking but breaks calibration.
        let squared: Vec<f64> = p.iter().map(|q| q * q).collect();
        let ece = expected_calibration_error(&squared, &y, 10).unwrap();
        assert!(ece > 0.1, "ece {ece}");
    }

    #[test]
    fn evaluation_map_holds_only_defined_metrics() {
        let days = [1, 1, 1, 2, 2, 2];
        let cards = ["a", "b", "c", "a", "b", "c"];
        let evaluation = evaluate(&S, &Y, &cards, &days, 2);
        assert!(close(evaluation.roc_auc.unwrap(), 5.5 / 9.0));
        assert!(close(evaluation.average_precision.unwrap(), 0.7));
        assert_eq!(evaluation.precision_at_k, Some(0.5));
        let map = evaluation.to_map();
        assert_eq!(map.len(), 9);
        assert_eq!(map["roc_auc"], evaluation.roc_auc.unwrap());
        assert_eq!(map["recall_at_1pct_fpr"], 1.0 / 3.0);
        let json = serde_json::to_string(&evaluation).unwrap();
        assert_eq!(
            serde_json::from_str::<Evaluation>(&json).unwrap(),
            evaluation
        );

        // One class and no entities: rank metrics and card precision are undefined.
        let evaluation = evaluate(&S, &[false; 6], &[], &[], 2);
        let map = evaluation.to_map();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["brier", "ece", "log_loss", "precision_at_k"]);
    }
}
