//! The live window of scores and the drift report over it. Pure: no I/O, no clock.

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

/// The last `capacity` distinct scores of one model version.
#[derive(Debug)]
pub struct ScoreWindow {
    model_version: String,
    reference: Histogram,
    capacity: usize,
    scores: VecDeque<(String, f64)>,
    ids: HashSet<String>,
}

impl ScoreWindow {
    pub fn new(model_version: String, reference: Histogram, capacity: usize) -> ScoreWindow {
        ScoreWindow {
            model_version,
            reference,
            capacity: capacity.max(1),
            scores: VecDeque::new(),
            ids: HashSet::new(),
        }
    }

    pub fn model_version(&self) -> &str {
        &self.model_version
    }

    /// Adds a score; ignores other model versions and transaction ids already in the window
    /// (redelivered score events). Returns whether it was added.
    pub fn add(&mut self, model_version: &str, transaction_id: &str, probability: f64) -> bool {
        if model_version != self.model_version || self.ids.contains(transaction_id) {
            return false;
        }
        if self.scores.len() == self.capacity
            && let Some((old, _)) = self.scores.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(transaction_id.to_owned());
        self.scores
            .push_back((transaction_id.to_owned(), probability));
        true
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn report(&self, t: &Thresholds) -> Report {
        let mut live = self.reference.empty_like();
        for (_, p) in &self.scores {
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

#[cfg(test)]
mod tests {
    use super::*;

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
