//! The scoring core: validate → vector (or degraded fallback) → model → decision, with no
//! transport in it.
//!
//! [`Scorer`] takes the contract's messages (prost types, not tonic) and answers a
//! `ScoreResponse` or a [`ScoringError`]; it never chooses a status code. The gRPC adapter
//! ([`crate::grpc`]) holds the one mapping from [`ScoringError`] to a code, for a failed call
//! and for an item's entry in a `ScoreBatch` answer alike, so another transport (a KServe V2
//! endpoint) reuses the same rules.

use crate::metrics::Metrics;
use crate::publish::ScoreSink;
use crate::slot::{Active, ModelSlot};
use crate::source::FeatureSource;
use domain::ValidationError;
use domain::convert::transaction_from_proto;
use model::{Decision, ReasonPolicy, Scored};
use proto::v1::{Reason, ScoreEvent, ScoreResponse, ScoreSource, Transaction};
use std::sync::Arc;

/// Why a transaction (or a batch) was not scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    /// A required field of the request is absent.
    #[error("invalid field `{0}`: is required")]
    Missing(&'static str),
    /// The transaction is not valid (names the field).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// More transactions in one batch than [`MAX_BATCH`].
    #[error("transactions: at most {max} per batch")]
    TooLarge { max: usize },
    /// No model has been loaded from the alias yet.
    #[error("no model loaded yet for the configured alias")]
    NoModel,
    /// The model refused the vector (another schema, another arity).
    #[error(transparent)]
    Refused(#[from] model::ModelError),
    /// The blocking task computing reasons did not finish (panicked or cancelled).
    #[error("explanation task failed: {0}")]
    Explanation(#[source] tokio::task::JoinError),
    /// An item of a batch failed for a reason that is not its own, so the whole call fails.
    #[error("transactions[{index}]: {error}")]
    InBatch {
        index: usize,
        error: Box<ScoringError>,
    },
}

impl ScoringError {
    /// Whether the failure is the item's own (an invalid transaction, a vector the model
    /// refuses): a `ScoreBatch` reports it by index and scores the others. Any other failure
    /// fails the whole call.
    pub fn is_item_error(&self) -> bool {
        match self {
            ScoringError::Invalid(_) | ScoringError::Refused(_) => true,
            ScoringError::Missing(_)
            | ScoringError::TooLarge { .. }
            | ScoringError::NoModel
            | ScoringError::Explanation(_)
            | ScoringError::InBatch { .. } => false,
        }
    }
}

/// Most transactions in one `ScoreBatch`.
pub const MAX_BATCH: usize = 1_000;

/// Items of one batch scored at the same time.
const BATCH_CONCURRENCY: usize = 32;

/// A batch's answer: the scores in request order, and the items refused for their own reason
/// with their index in the request.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub scores: Vec<ScoreResponse>,
    pub errors: Vec<(usize, ScoringError)>,
}

/// The model's score, and its reasons when `reasons` asks for them for the decision.
async fn run_model(
    active: &Arc<Active>,
    schema: String,
    values: Vec<f64>,
    reasons: ReasonPolicy,
) -> Result<Scored, ScoringError> {
    let quick = active.model.score(&schema, &values, ReasonPolicy::NONE)?;
    if reasons.reasons_for(quick.decision) == 0 {
        return Ok(quick);
    }
    // Reasons (tree SHAP: ~1.7 ms of CPU with 200 trees) are computed on the blocking pool, so
    // explained requests do not hold an async worker the others wait on. The score is computed
    // again there (microseconds) rather than split from the reasons.
    let active = active.clone();
    let explained =
        tokio::task::spawn_blocking(move || active.model.score(&schema, &values, reasons))
            .await
            .map_err(ScoringError::Explanation)?;
    Ok(explained?)
}

/// The `shadow` model's score of the vector `served` was computed from, as an event flagged
/// `shadow` (a copy of `served` with the shadow's version, probability and decision, no
/// reasons). `None`, counted, when the shadow refuses the vector (another feature schema).
/// Scoring costs microseconds and takes no reasons, so it runs inline.
pub(crate) fn shadow_event(
    shadow: &Active,
    served: &ScoreEvent,
    values: &[f64],
    metrics: &Metrics,
    source: &str,
) -> Option<ScoreEvent> {
    match shadow
        .model
        .score(&served.schema_hash, values, ReasonPolicy::NONE)
    {
        Ok(s) => {
            metrics.shadow_scores.with_label_values(&[source]).inc();
            Some(ScoreEvent {
                model_id: shadow.reference.model_id.clone(),
                model_version: shadow.reference.version.clone(),
                probability: s.probability,
                decision: decision_to_proto(s.decision) as i32,
                reasons: Vec::new(),
                shadow: true,
                ..served.clone()
            })
        }
        Err(error) => {
            metrics.shadow_refused.inc();
            tracing::debug!(%error, version = %shadow.reference.version, "shadow refused the vector");
            None
        }
    }
}

/// Maps a domain decision to the wire enum (the only place this mapping exists).
pub fn decision_to_proto(d: Decision) -> proto::v1::Decision {
    match d {
        Decision::Approve => proto::v1::Decision::Approve,
        Decision::Review => proto::v1::Decision::Review,
        Decision::Block => proto::v1::Decision::Block,
    }
}

pub(crate) fn reasons_to_proto(s: &Scored) -> Vec<Reason> {
    s.reasons
        .iter()
        .map(|(f, c)| Reason {
            feature: f.clone(),
            contribution: *c,
        })
        .collect()
}

/// Scores transactions with the live model and vectors from a [`FeatureSource`], and
/// records each score in a [`ScoreSink`] (the scores topic, in the service).
pub struct Scorer<S> {
    source: Arc<S>,
    slot: ModelSlot,
    metrics: Metrics,
    reasons: ReasonPolicy,
    /// `None`: scores are not recorded, and no event is built.
    sink: Option<Arc<dyn ScoreSink>>,
    /// A model scored beside the served one when scores are recorded (its scores are only
    /// recorded, flagged `shadow`).
    shadow: Option<ModelSlot>,
}

impl<S> std::fmt::Debug for Scorer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer").finish_non_exhaustive()
    }
}

