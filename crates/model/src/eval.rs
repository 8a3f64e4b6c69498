//! Evaluation metrics. One implementation, used by the trainer (and by anything that reports
//! model quality), checked against hand-computed values.

/// ROC-AUC by the rank statistic (Mann–Whitney U), ties counted as one half.
/// `None` when one class is absent.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    let negatives = pairs.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Sum of (average) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Average precision: Σ (R_k − R_{k−1}) · P_k over score thresholds, ties grouped.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    if positives == 0.0 {
        return None;
    }
    let (mut tp, mut seen, mut ap, mut prev_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            tp += f64::from(u8::from(pairs[j].1));
            seen += 1.0;
            j += 1;
        }
        let recall = tp / positives;
        ap += (recall - prev_recall) * (tp / seen);
        prev_recall = recall;
        i = j;
    }
    Some(ap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_hand_computed_and_properties() {
        // Positives at 0.8, 0.4; negatives at 0.6, 0.2: pairs won 3 of 4.
        let s = [0.8, 0.6, 0.4, 0.2];
        let y = [true, false, true, false];
        assert_eq!(roc_auc(&s, &y), Some(0.75));
        // Invariant to monotone transforms.
        let t: Vec<f64> = s.iter().map(|x: &f64| x.powi(3) * 10.0 - 1.0).collect();
        assert_eq!(roc_auc(&t, &y), Some(0.75));
        // A constant score has AUC 0.5.
        assert_eq!(roc_auc(&[0.3; 4], &y), Some(0.5));
        assert_eq!(roc_auc(&s, &[true; 4]), None);
    }

    #[test]
    fn average_precision_hand_computed() {
        // Ranked: +, -, +, -  → P@1 = 1 at R = .5, P@3 = 2/3 at R = 1.
        let s = [0.8, 0.6, 0.4, 0.2];
        let y = [true, false, true, false];
        let ap = average_precision(&s, &y).unwrap();
        assert!((ap - (0.5 * 1.0 + 0.5 * 2.0 / 3.0)).abs() < 1e-12);
        assert_eq!(average_precision(&s, &[false; 4]), None);
    }
}
