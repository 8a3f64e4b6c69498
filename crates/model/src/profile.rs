//! Reference profiles of the model's inputs: for each feature, how its values were
//! distributed in the training reference window, plus the score histogram.
//!
//! The trainer builds a [`ReferenceProfile`] and stores it with the model; the drift monitor
//! computes the PSI of live values against it. The bins are fixed at training time, and the
//! PSI formula is the one in [`crate::reference`], so both sides agree on what a shift is.
//!
//! Every fraction in a profile is a share of *all* reference values, missing ones included,
//! so that the fractions and `missing_fraction` together sum to 1 and "missing" is compared
//! like any other bin.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::reference::{Histogram, psi_fractions};

/// Quantile bins used for numeric features by default (deciles).
pub const DEFAULT_NUMERIC_BINS: usize = 10;

/// Categories kept by name in a categorical profile; the rarer ones are pooled as "other".
pub const MAX_CATEGORIES: usize = 50;

/// The reference distribution of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureProfile {
    /// Quantile bins. `edges` are the interior edges e₁ < … < eₖ, always finite; the bins
    /// are (−∞, e₁], (e₁, e₂], …, (eₖ, +∞), so `fractions` has `edges.len() + 1` entries.
    Numeric {
        edges: Vec<f64>,
        fractions: Vec<f64>,
        missing_fraction: f64,
    },
    /// Shares of the [`MAX_CATEGORIES`] most frequent categories; the rest is
    /// `other_fraction`. The empty string is the missing value.
    Categorical {
        frequencies: BTreeMap<String, f64>,
        other_fraction: f64,
        missing_fraction: f64,
    },
}

/// A feature's profile under the feature's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedProfile {
    pub name: String,
    pub profile: FeatureProfile,
}

/// Everything the drift monitor compares live traffic with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    pub features: Vec<NamedProfile>,
    pub scores: Histogram,
}

impl ReferenceProfile {
    /// The profile of the feature called `name`, if recorded.
    pub fn feature(&self, name: &str) -> Option<&FeatureProfile> {
        self.features
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.profile)
    }
}

/// Index of the bin (−∞, e₁], (e₁, e₂], …, (eₖ, +∞) holding `value` (`drift`'s rule).
fn numeric_bin(edges: &[f64], value: f64) -> usize {
    drift::binning::right_closed_bin(edges, value)
}

impl FeatureProfile {
    /// Profile of a numeric feature with `bins` quantile bins (10 gives deciles; 0 is
    /// treated as 1). NaN is the missing value.
    ///
    /// The i-th edge is the i/bins quantile of the finite values by the inverted-CDF rule
    /// (the smallest value with at least i/bins of the data at or below it), which with
    /// right-closed bins puts as close to i/bins of the data at or below the edge as ties
    /// allow. Repeated quantiles give a single edge, so a feature with few distinct values
    /// has fewer bins. Infinite values count in the end bins but never become edges.
    pub fn numeric(values: &[f64], bins: usize) -> FeatureProfile {
        let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        finite.sort_unstable_by(f64::total_cmp);
        let edges = drift::binning::quantile_edges_sorted(&finite, bins);
        let mut counts = vec![0usize; edges.len() + 1];
        let mut missing = 0usize;
        for &v in values {
            if v.is_nan() {
                missing += 1;
            } else {
                counts[numeric_bin(&edges, v)] += 1;
            }
        }
        let total = values.len().max(1) as f64;
        FeatureProfile::Numeric {
            edges,
            fractions: counts.iter().map(|&c| c as f64 / total).collect(),
            missing_fraction: missing as f64 / total,
        }
    }

    /// Profile of a categorical feature (codes written as strings; `""` is missing). The
    /// [`MAX_CATEGORIES`] most frequent categories are kept, ties going to the smaller name.
    pub fn categorical(values: &[String]) -> FeatureProfile {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut missing = 0usize;
        for v in values {
            if v.is_empty() {
                missing += 1;
            } else {
                *counts.entry(v).or_default() += 1;
            }
        }
        let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
        // Stable sort of a name-ordered list: equal counts stay in name order.
        ranked.sort_by_key(|&(_, count)| std::cmp::Reverse(count));
        let total = values.len().max(1) as f64;
        let other: usize = ranked.iter().skip(MAX_CATEGORIES).map(|c| c.1).sum();
        FeatureProfile::Categorical {
            frequencies: ranked
                .iter()
                .take(MAX_CATEGORIES)
                .map(|&(name, count)| (name.to_owned(), count as f64 / total))
                .collect(),
            other_fraction: other as f64 / total,
            missing_fraction: missing as f64 / total,
        }
    }