impl<S: FeatureSource> Scorer<S> {
    pub fn new(source: Arc<S>, slot: ModelSlot, metrics: Metrics, reasons: ReasonPolicy) -> Self {
        Scorer {
            source,
            slot,
            metrics,
            reasons,
            sink: None,
            shadow: None,
        }
    }

    /// Scores every recorded request with the model in `shadow` too.
    pub fn with_shadow(mut self, shadow: ModelSlot) -> Self {
        self.shadow = Some(shadow);
        self
    }

    /// Records every score in `sink` (by default nothing is recorded).
    pub fn with_sink(mut self, sink: Arc<dyn ScoreSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Scores one wire transaction: validate → vector (or degraded fallback) → model. With
    /// `explain`, reasons come whatever the decision; otherwise per the service's policy.
    pub async fn score(
        &self,
        wire: &Transaction,
        explain: bool,
    ) -> Result<ScoreResponse, ScoringError> {
        let reasons = if explain {
            ReasonPolicy::always(self.reasons.max)
        } else {
            self.reasons
        };
        let timer = self.metrics.score_seconds.start_timer();
        let txn = transaction_from_proto(wire)?;
        let active = self.slot.current().ok_or(ScoringError::NoModel)?;
        let fetch = self.metrics.feature_fetch_seconds.start_timer();
        let fetched = self.source.vector(wire).await;
        fetch.observe_duration();
        let (schema, values, degraded) = match fetched {
            Ok(v) => (v.schema_hash, v.values, false),
            Err(error) => {
                // Degraded mode: request-time features over an empty history, computed by the
                // same `features` crate; flagged in the answer and counted. (While the breaker
                // is open, it logged once when it opened.)
                if !matches!(error, crate::source::SourceError::BreakerOpen) {
                    tracing::warn!(%error, transaction_id = %txn.transaction_id, "feature-service unavailable; degraded scoring");
                }
                self.metrics.degraded.inc();
                let values = features::cold_vector(&txn);
                (features::schema_hash().to_owned(), values, true)
            }
        };
        let model = self.metrics.model_seconds.start_timer();
        // Only a recorded score needs the schema (and a shadow the values) after the model.
        let schema_hash = self.sink.as_ref().map(|_| schema.clone());
        let shadow = match (&self.sink, &self.shadow) {
            (Some(_), Some(slot)) => slot.shadow_of(&active).map(|s| (s, values.clone())),
            _ => None,
        };
        let scored = run_model(&active, schema, values, reasons).await;
        model.observe_duration();
        let scored = scored?;
        let decision = decision_to_proto(scored.decision);
        self.metrics
            .scores
            .with_label_values(&[decision.as_str_name()])
            .inc();
        let reasons = reasons_to_proto(&scored);
        if let Some(sink) = &self.sink {
            let event = ScoreEvent {
                transaction_id: txn.transaction_id.clone(),
                user_id: txn.user_id.clone(),
                model_id: active.reference.model_id.clone(),
                model_version: active.reference.version.clone(),
                probability: scored.probability,
                decision: decision as i32,
                reasons: reasons.clone(),
                event_time: wire.event_time,
                scored_at: Some(proto::time::from_unix_ms(service_runtime::clock::now_ms())),
                schema_hash: schema_hash.unwrap_or_default(),
                shadow: false,
                source: ScoreSource::Request as i32,
                degraded,
            };
            let shadowed = shadow.and_then(|(model, values)| {
                shadow_event(&model, &event, &values, &self.metrics, "request")
            });
            sink.record(event);
            if let Some(e) = shadowed {
                sink.record(e);
            }
        }
        timer.observe_duration();
        Ok(ScoreResponse {
            transaction_id: txn.transaction_id,
            probability: scored.probability,
            decision: decision as i32,
            model_id: active.reference.model_id.clone(),
            model_version: active.reference.version.clone(),
            reasons,
            degraded,
        })
    }

    /// Scores a batch of at most [`MAX_BATCH`] concurrently (each item waits on its own
    /// feature fetch), in order, at most `BATCH_CONCURRENCY` at a time. An item refused for
    /// its own reason ([`ScoringError::is_item_error`]) is reported by index and the others
    /// are scored; any other failure fails the call, naming the item
    /// ([`ScoringError::InBatch`]).
    pub async fn score_batch(&self, txns: &[Transaction]) -> Result<BatchOutcome, ScoringError> {
        if txns.len() > MAX_BATCH {
            return Err(ScoringError::TooLarge { max: MAX_BATCH });
        }
        use futures::StreamExt as _;
        let items: Vec<_> = txns.iter().map(|t| self.score(t, false)).collect();
        let results: Vec<Result<ScoreResponse, ScoringError>> = futures::stream::iter(items)
            .buffered(BATCH_CONCURRENCY)
            .collect()
            .await;
        let mut outcome = BatchOutcome::default();
        for (index, result) in results.into_iter().enumerate() {
            match result {
                Ok(score) => outcome.scores.push(score),
                Err(error) if error.is_item_error() => outcome.errors.push((index, error)),
                Err(error) => {
                    return Err(ScoringError::InBatch {
                        index,
                        error: Box::new(error),
                    });
                }
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::slot::Active;
    use crate::source::SourceError;
    use model::linear::LogisticModel;
    use model::manifest::Manifest;
    use proto::v1::FeatureVector;

    /// A feature source answering a fixed vector, or failing.
    pub(crate) struct Fixed(pub(crate) Option<Vec<f64>>);

    #[tonic::async_trait]
    impl FeatureSource for Fixed {
        async fn vector(&self, t: &Transaction) -> Result<FeatureVector, SourceError> {
            match &self.0 {
                Some(values) => Ok(FeatureVector {
                    transaction_id: t.transaction_id.clone(),
                    schema_hash: features::schema_hash().into(),
                    values: values.clone(),
                    ..Default::default()
                }),
                None => Err(SourceError::Status(tonic::Status::unavailable("down"))),
            }
        }
    }

    pub(crate) fn scorer(source: Fixed, dir: &std::path::Path) -> Scorer<Fixed> {
        let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
        let reasons = ReasonPolicy {
            max: 1,
            from: Decision::Review,
        };
        let active = model_at(dir, "v7", -5.0, features::schema_hash());
        Scorer::new(Arc::new(source), ModelSlot::fixed(active), metrics, reasons)
    }

    /// A logistic model over the feature schema `schema` in which only the first feature
    /// (amount_log) matters: weight 1 on the raw value, then `intercept`.
    fn model_at(dir: &std::path::Path, version: &str, intercept: f64, schema: &str) -> Active {
        let n = features::FEATURES.len();
        let manifest = Manifest {
            model_id: "m".into(),
            version: version.into(),
            feature_set_version: features::FEATURE_SET_VERSION.into(),
            schema_hash: schema.into(),
            feature_names: features::FEATURES
                .iter()
                .map(|f| f.name.to_owned())
                .collect(),
            thresholds: model::Thresholds {
                review: 0.5,
                block: 0.9,
            },
            ..Manifest::default()
        };
        let mut weights = vec![0.0; n];
        weights[0] = 1.0;
        let m = LogisticModel {
            means: vec![0.0; n],
            scales: vec![1.0; n],
            weights,
            intercept,
        };
        model::write_artifact(dir, manifest, model::ModelFile::Logistic(&m)).unwrap();
        Active {
            reference: registry::ModelRef {
                model_id: "m".into(),
                version: version.into(),
            },
            model: model::LoadedModel::load(dir).unwrap(),
        }
    }

    pub(crate) fn txn(currency: &str) -> Transaction {
        Transaction {
            transaction_id: "t".into(),
            user_id: "u".into(),
            amount: Some(proto::v1::Money {
                minor_units: 100_000,
                currency: currency.into(),
            }),
            merchant_id: "m".into(),
            merchant_category: "5411".into(),
            channel: proto::v1::Channel::Online as i32,
            country: "FR".into(),
            event_time: Some(proto::time::from_unix_ms(1_763_900_000_000)),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn scores_the_source_vector_with_the_live_model() {
        let dir = tempfile::tempdir().unwrap();
        let mut values = vec![0.0; features::FEATURES.len()];
        values[0] = 10.0;
        let s = scorer(Fixed(Some(values)), dir.path());
        let r = s.score(&txn("EUR"), false).await.unwrap();
        assert!((r.probability - model::linear::sigmoid(5.0)).abs() < 1e-12);
        assert_eq!(r.decision, proto::v1::Decision::Block as i32);
        assert_eq!((r.model_version.as_str(), r.degraded), ("v7", false));
        assert_eq!(r.reasons[0].feature, "amount_log");
    }

    /// Collects what the core records.
    #[derive(Default)]
    struct Collect(std::sync::Mutex<Vec<ScoreEvent>>);

    impl ScoreSink for Collect {
        fn record(&self, event: ScoreEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    /// With a shadow loaded, the served model answers and both scores are recorded: the
    /// shadow's flagged, with its own version and probability and no reasons. A shadow that
    /// refuses the vector is counted and changes nothing else; without a sink no shadow score
    /// is computed at all.
    #[tokio::test]
    async fn a_shadow_is_scored_beside_the_served_model_and_only_recorded() {
        let (dir, shadow_dir, other_dir) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let mut values = vec![0.0; features::FEATURES.len()];
        values[0] = 10.0;
        let sink = Arc::new(Collect::default());
        let shadow = ModelSlot::fixed(model_at(
            shadow_dir.path(),
            "v8",
            -3.0,
            features::schema_hash(),
        ));
        let s = scorer(Fixed(Some(values.clone())), dir.path())
            .with_shadow(shadow.clone())
            .with_sink(sink.clone());
        let r = s.score(&txn("EUR"), false).await.unwrap();
        assert_eq!(r.model_version, "v7", "the served model answers");
        assert!((r.probability - model::linear::sigmoid(5.0)).abs() < 1e-12);
        {
            let events = sink.0.lock().unwrap();
            assert_eq!(events.len(), 2);
            let (served, shadowed) = (&events[0], &events[1]);
            assert_eq!(
                (served.model_version.as_str(), served.shadow),
                ("v7", false)
            );
            assert_eq!(
                (shadowed.model_version.as_str(), shadowed.shadow),
                ("v8", true)
            );
            assert!((shadowed.probability - model::linear::sigmoid(7.0)).abs() < 1e-12);
            assert_eq!(shadowed.transaction_id, served.transaction_id);
            assert_eq!(shadowed.source, ScoreSource::Request as i32);
            assert!(shadowed.reasons.is_empty() && !served.reasons.is_empty());
        }
        assert_eq!(
            s.metrics
                .shadow_scores
                .with_label_values(&["request"])
                .get(),
            1
        );

        // A shadow of another feature schema: refused and counted, the answer unchanged.
        let other = ModelSlot::fixed(model_at(other_dir.path(), "v9", -3.0, "another-schema"));
        let sink2 = Arc::new(Collect::default());
        let s2 = scorer(Fixed(Some(values.clone())), dir.path())
            .with_shadow(other)
            .with_sink(sink2.clone());
        let r2 = s2.score(&txn("EUR"), false).await.unwrap();
        assert_eq!(r2.probability, r.probability);
        assert_eq!(sink2.0.lock().unwrap().len(), 1);
        assert_eq!(s2.metrics.shadow_refused.get(), 1);

        // No sink: nothing recorded, so the shadow is not scored.
        let s3 = scorer(Fixed(Some(values)), dir.path()).with_shadow(shadow);
        s3.score(&txn("EUR"), false).await.unwrap();
        assert_eq!(
            s3.metrics
                .shadow_scores
                .with_label_values(&["request"])
                .get(),
            0
        );
    }

    /// Every synchronous score is recorded as the answer says — source REQUEST, the
    /// degraded flag, the vector's schema — and a refused transaction records nothing.
    #[tokio::test]
    async fn each_score_is_recorded_as_a_request_score_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut values = vec![0.0; features::FEATURES.len()];
        values[0] = 10.0;
        let sink = Arc::new(Collect::default());
        let s = scorer(Fixed(Some(values)), dir.path()).with_sink(sink.clone());
        let r = s.score(&txn("EUR"), false).await.unwrap();
        assert!(s.score(&txn("EURO"), false).await.is_err());
        let dir2 = tempfile::tempdir().unwrap();
        let down = scorer(Fixed(None), dir2.path()).with_sink(sink.clone());
        let d = down.score(&txn("EUR"), false).await.unwrap();
        let events = sink.0.lock().unwrap();
        assert_eq!(events.len(), 2, "the refused transaction records nothing");
        let e = &events[0];
        assert_eq!((e.transaction_id.as_str(), e.user_id.as_str()), ("t", "u"));
        assert_eq!(
            (e.model_version.as_str(), e.probability),
            ("v7", r.probability)
        );
        assert_eq!(e.decision, r.decision);
        assert_eq!(e.source, ScoreSource::Request as i32);
        assert_eq!(e.schema_hash, features::schema_hash());
        assert!(!e.degraded && !e.shadow && e.event_time.is_some() && e.scored_at.is_some());
        assert_eq!(e.reasons.len(), r.reasons.len());
        assert!(d.degraded && events[1].degraded);
    }

    #[tokio::test]
    async fn approvals_carry_reasons_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut values = vec![0.0; features::FEATURES.len()];
        values[0] = 1.0; // sigmoid(1 - 5) ≈ 0.018: APPROVE
        let s = scorer(Fixed(Some(values)), dir.path());
        let quiet = s.score(&txn("EUR"), false).await.unwrap();
        assert_eq!(quiet.decision, proto::v1::Decision::Approve as i32);
        assert!(quiet.reasons.is_empty(), "{:?}", quiet.reasons);
        let explained = s.score(&txn("EUR"), true).await.unwrap();
        assert_eq!(explained.probability, quiet.probability);
        assert_eq!(explained.reasons.len(), 1);
        assert_eq!(explained.reasons[0].feature, "amount_log");
    }

    #[tokio::test]
    async fn falls_back_to_request_time_features_when_the_source_fails() {
        let dir = tempfile::tempdir().unwrap();
        let s = scorer(Fixed(None), dir.path());
        let r = s.score(&txn("EUR"), false).await.unwrap();
        assert!(r.degraded);
        // amount_log of 1000 EUR from the features crate, not a default value.
        assert!((r.probability - model::linear::sigmoid(1001f64.ln() - 5.0)).abs() < 1e-12);
    }

    #[tokio::test]
    async fn invalid_transactions_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let s = scorer(Fixed(None), dir.path());
        let e = s.score(&txn("eur"), false).await.unwrap_err();
        assert!(matches!(e, ScoringError::Invalid(_)), "{e:?}");
        assert!(e.is_item_error());
        assert!(e.to_string().contains("amount.currency"), "{e}");
    }

    #[tokio::test]
    async fn each_score_times_its_feature_fetch_and_its_model_once() {
        let counts = |s: &Scorer<Fixed>| {
            (
                s.metrics.feature_fetch_seconds.get_sample_count(),
                s.metrics.model_seconds.get_sample_count(),
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let mut values = vec![0.0; features::FEATURES.len()];
        values[0] = 1.0; // APPROVE: no reasons unless asked
        let s = scorer(Fixed(Some(values)), dir.path());
        assert_eq!(counts(&s), (0, 0));
        s.score(&txn("EUR"), false).await.unwrap(); // the score inline
        assert_eq!(counts(&s), (1, 1));
        let explained = s.score(&txn("EUR"), true).await.unwrap(); // reasons on the blocking pool
        assert_eq!(explained.reasons.len(), 1);
        assert_eq!(counts(&s), (2, 2));

        // A failed fetch is timed too (then the degraded vector is scored).
        let dir = tempfile::tempdir().unwrap();
        let s = scorer(Fixed(None), dir.path());
        assert!(s.score(&txn("EUR"), false).await.unwrap().degraded);
        assert_eq!(counts(&s), (1, 1));
        // A transaction refused before the fetch times neither.
        s.score(&txn("eur"), false).await.unwrap_err();
        assert_eq!(counts(&s), (1, 1));
    }
}
