//! The synchronous scoring API.

use crate::metrics::Metrics;
use crate::slot::ModelSlot;
use crate::source::FeatureSource;
use domain::convert::transaction_from_proto;
use model::{Decision, ReasonPolicy, Scored};
use proto::v1::inference_service_server::InferenceService;
use proto::v1::{
    Reason, ScoreBatchRequest, ScoreBatchResponse, ScoreError, ScoreRequest, ScoreResponse,
    Transaction,
};
use std::sync::Arc;
use tonic::{Code, Request, Response, Status};

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

/// Scores transactions with the live model and vectors from a [`FeatureSource`].
pub struct Scorer<S> {
    source: Arc<S>,
    slot: ModelSlot,
    metrics: Metrics,
    reasons: ReasonPolicy,
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
        }
    }

    /// Scores one wire transaction: validate → vector (or degraded fallback) → model. With
    /// `explain`, reasons come whatever the decision; otherwise per the service's policy.
    pub async fn score(&self, wire: &Transaction, explain: bool) -> Result<ScoreResponse, Status> {
        let reasons = if explain {
            ReasonPolicy::always(self.reasons.max)
        } else {
            self.reasons
        };
        let timer = self.metrics.score_seconds.start_timer();
        let txn =
            transaction_from_proto(wire).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let active = self
            .slot
            .current()
            .ok_or_else(|| Status::unavailable("no model loaded yet for the configured alias"))?;
        let (schema, values, degraded) = match self.source.vector(wire).await {
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
        let refused = |e: model::ModelError| Status::failed_precondition(e.to_string());
        let quick = active
            .model
            .score(&schema, &values, ReasonPolicy::NONE)
            .map_err(refused)?;
        let scored = if reasons.reasons_for(quick.decision) == 0 {
            quick
        } else {
            // Reasons (tree SHAP: ~1.7 ms of CPU with 200 trees) are computed on the blocking
            // pool, so explained requests do not hold an async worker the others wait on. The
            // score is computed again there (microseconds) rather than split from the reasons.
            let active = active.clone();
            tokio::task::spawn_blocking(move || active.model.score(&schema, &values, reasons))
                .await
                .map_err(|e| Status::internal(format!("explanation task failed: {e}")))?
                .map_err(refused)?
        };
        let decision = decision_to_proto(scored.decision);
        self.metrics
            .scores
            .with_label_values(&[decision.as_str_name()])
            .inc();
        timer.observe_duration();
        Ok(ScoreResponse {
            transaction_id: txn.transaction_id,
            probability: scored.probability,
            decision: decision as i32,
            model_id: active.reference.model_id.clone(),
            model_version: active.reference.version.clone(),
            reasons: reasons_to_proto(&scored),
            degraded,
        })
    }
}

/// Items of one `ScoreBatch` scored at the same time.
const BATCH_CONCURRENCY: usize = 32;

#[tonic::async_trait]
impl<S: FeatureSource> InferenceService for Scorer<S> {
    async fn score(
        &self,
        request: Request<ScoreRequest>,
    ) -> Result<Response<ScoreResponse>, Status> {
        let request = request.into_inner();
        let wire = request
            .transaction
            .ok_or_else(|| Status::invalid_argument("invalid field `transaction`: is required"))?;
        Scorer::score(self, &wire, request.explain)
            .await
            .map(Response::new)
    }

