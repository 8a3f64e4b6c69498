//! The live windows (scores, feature vectors) and the drift report over them. Pure: no I/O,
//! no clock.

use model::profile::NamedProfile;
use model::reference::{Histogram, psi};
use std::collections::{HashSet, VecDeque};

/// Drift status thresholds on the PSI.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub warn: f64,
    pub alert: f64,
    /// Fewer live scores than this: insufficient data.
    pub min_count: usize,
}

/// The verdict of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Alert,
    InsufficientData,
}

/// A drift report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub model_version: String,
    pub psi: Option<f64>,
    pub live: Histogram,
    pub reference: Histogram,
    pub status: Status,
}

/// The last `capacity` values with distinct transaction ids, oldest first.
#[derive(Debug)]
struct Distinct<T> {
    capacity: usize,
    items: VecDeque<(String, T)>,
    ids: HashSet<String>,
}

impl<T> Distinct<T> {
    fn new(capacity: usize) -> Self {
        Distinct {
            capacity: capacity.max(1),
            items: VecDeque::new(),
            ids: HashSet::new(),
        }
    }

    /// Adds a value unless its id is already in (a redelivered event); evicts the oldest
    /// when full. Returns whether it was added.
    fn insert(&mut self, id: &str, value: T) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.items.len() == self.capacity
            && let Some((old, _)) = self.items.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.to_owned());
        self.items.push_back((id.to_owned(), value));
        true
    }

    fn values(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(_, v)| v)
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

/// The last `capacity` distinct scores of one model version.
#[derive(Debug)]
pub struct ScoreWindow {
    model_version: String,
    reference: Histogram,
    scores: Distinct<f64>,
}

impl ScoreWindow {
    pub fn new(model_version: String, reference: Histogram, capacity: usize) -> ScoreWindow {
        ScoreWindow {
            model_version,
            reference,
            scores: Distinct::new(capacity),
        }
    }

    pub fn model_version(&self) -> &str {
        &self.model_version
    }

    /// Adds a score; ignores other model versions and transaction ids already in the window
    /// (redelivered score events). Returns whether it was added.
    pub fn add(&mut self, model_version: &str, transaction_id: &str, probability: f64) -> bool {
        model_version == self.model_version && self.scores.insert(transaction_id, probability)
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.len() == 0
    }

    pub fn report(&self, t: &Thresholds) -> Report {
        let mut live = self.reference.empty_like();
        for p in self.scores.values() {
            live.add(*p);
        }
        let psi = psi(&self.reference, &live);
        let status = match psi {
            _ if self.scores.len() < t.min_count => Status::InsufficientData,
            None => Status::InsufficientData,
            Some(v) if v >= t.alert => Status::Alert,
            Some(v) if v >= t.warn => Status::Warn,
            Some(_) => Status::Ok,
        };
        Report {
            model_version: self.model_version.clone(),
            psi,
            live,
            reference: self.reference.clone(),
            status,
        }
    }
}

/// One feature's drift: PSI of the live values against the manifest's reference profile.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDrift {
    pub name: String,
    /// `None` when it cannot be computed (a categorical profile, no live values).
    pub psi: Option<f64>,
}

/// Every feature's two-sample test against the artifact's reference sample, and the
/// dataset verdict over those tested.
#[derive(Debug, Clone)]
pub struct FeatureTests {
    pub policy: drift::Policy,
    pub dataset_share: f64,
    /// In the model's feature order; an `Err` says why a feature has no verdict.
    pub features: Vec<(String, Result<drift::ColumnDrift, String>)>,
    pub dataset: drift::DatasetDrift,
}

/// The last `capacity` distinct feature vectors of the schema a model was trained on.
///
/// A first, per-feature PSI view (the reference profiles of every manifest); the statistics
/// and verdicts of the closed-loop issue replace it.
#[derive(Debug)]
pub struct FeatureWindow {
    schema_hash: String,
    /// `(vector index, reference)` of every profiled feature of the model.
    references: Vec<(usize, NamedProfile)>,
    vectors: Distinct<Vec<f64>>,
    /// The artifact's reference sample, one prepared column per feature in vector order,
    /// when the artifact has one.
    sample: Option<std::sync::Arc<drift::Reference>>,
}

/// What a feature report needs from a window, taken under the window's lock so that the
/// tests themselves run without it ([`FeatureWindow::snapshot`]).
#[derive(Debug)]
pub struct FeatureSnapshot {
    reference: std::sync::Arc<drift::Reference>,
    /// One column of live values per feature, or why none are tested.
    current: Result<Vec<Vec<f64>>, String>,
}

