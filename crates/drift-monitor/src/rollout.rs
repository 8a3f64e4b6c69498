//! Shadow evaluation, gated promotion and automatic roll-back: the loop's last step.
//!
//! The [`Ledger`] joins, per transaction id, the served model's score, the shadow's score
//! (inference publishes both on `vigil.scores.v1`, the shadow's flagged) and the label when it
//! is reported on `vigil.labels.v1`. Labels are used as they arrive, so none is used before it
//! was reported.
//!
//! Every `evaluate_every_secs` the [`Controller`]:
//! 1. resolves the production and candidate aliases;
//! 2. once the candidate has [`GateConfig::min_labelled`] paired labelled transactions, runs
//!    the gate ([`crate::gate::compare`]) **once** for that version — a fixed-sample test, so
//!    repeated looks cannot inflate its false-promotion rate — and either moves every alias of
//!    `promote_to` to it (each move in the registry history with the gate's figures) or
//!    removes the candidate alias with the reason (which stops the shadow);
//! 3. after a promotion it made, checks the promoted version's AP on its own matured scores
//!    against the AP the gate measured, and rolls `promote_to` back when it fell by more than
//!    [`GateConfig::max_ap_drop`].
//!
//! State is in memory: a restart loses the ledger (it fills again from new traffic) and the
//! "promoted by me" mark, so a regression check does not span a restart.

use crate::gate::{self, GateConfig, Paired, Verdict};
use proto::v1::{Label, ScoreEvent};
use registry::{ModelRef, Registry};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The `rollout` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSettings {
    /// Off by default: the monitor then only reports.
    pub enabled: bool,
    /// The alias of the model inference shadows.
    pub candidate_alias: String,
    /// Aliases moved to a candidate that passes the gate, in order (and rolled back in the
    /// reverse order). In Kubernetes green follows `staging`, so the default promotes to
    /// staging and leaves the production switch to the blue/green step.
    pub promote_to: Vec<String>,
    pub evaluate_every_secs: u64,
    /// Transactions the ledger remembers (oldest forgotten first).
    pub capacity: usize,
    pub gate: GateConfig,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        RolloutSettings {
            enabled: false,
            candidate_alias: registry::stages::CANDIDATE.into(),
            promote_to: vec![registry::stages::STAGING.into()],
            evaluate_every_secs: 10,
            capacity: 200_000,
            gate: GateConfig::default(),
        }
    }
}

/// One transaction: its scores by model version, as served and as shadow (two slots serving
/// different aliases each publish a served score), and its label.
#[derive(Debug, Default)]
struct Entry {
    served: Vec<(String, f64)>,
    shadow: Vec<(String, f64)>,
    fraud: Option<bool>,
}

/// Sets `version`'s score in `scores` (a redelivery writes the same value again).
fn put(scores: &mut Vec<(String, f64)>, version: &str, p: f64) {
    match scores.iter_mut().find(|(v, _)| v == version) {
        Some(s) => s.1 = p,
        None => scores.push((version.to_owned(), p)),
    }
}

fn get(scores: &[(String, f64)], version: &str) -> Option<f64> {
    scores.iter().find(|(v, _)| v == version).map(|(_, p)| *p)
}