    async fn score_batch(
        &self,
        request: Request<ScoreBatchRequest>,
    ) -> Result<Response<ScoreBatchResponse>, Status> {
        let txns = request.into_inner().transactions;
        if txns.len() > 1_000 {
            return Err(Status::invalid_argument(
                "transactions: at most 1000 per batch",
            ));
        }
        // Concurrently (each item waits on its own feature fetch), in order, at most
        // BATCH_CONCURRENCY at a time. An item refused for its own reason is reported by
        // index and the others are scored; any other failure fails the call, naming the item.
        use futures::StreamExt as _;
        let items: Vec<_> = txns.iter().map(|t| self.score(t, false)).collect();
        let results: Vec<Result<ScoreResponse, Status>> = futures::stream::iter(items)
            .buffered(BATCH_CONCURRENCY)
            .collect()
            .await;
        let mut response = ScoreBatchResponse::default();
        for (i, (result, t)) in results.into_iter().zip(&txns).enumerate() {
            match result {
                Ok(score) => response.scores.push(score),
                Err(s) if matches!(s.code(), Code::InvalidArgument | Code::FailedPrecondition) => {
                    response.errors.push(ScoreError {
                        index: i as u32,
                        transaction_id: service_runtime::truncated(&t.transaction_id, 64),
                        code: s.code() as i32,
                        message: s.message().to_owned(),
                    });
                }
                Err(s) => {
                    return Err(Status::new(
                        s.code(),
                        format!("transactions[{i}]: {}", s.message()),
                    ));
                }
            }
        }
        Ok(Response::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::Active;
    use crate::source::SourceError;
    use model::linear::LogisticModel;
    use model::manifest::Manifest;
    use proto::v1::FeatureVector;

    /// A feature source answering a fixed vector, or failing.
    struct Fixed(Option<Vec<f64>>);

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
                None => Err(SourceError::Status(Status::unavailable("down"))),
            }
        }
    }

    fn scorer(source: Fixed, dir: &std::path::Path) -> Scorer<Fixed> {
        let n = features::FEATURES.len();
        let manifest = Manifest {
            model_id: "m".into(),
            version: "v7".into(),
            feature_set_version: features::FEATURE_SET_VERSION.into(),
            schema_hash: features::schema_hash().into(),
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
        // Only the first feature (amount_log) matters: weight 1 on the raw value.
        let mut weights = vec![0.0; n];
        weights[0] = 1.0;
        let m = LogisticModel {
            means: vec![0.0; n],
            scales: vec![1.0; n],
            weights,
            intercept: -5.0,
        };
        model::write_artifact(dir, manifest, model::ModelFile::Logistic(&m)).unwrap();
        let active = Active {
            reference: registry::ModelRef {
                model_id: "m".into(),
                version: "v7".into(),
            },
            model: model::LoadedModel::load(dir).unwrap(),
        };
        let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
        let reasons = ReasonPolicy {
            max: 1,
            from: Decision::Review,
        };
        Scorer::new(Arc::new(source), ModelSlot::fixed(active), metrics, reasons)
    }

    fn txn(currency: &str) -> Transaction {
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
    async fn a_batch_reports_refused_items_by_index_and_scores_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = scorer(Fixed(Some(vec![0.0; features::FEATURES.len()])), dir.path());
        let mut bad = txn("eur");
        bad.transaction_id = "x".repeat(100);
        let request = ScoreBatchRequest {
            transactions: vec![txn("EUR"), bad, txn("USD")],
        };
        let r = InferenceService::score_batch(&s, Request::new(request))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.scores.len(), 2, "{r:?}");
        assert_eq!(r.errors.len(), 1, "{r:?}");
        let e = &r.errors[0];
        assert_eq!((e.index, e.code), (1, Code::InvalidArgument as i32));
        assert!(e.message.contains("amount.currency"), "{}", e.message);
        assert!(e.transaction_id.len() <= 64 + 3, "{}", e.transaction_id); // cut, with an ellipsis
    }

    #[tokio::test]
    async fn a_batch_fails_as_a_whole_without_a_model() {
        let s = Scorer::new(
            Arc::new(Fixed(None)),
            ModelSlot::empty(),
            Metrics::register(&prometheus::Registry::new()).unwrap(),
            ReasonPolicy::NONE,
        );
        let request = ScoreBatchRequest {
            transactions: vec![txn("EUR"), txn("eur")],
        };
        let e = InferenceService::score_batch(&s, Request::new(request))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unavailable);
        assert!(
            e.message().starts_with("transactions[0]"),
            "{}",
            e.message()
        );
    }

    #[tokio::test]
    async fn invalid_transactions_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let s = scorer(Fixed(None), dir.path());
        let e = s.score(&txn("eur"), false).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("amount.currency"), "{}", e.message());
    }
}