impl FeatureWindow {
    /// A window for a model with these `feature_names` (vector order) and reference profiles.
    pub fn new(
        schema_hash: String,
        feature_names: &[String],
        reference: &[NamedProfile],
        capacity: usize,
    ) -> FeatureWindow {
        let references = reference
            .iter()
            .filter_map(|p| {
                let i = feature_names.iter().position(|n| *n == p.name)?;
                Some((i, p.clone()))
            })
            .collect();
        FeatureWindow {
            schema_hash,
            references,
            vectors: Distinct::new(capacity),
            sample: None,
        }
    }

    /// Adds the artifact's reference sample: row-major rows of `kinds.len()` features in
    /// vector order, named `feature_names`. Prepared (sorted) once, here. Refused when the
    /// names, kinds and rows do not line up.
    pub fn set_sample(
        &mut self,
        feature_names: &[String],
        kinds: &[drift::Kind],
        rows: &[f64],
    ) -> Result<(), String> {
        let width = kinds.len();
        if width == 0 || feature_names.len() != width || !rows.len().is_multiple_of(width) {
            return Err(format!(
                "a reference sample of {} values does not fit {} feature names and {width} kinds",
                rows.len(),
                feature_names.len()
            ));
        }
        let columns: Vec<Vec<f64>> = (0..width)
            .map(|j| rows.chunks_exact(width).map(|r| r[j]).collect())
            .collect();
        let specs = feature_names
            .iter()
            .zip(kinds)
            .map(|(name, &kind)| drift::ColumnSpec {
                name: name.clone(),
                kind,
            })
            .collect();
        self.sample = Some(std::sync::Arc::new(drift::Reference::new(specs, &columns)));
        Ok(())
    }

    /// The window's live values as columns, with its reference sample; `None` without a
    /// sample. With fewer than `min_count` live vectors no feature will be tested (each
    /// says so), since a verdict on a handful of values is noise.
    pub fn snapshot(&self, min_count: usize) -> Option<FeatureSnapshot> {
        let reference = self.sample.clone()?;
        let current = if self.vectors.len() < min_count {
            Err(format!(
                "{} live vectors, fewer than drift.min_count = {min_count}",
                self.vectors.len()
            ))
        } else {
            Ok((0..reference.columns().count())
                .map(|j| {
                    self.vectors
                        .values()
                        .map(|v| v.get(j).copied().unwrap_or(f64::NAN))
                        .collect()
                })
                .collect())
        };
        Some(FeatureSnapshot { reference, current })
    }

    /// Every feature's test by `policy` over the window ([`FeatureSnapshot::tests`] on a
    /// [`Self::snapshot`]).
    pub fn tests(
        &self,
        policy: drift::Policy,
        dataset_share: f64,
        min_count: usize,
    ) -> Option<FeatureTests> {
        Some(self.snapshot(min_count)?.tests(policy, dataset_share))
    }
}

impl FeatureSnapshot {
    /// Every feature's test by `policy`, and the dataset verdict at `dataset_share`.
    pub fn tests(&self, policy: drift::Policy, dataset_share: f64) -> FeatureTests {
        let names = self.reference.columns().map(|c| c.name.clone());
        let current = match &self.current {
            Ok(current) => current,
            Err(why) => {
                return FeatureTests {
                    policy,
                    dataset_share,
                    features: names.map(|n| (n, Err(why.clone()))).collect(),
                    dataset: drift::policy::dataset_drift([], dataset_share),
                };
            }
        };
        let report = self.reference.report(current, policy, dataset_share);
        FeatureTests {
            policy,
            dataset_share,
            features: report
                .columns
                .into_iter()
                .map(|(n, r)| (n, r.map_err(|e| e.to_string())))
                .collect(),
            dataset: report.dataset,
        }
    }
}

impl FeatureWindow {
    /// Adds a vector; ignores other schemas and ids already in the window. Returns whether it
    /// was added.
    pub fn add(&mut self, schema_hash: &str, transaction_id: &str, values: Vec<f64>) -> bool {
        schema_hash == self.schema_hash && self.vectors.insert(transaction_id, values)
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.len() == 0
    }