    /// PSI of live numeric values against this profile, over its bins plus a "missing" bin.
    ///
    /// `None` when the profile is categorical or malformed, was built from no values, or
    /// `live` is empty.
    pub fn psi(&self, live: &[f64]) -> Option<f64> {
        let FeatureProfile::Numeric {
            edges,
            fractions,
            missing_fraction,
        } = self
        else {
            return None;
        };
        if live.is_empty() || fractions.len() != edges.len() + 1 {
            return None;
        }
        let expected: Vec<f64> = fractions
            .iter()
            .chain([missing_fraction])
            .copied()
            .collect();
        if expected.iter().sum::<f64>() <= 0.0 {
            return None;
        }
        let missing_bin = expected.len() - 1;
        let mut counts = vec![0usize; expected.len()];
        for &v in live {
            let bin = if v.is_nan() {
                missing_bin
            } else {
                numeric_bin(edges, v)
            };
            counts[bin] += 1;
        }
        Some(psi_fractions(&expected, &shares(&counts, live.len())))
    }

    /// PSI of live categorical values against this profile, over its named categories,
    /// "other" (including categories never seen in the reference) and "missing" (`""`).
    ///
    /// `None` when the profile is numeric, was built from no values, or `live` is empty.
    pub fn psi_categorical(&self, live: &[String]) -> Option<f64> {
        let FeatureProfile::Categorical {
            frequencies,
            other_fraction,
            missing_fraction,
        } = self
        else {
            return None;
        };
        if live.is_empty() {
            return None;
        }
        let expected: Vec<f64> = frequencies
            .values()
            .chain([other_fraction, missing_fraction])
            .copied()
            .collect();
        if expected.iter().sum::<f64>() <= 0.0 {
            return None;
        }
        let (other_bin, missing_bin) = (frequencies.len(), frequencies.len() + 1);
        let mut counts = vec![0usize; expected.len()];
        for v in live {
            let bin = if v.is_empty() {
                missing_bin
            } else {
                // BTreeMap iterates in key order, matching `expected`.
                frequencies.keys().position(|k| k == v).unwrap_or(other_bin)
            };
            counts[bin] += 1;
        }
        Some(psi_fractions(&expected, &shares(&counts, live.len())))
    }
}

