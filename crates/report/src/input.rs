//! Plain-data input of a report.
//!
//! Everything is owned, already computed and free of Vigil types: the caller evaluates the
//! models and passes numbers and strings; this crate only formats and draws them. Times are
//! strings so the caller chooses the format (RFC 3339 recommended).

use std::collections::BTreeMap;

use crate::error::ReportError;

/// Everything a training report shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportInput {
    /// Report heading, e.g. `"Vigil fraud model — training run 2026-11-23"`.
    pub title: String,
    /// Registry id of the candidate model.
    pub model_id: String,
    /// Version of the candidate model.
    pub version: String,
    /// When the run finished (RFC 3339 recommended).
    pub created_at: String,
    /// Where the training data came from and how it was split.
    pub data: DataSummary,
    /// Metric columns. `models[0]` is the candidate; the Δ column compares it with the last
    /// column whose role is [`ModelRole::Production`], if there is one.
    pub models: Vec<ModelColumn>,
    /// ROC curves, x = false-positive rate, y = true-positive rate, both in `[0, 1]`.
    pub roc: Vec<Curve>,
    /// Precision–recall curves, x = recall, y = precision, both in `[0, 1]`.
    pub pr: Vec<Curve>,
    /// Fraud rate of the evaluation set, drawn as the PR no-skill line. When `None`, the
    /// split named `test` in [`DataSummary::splits`] is used if it has rows.
    pub prevalence: Option<f64>,
    /// Reliability diagrams, e.g. `"raw"` and `"calibrated (isotonic)"`.
    pub calibration: Vec<CalibrationSeries>,
    /// Score histogram by class on the evaluation set.
    pub score_histogram: Option<ScoreHistogram>,
    /// Feature importances, any order and scale; the plot sorts them.
    pub feature_importance: Vec<FeatureImportance>,
    /// What the importance values are, e.g. `"total gain"` or `"|standardised coefficient|"`.
    pub importance_kind: String,
    /// Decision thresholds with their policy.
    pub thresholds: Vec<ThresholdPolicy>,
    /// Training hyper-parameters and other run settings, rendered as `key = value`.
    pub params: BTreeMap<String, String>,
    /// Hand-written parts of the model card.
    pub card: ModelCard,
    /// Problems the reader must see: leakage flags, failed promotion gates, skipped steps.
    /// Shown at the top of `report.md` and in the model card when non-empty.
    pub warnings: Vec<String>,
}

/// Data provenance and splits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataSummary {
    /// Where rows came from, e.g. `"lake: s3://vigil-lake/transactions (datagen seed 42)"`.
    pub source: String,
    /// Start of the whole data window.
    pub window_start: String,
    /// End of the whole data window.
    pub window_end: String,
    /// Time-ordered splits, typically `train`, `validation`, `test`.
    pub splits: Vec<SplitSummary>,
    /// How long labels (chargebacks) take to mature and how that was handled,
    /// e.g. `"30 days; rows younger than 30 days before window_end excluded"`.
    pub label_delay: String,
}

/// One split of the data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SplitSummary {
    /// `train`, `validation`, `test`, …
    pub name: String,
    /// First event time in the split.
    pub start: String,
    /// Last event time in the split.
    pub end: String,
    /// Number of rows.
    pub rows: u64,
    /// Number of rows labelled fraud.
    pub fraud: u64,
}

impl SplitSummary {
    /// Fraud rate `fraud / rows`, `None` when the split is empty.
    pub fn fraud_rate(&self) -> Option<f64> {
        (self.rows > 0).then(|| self.fraud as f64 / self.rows as f64)
    }
}

/// What a metric column is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ModelRole {
    /// The model trained in this run.
    #[default]
    Candidate,
    /// A reference model trained on the same data (e.g. logistic regression).
    Baseline,
    /// The model currently serving traffic, evaluated on the same test set; the Δ column
    /// compares the candidate with it.
    Production,
}

/// Metrics of one model on the evaluation set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelColumn {
    /// Column header, e.g. `"candidate (gbdt)"`, `"baseline (logistic)"`, `"production v3"`.
    pub name: String,
    /// What this column is.
    pub role: ModelRole,
    /// Metric name → value, e.g. `roc_auc`, `average_precision`, `recall_at_1pct_fpr`,
    /// `brier`, `log_loss`, `ece`. Whether higher or lower is better is derived from the
    /// name, see [`crate::metric_direction`].
    pub metrics: BTreeMap<String, f64>,
}

/// A labelled curve (ROC or PR). Non-finite points are dropped when drawing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curve {
    /// Legend text, e.g. `"candidate (AUC 0.9712)"`.
    pub label: String,
    /// `(x, y)` points in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CalibrationPoint {
    /// Mean predicted probability of the rows in the bin.
    pub mean_predicted: f64,
    /// Observed fraud rate of the rows in the bin.
    pub fraction_positive: f64,
    /// Rows in the bin (drawn as the marker size).
    pub count: u64,
}