    /// Every profiled feature's PSI over the window, in the model's feature order.
    pub fn report(&self) -> Vec<FeatureDrift> {
        self.references
            .iter()
            .map(|(i, p)| {
                let live: Vec<f64> = self
                    .vectors
                    .values()
                    .filter_map(|v| v.get(*i).copied())
                    .collect();
                FeatureDrift {
                    name: p.name.clone(),
                    psi: p.profile.psi(&live),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::profile::FeatureProfile;

    #[test]
    fn feature_psi_is_small_for_the_reference_distribution_and_large_after_a_shift() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i) / 10.0).collect();
        let names = vec!["a".to_owned(), "b".to_owned()];
        let reference = vec![NamedProfile {
            name: "b".into(),
            profile: FeatureProfile::numeric(&values, 10),
        }];
        let mut w = FeatureWindow::new("h".into(), &names, &reference, 1000);
        for (k, v) in values.iter().enumerate() {
            assert!(w.add("h", &format!("t{k}"), vec![f64::NAN, *v]));
        }
        assert!(!w.add("other", "x", vec![0.0, 0.0]), "other schema");
        assert!(!w.add("h", "t1", vec![0.0, 0.0]), "duplicate id");
        let r = w.report();
        assert_eq!(r.len(), 1, "only profiled features");
        assert!(r[0].psi.unwrap() < 0.01, "{r:?}");
        for k in 0..1000 {
            w.add("h", &format!("s{k}"), vec![0.0, 1_000.0]);
        }
        assert_eq!(w.len(), 1000);
        assert!(w.report()[0].psi.unwrap() > 1.0);
    }

    /// With the artifact's sample, every feature gets the policy's test and a verdict: a
    /// window from the reference's own distribution does not drift, a shifted one does; a
    /// window under `min_count` gets no verdict, and says why.
    #[test]
    fn features_are_tested_against_the_reference_sample() {
        let names = vec!["amount".to_owned(), "channel".to_owned()];
        let kinds = [drift::Kind::Numeric, drift::Kind::Categorical];
        let row = |i: usize, shift: f64| vec![(i % 997) as f64 / 10.0 + shift, (i % 3) as f64];
        let sample: Vec<f64> = (0..3000).flat_map(|i| row(i, 0.0)).collect();
        let fresh = || {
            let mut w = FeatureWindow::new("h".into(), &names, &[], 2000);
            w.set_sample(&names, &kinds, &sample).unwrap();
            w
        };
        let mut w = fresh();
        for i in 0..50 {
            w.add("h", &format!("t{i}"), row(i * 7, 0.0));
        }
        let t = w.tests(drift::Policy::Vigil, 0.5, 100).unwrap();
        assert!(
            t.features
                .iter()
                .all(|(_, r)| r.as_ref().is_err_and(|e| e.contains("min_count")))
        );
        assert_eq!(t.dataset.columns, 0);
        for i in 50..1500 {
            w.add("h", &format!("t{i}"), row(i * 7, 0.0));
        }
        let t = w.tests(drift::Policy::Vigil, 0.5, 100).unwrap();
        let amount = t.features[0].1.as_ref().unwrap();
        assert_eq!(amount.test, drift::StatTest::WassersteinRobust);
        assert!(!amount.drifted, "{amount:?}");
        let channel = t.features[1].1.as_ref().unwrap();
        assert_eq!(channel.test, drift::StatTest::JensenShannon);
        assert!(!channel.drifted && !t.dataset.drifted, "{t:?}");
        let mut w = fresh();
        for i in 0..1500 {
            w.add("h", &format!("s{i}"), row(i * 7, 30.0));
        }
        let t = w.tests(drift::Policy::Vigil, 0.5, 100).unwrap();
        assert!(t.features[0].1.as_ref().unwrap().drifted);
        assert_eq!(t.dataset.drifted_columns, 1);
        assert!(t.dataset.drifted, "1 of 2 is the 0.5 share");
        // A sample that is not whole rows is refused, not truncated.
        assert!(
            FeatureWindow::new("h".into(), &names, &[], 10)
                .set_sample(&names, &kinds, &sample[..5])
                .is_err()
        );
        // Without a sample there are no tests (an artifact from before samples were kept).
        let w = FeatureWindow::new("h".into(), &names, &[], 10);
        assert!(w.tests(drift::Policy::Vigil, 0.5, 1).is_none());
    }

    fn reference() -> Histogram {
        let values: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        Histogram::quantile_edges(&values, 10)
    }

    const T: Thresholds = Thresholds {
        warn: 0.1,
        alert: 0.25,
        min_count: 100,
    };

    #[test]
    fn same_distribution_is_ok_and_shift_alerts() {
        let mut w = ScoreWindow::new("v1".into(), reference(), 1000);
        for i in 0..1000 {
            w.add("v1", &format!("t{i}"), i as f64 / 1000.0);
        }
        let r = w.report(&T);
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert!(r.psi.unwrap() < 0.01);
        // Replace the window with high scores only.
        for i in 0..1000 {
            w.add("v1", &format!("s{i}"), 0.9 + i as f64 / 10_000.0);
        }
        assert_eq!(w.len(), 1000);
        assert_eq!(w.report(&T).status, Status::Alert);
    }

    #[test]
    fn ignores_duplicates_other_versions_and_reports_insufficient_data() {
        let mut w = ScoreWindow::new("v2".into(), reference(), 10);
        assert!(w.add("v2", "a", 0.5));
        assert!(!w.add("v2", "a", 0.5));
        assert!(!w.add("v1", "b", 0.5));
        assert_eq!(w.len(), 1);
        assert_eq!(w.report(&T).status, Status::InsufficientData);
    }
}