fn shares(counts: &[usize], total: usize) -> Vec<f64> {
    counts.iter().map(|&c| c as f64 / total as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn numeric_parts(p: &FeatureProfile) -> (Vec<f64>, Vec<f64>, f64) {
        match p {
            FeatureProfile::Numeric {
                edges,
                fractions,
                missing_fraction,
            } => (edges.clone(), fractions.clone(), *missing_fraction),
            other => panic!("expected numeric, got {other:?}"),
        }
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Approximately normal values (sum of 12 uniforms − 6), shifted by `mean`.
    fn normal(seed: u64, n: usize, mean: f64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| mean + (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0)
            .collect()
    }

    #[test]
    fn numeric_bins_hand_checked() {
        // 1..=10 in 5 bins: the i/5 quantile is the value of rank ⌈10·i/5⌉ = 2i, so the
        // edges are 2, 4, 6, 8 and each bin (−∞,2], (2,4], (4,6], (6,8], (8,∞) holds two.
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        let (edges, fractions, missing) = numeric_parts(&FeatureProfile::numeric(&values, 5));
        assert_eq!(edges, [2.0, 4.0, 6.0, 8.0]);
        assert_eq!(fractions, [0.2; 5]);
        assert_eq!(missing, 0.0);

        // A NaN is missing: it does not move the edges, and shares are of all 11 values.
        let mut with_nan = values.clone();
        with_nan.push(f64::NAN);
        let (edges, fractions, missing) = numeric_parts(&FeatureProfile::numeric(&with_nan, 5));
        assert_eq!(edges, [2.0, 4.0, 6.0, 8.0]);
        assert_eq!(fractions, [2.0 / 11.0; 5]);
        assert_eq!(missing, 1.0 / 11.0);
    }

    #[test]
    fn repeated_quantiles_give_one_edge() {
        // Ranks 2, 4, 6, 8 of [1,1,1,1,1,1,2,3,4,5] are 1, 1, 1, 3 → edges 1, 3:
        // (−∞,1] holds the six 1s, (1,3] holds 2 and 3, (3,∞) holds 4 and 5.
        let values = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let (edges, fractions, _) = numeric_parts(&FeatureProfile::numeric(&values, 5));
        assert_eq!(edges, [1.0, 3.0]);
        assert_eq!(fractions, [0.6, 0.2, 0.2]);
        // A constant feature has one edge; a live value above it is a different bin.
        let constant = FeatureProfile::numeric(&[5.0; 20], 10);
        assert_eq!(numeric_parts(&constant).0, [5.0]);
        assert!(constant.psi(&[6.0; 20]).unwrap() > 0.25);
    }

    #[test]
    fn identical_numeric_data_has_zero_psi_and_a_shift_is_large() {
        let reference = normal(1, 10_000, 0.0);
        let profile = FeatureProfile::numeric(&reference, DEFAULT_NUMERIC_BINS);
        let (edges, fractions, _) = numeric_parts(&profile);
        assert_eq!(edges.len(), 9);
        assert!(fractions.iter().all(|f| (f - 0.1).abs() < 1e-3));
        assert!(profile.psi(&reference).unwrap().abs() < 1e-12);
        // Another sample of the same distribution: small.
        assert!(profile.psi(&normal(2, 10_000, 0.0)).unwrap() < 0.01);
        // Shifted by one standard deviation: significant.
        assert!(profile.psi(&normal(3, 10_000, 1.0)).unwrap() > 0.25);
        // Half the live values missing: significant, through the missing bin.
        let mut half_missing = normal(4, 10_000, 0.0);
        half_missing[..5000].fill(f64::NAN);
        assert!(profile.psi(&half_missing).unwrap() > 0.25);

        assert_eq!(profile.psi(&[]), None);
        assert_eq!(profile.psi_categorical(&strings(&["a"])), None);
        assert_eq!(FeatureProfile::numeric(&[], 10).psi(&[1.0]), None);
    }

    #[test]
    fn categorical_profile_psi_and_other_bucket() {
        // 70 % "a", 20 % "b", 10 % missing.
        let mut reference = vec!["a".to_owned(); 70];
        reference.extend(vec!["b".to_owned(); 20]);
        reference.extend(vec![String::new(); 10]);
        let profile = FeatureProfile::categorical(&reference);
        let FeatureProfile::Categorical {
            frequencies,
            other_fraction,
            missing_fraction,
        } = &profile
        else {
            panic!("expected categorical");
        };
        assert_eq!(frequencies.len(), 2);
        assert_eq!((frequencies["a"], frequencies["b"]), (0.7, 0.2));
        assert_eq!((*other_fraction, *missing_fraction), (0.0, 0.1));

        assert!(profile.psi_categorical(&reference).unwrap().abs() < 1e-12);
        // Live: 20 % a, 20 % b, 50 % a new category (→ other), 10 % missing.
        let mut live = vec!["a".to_owned(); 20];
        live.extend(vec!["b".to_owned(); 20]);
        live.extend(vec!["zz".to_owned(); 50]);
        live.extend(vec![String::new(); 10]);
        assert!(profile.psi_categorical(&live).unwrap() > 0.25);
        assert_eq!(profile.psi(&[1.0]), None);
        assert_eq!(profile.psi_categorical(&[]), None);
    }

    #[test]
    fn categorical_keeps_the_fifty_most_frequent() {
        // Category i appears 100 − i times for i in 0..60: the top 50 are 0..50.
        let values: Vec<String> = (0..60)
            .flat_map(|i| std::iter::repeat_n(format!("c{i}"), 100 - i))
            .collect();
        let total = values.len() as f64; // 100 + 99 + … + 41 = 4230
        let FeatureProfile::Categorical {
            frequencies,
            other_fraction,
            ..
        } = FeatureProfile::categorical(&values)
        else {
            panic!("expected categorical");
        };
        assert_eq!(frequencies.len(), MAX_CATEGORIES);
        assert!(frequencies.contains_key("c49") && !frequencies.contains_key("c50"));
        // Other: counts 50 + 49 + … + 41 = 455.
        assert_eq!(other_fraction, 455.0 / total);
        let sum: f64 = frequencies.values().sum::<f64>() + other_fraction;
        assert!((sum - 1.0).abs() < 1e-12);
    }

    #[test]
    fn reference_profile_serde_round_trip() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        let mut scores = Histogram::uniform(4);
        scores.add(0.3);
        let profile = ReferenceProfile {
            features: vec![
                NamedProfile {
                    name: "amount".into(),
                    profile: FeatureProfile::numeric(&values, 5),
                },
                NamedProfile {
                    name: "mcc".into(),
                    profile: FeatureProfile::categorical(&strings(&["5411", "5411", "", "7995"])),
                },
            ],
            scores,
        };
        let json = serde_json::to_string(&profile).unwrap();
        assert!(json.contains(r#""kind":"numeric""#) && json.contains(r#""kind":"categorical""#));
        let back: ReferenceProfile = serde_json::from_str(&json).unwrap();
        assert_eq!(back, profile);
        assert_eq!(back.feature("mcc"), Some(&profile.features[1].profile));
        assert_eq!(back.feature("nope"), None);
    }
}