/// A reliability diagram for one model or calibration stage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CalibrationSeries {
    /// Legend text, e.g. `"before calibration"`.
    pub label: String,
    /// Bins in increasing `mean_predicted` order.
    pub points: Vec<CalibrationPoint>,
}

/// Pre-binned score counts by class.
///
/// Counts rather than raw scores keep the input small for large test sets; build it from
/// raw scores with [`ScoreHistogram::from_scores`]. The plot shows, per class, the
/// fraction of that class's rows in each bin on a log y-axis, so the rare fraud class is
/// as visible as the legitimate one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreHistogram {
    /// `n + 1` increasing bin edges.
    pub bin_edges: Vec<f64>,
    /// `n` fraud counts.
    pub fraud: Vec<u64>,
    /// `n` legitimate counts.
    pub legit: Vec<u64>,
}

impl ScoreHistogram {
    /// Bins `(score, is_fraud)` pairs into `bins` equal-width bins over `[0, 1]`. Scores
    /// outside `[0, 1]` go to the first or last bin; NaN scores are ignored.
    pub fn from_scores(scores: impl IntoIterator<Item = (f64, bool)>, bins: usize) -> Self {
        let bins = bins.max(1);
        let mut fraud = vec![0; bins];
        let mut legit = vec![0; bins];
        for (score, is_fraud) in scores {
            if score.is_nan() {
                continue;
            }
            // Truncation is the binning; the clamp keeps 1.0 and out-of-range scores inside.
            let bin = ((score.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
            if is_fraud {
                fraud[bin] += 1;
            } else {
                legit[bin] += 1;
            }
        }
        let bin_edges = (0..=bins).map(|i| i as f64 / bins as f64).collect();
        Self {
            bin_edges,
            fraud,
            legit,
        }
    }
}

/// Importance of one feature.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureImportance {
    /// Feature name.
    pub feature: String,
    /// Importance; negative values (signed coefficients) are drawn to the left of zero.
    pub importance: f64,
}

/// A decision threshold and the policy attached to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThresholdPolicy {
    /// Decision, e.g. `"review"`, `"decline"`.
    pub decision: String,
    /// Score at or above which the decision applies.
    pub threshold: f64,
    /// How the threshold was chosen and what it means, e.g. `"1% FPR on validation"`.
    pub policy: String,
}

/// Hand-written parts of the model card; the rest (data, metrics, thresholds) is generated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelCard {
    /// Who owns the model and answers questions about it.
    pub owner: String,
    /// Model type in words, e.g. `"gradient-boosted trees, isotonic calibration"`.
    pub model_type: String,
    /// What the model is for.
    pub intended_use: String,
    /// Uses it must not be put to.
    pub out_of_scope_uses: Vec<String>,
    /// Known limitations.
    pub limitations: Vec<String>,
    /// Ethical and fairness considerations (protected attributes, proxies, review process).
    pub ethical_considerations: String,
}

impl ReportInput {
    /// Checks what would otherwise make a plot or table wrong rather than merely empty.
    pub(crate) fn validate(&self) -> Result<(), ReportError> {
        if let Some(h) = &self.score_histogram {
            let n = h.fraud.len();
            if n == 0 || h.legit.len() != n || h.bin_edges.len() != n + 1 {
                return Err(ReportError::InvalidInput(format!(
                    "score histogram needs n > 0 fraud counts, n legit counts and n + 1 bin \
                     edges; got {} fraud, {} legit, {} edges",
                    n,
                    h.legit.len(),
                    h.bin_edges.len()
                )));
            }
            if h.bin_edges.iter().any(|e| !e.is_finite())
                || h.bin_edges.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(ReportError::InvalidInput(
                    "score histogram bin edges must be finite and strictly increasing".into(),
                ));
            }
        }
        if let Some(p) = self.prevalence
            && !(0.0..=1.0).contains(&p)
        {
            return Err(ReportError::InvalidInput(format!(
                "prevalence {p} is not in [0, 1]"
            )));
        }
        Ok(())
    }

    /// The PR baseline: [`Self::prevalence`] or the fraud rate of the `test` split.
    pub(crate) fn pr_baseline(&self) -> Option<f64> {
        self.prevalence.or_else(|| {
            self.data
                .splits
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case("test"))
                .and_then(SplitSummary::fraud_rate)
        })
    }

    /// Index of the column the Δ compares against: the last production column, unless it
    /// is the candidate itself.
    pub(crate) fn delta_reference(&self) -> Option<usize> {
        self.models
            .iter()
            .rposition(|m| m.role == ModelRole::Production)
            .filter(|&i| i > 0)
    }
}