/// Scores and labels by transaction id, bounded.
#[derive(Debug)]
pub struct Ledger {
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Ledger {
    pub fn new(capacity: usize) -> Ledger {
        Ledger {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn entry(&mut self, id: &str) -> &mut Entry {
        if !self.entries.contains_key(id) {
            if self.order.len() == self.capacity
                && let Some(old) = self.order.pop_front()
            {
                self.entries.remove(&old);
            }
            self.order.push_back(id.to_owned());
        }
        self.entries.entry(id.to_owned()).or_default()
    }

    /// Records a score (a degraded one used no history and judges nothing: skipped). A
    /// redelivered record writes the same value again.
    pub fn score(&mut self, e: &ScoreEvent) {
        if e.degraded {
            return;
        }
        let entry = self.entry(&e.transaction_id);
        let scores = if e.shadow {
            &mut entry.shadow
        } else {
            &mut entry.served
        };
        put(scores, &e.model_version, e.probability);
    }

    /// Records a label (the latest report wins, as in the lake).
    pub fn label(&mut self, l: &Label) {
        self.entry(&l.transaction_id).fraud = Some(l.is_fraud);
    }

    /// Labelled transactions scored by `served` as served and by `candidate` as shadow.
    pub fn paired(&self, served: &str, candidate: &str) -> Vec<Paired> {
        self.entries
            .values()
            .filter_map(|e| {
                Some(Paired {
                    production: get(&e.served, served)?,
                    candidate: get(&e.shadow, candidate)?,
                    fraud: e.fraud?,
                })
            })
            .collect()
    }

    /// Labelled transactions `version` scored as the served model: (probabilities, labels).
    pub fn matured(&self, version: &str) -> (Vec<f64>, Vec<bool>) {
        self.entries
            .values()
            .filter_map(|e| Some((get(&e.served, version)?, e.fraud?)))
            .unzip()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

pub type SharedLedger = Arc<Mutex<Ledger>>;

/// The controller's metrics.
#[derive(Debug, Clone)]
pub struct RolloutMetrics {
    pub paired: prometheus::IntGauge,
    pub decisions: prometheus::IntCounterVec,
    pub rollbacks: prometheus::IntCounter,
    pub matured_ap: prometheus::Gauge,
}

impl RolloutMetrics {
    pub fn register(r: &prometheus::Registry) -> Result<RolloutMetrics, prometheus::Error> {
        let m = RolloutMetrics {
            paired: prometheus::IntGauge::new(
                "drift_gate_paired_labelled",
                "Labelled transactions scored by both the served model and the candidate",
            )?,
            decisions: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "drift_gate_decisions_total",
                    "Gate decisions by verdict (promote, reject)",
                ),
                &["verdict"],
            )?,
            rollbacks: prometheus::IntCounter::new(
                "drift_rollbacks_total",
                "Promotions rolled back after a regression",
            )?,
            matured_ap: prometheus::Gauge::new(
                "drift_matured_average_precision",
                "AP of the served version on its matured scores (NaN before enough labels)",
            )?,
        };
        r.register(Box::new(m.paired.clone()))?;
        r.register(Box::new(m.decisions.clone()))?;
        r.register(Box::new(m.rollbacks.clone()))?;
        r.register(Box::new(m.matured_ap.clone()))?;
        m.matured_ap.set(f64::NAN);
        Ok(m)
    }
}

/// A promotion this controller made: what, and the AP the gate measured for it.
struct Promoted {
    model: ModelRef,
    baseline_ap: f64,
}

/// Runs the gate and the regression check (see the module docs).
#[derive(Debug)]
pub struct Controller {
    pub registry: Registry,
    pub production_alias: String,
    pub settings: RolloutSettings,
    pub ledger: SharedLedger,
    pub metrics: RolloutMetrics,
}

impl Controller {
    pub async fn run(self, stop: CancellationToken) {
        let mut decided: HashMap<String, Verdict> = HashMap::new();
        let mut promoted: Option<Promoted> = None;
        let every = Duration::from_secs(self.settings.evaluate_every_secs.max(1));
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => break,
            }
            if let Err(error) = self.step(&mut decided, &mut promoted).await {
                tracing::warn!(%error, "rollout step failed; retried at the next interval");
            }
        }
    }

    fn block_threshold(&self, m: &ModelRef) -> Result<f64, registry::RegistryError> {
        Ok(self.registry.load(m)?.manifest().thresholds.block)
    }

    async fn step(
        &self,
        decided: &mut HashMap<String, Verdict>,
        promoted: &mut Option<Promoted>,
    ) -> Result<(), registry::RegistryError> {
        let now = service_runtime::clock::now_ms();
        let Some(production) = self.registry.resolve(&self.production_alias)? else {
            return Ok(());
        };
        // The served version's matured scores: the regression check and the gauge.
        let (probs, labels) = lock(&self.ledger).matured(&production.version);
        // The regression check of a promotion made here.
        if let Some(p) = promoted.as_ref().filter(|p| p.model == production) {
            match gate::regressed(&probs, &labels, p.baseline_ap, &self.settings.gate) {
                Some(Err(reason)) => {
                    tracing::warn!(version = %production.version, %reason, "rolling back");
                    for alias in self.settings.promote_to.iter().rev() {
                        let to = self.registry.rollback(alias, &reason, now)?;
                        tracing::warn!(alias, to = %to.version, "alias rolled back");
                    }
                    self.metrics.rollbacks.inc();
                    *promoted = None;
                    return Ok(());
                }
                Some(Ok(text)) => tracing::debug!(%text, "promoted version holds"),
                None => {}
            }
        }
        if let Some(ap) = (labels.len() >= self.settings.gate.min_labelled)
            .then(|| model::metrics::average_precision(&probs, &labels))
            .flatten()
        {
            self.metrics.matured_ap.set(ap);
        }
        let Some(candidate) = self.registry.resolve(&self.settings.candidate_alias)? else {
            return Ok(());
        };
        let key = format!("{}/{}", candidate.model_id, candidate.version);
        if candidate == production || decided.contains_key(&key) {
            return Ok(());
        }
        let rows = lock(&self.ledger).paired(&production.version, &candidate.version);
        self.metrics.paired.set(rows.len() as i64);
        if rows.len() < self.settings.gate.min_labelled {
            return Ok(());
        }
        let (pb, cb) = (
            self.block_threshold(&production)?,
            self.block_threshold(&candidate)?,
        );
        let cfg = self.settings.gate;
        let seed = now.unsigned_abs();
        let comparison =
            tokio::task::spawn_blocking(move || gate::compare(&rows, pb, cb, &cfg, seed))
                .await
                .map_err(|e| registry::RegistryError::Io {
                    path: "gate task".into(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        match &comparison.verdict {
            Verdict::Wait(why) => {
                tracing::info!(version = %candidate.version, %why, "gate waiting");
                return Ok(());
            }
            Verdict::Promote(reason) => {
                for alias in &self.settings.promote_to {
                    self.registry.set_alias(alias, &candidate, reason, now)?;
                    tracing::info!(alias, version = %candidate.version, %reason, "candidate promoted");
                }
                self.metrics.decisions.with_label_values(&["promote"]).inc();
                if self.settings.promote_to.contains(&self.production_alias) {
                    *promoted = Some(Promoted {
                        model: candidate.clone(),
                        // Never NaN: a NaN baseline would make every regression check pass.
                        baseline_ap: comparison
                            .candidate
                            .map(|c| c.average_precision)
                            .expect("gate::compare promotes only with the candidate's figures"),
                    });
                }
            }
            Verdict::Reject(reason) => {
                self.registry
                    .remove_alias(&self.settings.candidate_alias, reason, now)?;
                self.metrics.decisions.with_label_values(&["reject"]).inc();
                tracing::warn!(version = %candidate.version, %reason, "candidate rejected");
            }
        }
        decided.insert(key, comparison.verdict);
        Ok(())
    }
}

fn lock(l: &SharedLedger) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(id: &str, version: &str, p: f64, shadow: bool) -> ScoreEvent {
        ScoreEvent {
            transaction_id: id.into(),
            model_version: version.into(),
            probability: p,
            shadow,
            ..Default::default()
        }
    }

    #[test]
    fn the_ledger_pairs_served_and_shadow_scores_with_labels() {
        let mut l = Ledger::new(3);
        l.score(&score("a", "v1", 0.1, false));
        l.score(&score("a", "v2", 0.2, true));
        l.label(&Label {
            transaction_id: "a".into(),
            is_fraud: true,
            ..Default::default()
        });
        l.score(&score("b", "v1", 0.3, false)); // no shadow, no label
        let mut degraded = score("b", "v2", 0.9, true);
        degraded.degraded = true;
        l.score(&degraded);
        assert_eq!(
            l.paired("v1", "v2"),
            vec![Paired {
                production: 0.1,
                candidate: 0.2,
                fraud: true
            }]
        );
        assert!(l.paired("v1", "v3").is_empty());
        assert_eq!(l.matured("v1"), (vec![0.1], vec![true]));
        // Another slot serving v2 publishes a served score too: both are kept.
        l.score(&score("a", "v2", 0.25, false));
        assert_eq!(l.paired("v1", "v2").len(), 1);
        assert_eq!(l.matured("v2"), (vec![0.25], vec![true]));
        // Bounded: the oldest transaction is forgotten first.
        l.score(&score("c", "v1", 0.5, false));
        l.score(&score("d", "v1", 0.5, false));
        assert_eq!(l.len(), 3);
        assert!(l.paired("v1", "v2").is_empty(), "a was forgotten");
    }
}
