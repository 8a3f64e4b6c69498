//! The decision policy: probability → APPROVE / REVIEW / BLOCK.

use serde::{Deserialize, Serialize};

/// What to do with a transaction, in increasing severity (the order `Ord` follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Decision {
    Approve,
    Review,
    Block,
}

/// Probability thresholds, chosen by the trainer on the validation window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// At or above: REVIEW.
    pub review: f64,
    /// At or above: BLOCK.
    pub block: f64,
}

impl Thresholds {
    /// Checks `0 <= review <= block <= 1`.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.review) || !(0.0..=1.0).contains(&self.block) {
            return Err(format!("thresholds must be within [0, 1]: {self:?}"));
        }
        if self.review > self.block {
            return Err(format!("review threshold above block threshold: {self:?}"));
        }
        Ok(())
    }

    pub fn decide(&self, probability: f64) -> Decision {
        if probability >= self.block {
            Decision::Block
        } else if probability >= self.review {
            Decision::Review
        } else {
            Decision::Approve
        }
    }
}

/// The smallest threshold such that at most `budget` (a fraction) of `scores` lie at or above it.
/// Used to pick thresholds from an alert budget on the validation window.
pub fn threshold_for_budget(scores: &[f64], budget: f64) -> f64 {
    if scores.is_empty() {
        return 1.0;
    }
    let mut sorted = scores.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let allowed = (budget * sorted.len() as f64).floor() as usize;
    if allowed == 0 {
        // Nothing may be flagged: just above the highest score.
        return next_up(sorted[0]);
    }
    // Flag the `allowed` highest; ties at the boundary push the threshold up.
    let boundary = sorted[allowed - 1];
    if allowed < sorted.len() && sorted[allowed] == boundary {
        next_up(boundary)
    } else {
        boundary
    }
}

fn next_up(x: f64) -> f64 {
    if x >= 1.0 {
        1.0
    } else {
        f64::from_bits(x.to_bits() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decides_by_thresholds() {
        let t = Thresholds {
            review: 0.3,
            block: 0.8,
        };
        assert_eq!(t.decide(0.1), Decision::Approve);
        assert_eq!(t.decide(0.3), Decision::Review);
        assert_eq!(t.decide(0.95), Decision::Block);
        assert!(
            Thresholds {
                review: 0.9,
                block: 0.5
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn budget_threshold_flags_at_most_the_budget() {
        let scores: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        let th = threshold_for_budget(&scores, 0.01);
        let flagged = scores.iter().filter(|&&s| s >= th).count();
        assert_eq!(flagged, 10);
        let ties = vec![0.5; 100];
        let th = threshold_for_budget(&ties, 0.01);
        assert_eq!(ties.iter().filter(|&&s| s >= th).count(), 0);
    }
}
