//! The synchronous scoring API.

use crate::metrics::Metrics;
use crate::slot::ModelSlot;
use crate::source::FeatureSource;
use domain::convert::transaction_from_proto;
use model::{Decision, Scored};
use proto::v1::inference_service_server::InferenceService;
use proto::v1::{
    Reason, ScoreBatchRequest, ScoreBatchResponse, ScoreRequest, ScoreResponse, Transaction,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

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
    max_reasons: usize,
}

impl<S> std::fmt::Debug for Scorer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer").finish_non_exhaustive()
    }
}

impl<S: FeatureSource> Scorer<S> {
    pub fn new(source: Arc<S>, slot: ModelSlot, metrics: Metrics, max_reasons: usize) -> Self {
        Scorer {
            source,
            slot,
            metrics,
            max_reasons,
        }
    }

    /// Scores one wire transaction: validate → vector (or degraded fallback) → model.
    pub async fn score(&self, wire: &Transaction) -> Result<ScoreResponse, Status> {
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
                // same `features` crate; flagged in the answer and counted.
                tracing::warn!(%error, transaction_id = %txn.transaction_id, "feature-service unavailable; degraded scoring");
                self.metrics.degraded.inc();
                let values = features::UserState::default().vector(&txn);
                (features::schema_hash().to_owned(), values, true)
            }
        };
        let scored = active
            .model
            .score(&schema, &values, self.max_reasons)
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
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

#[tonic::async_trait]
impl<S: FeatureSource> InferenceService for Scorer<S> {
    async fn score(
        &self,
        request: Request<ScoreRequest>,
    ) -> Result<Response<ScoreResponse>, Status> {
        let wire = request
            .into_inner()
            .transaction
            .ok_or_else(|| Status::invalid_argument("invalid field `transaction`: is required"))?;
        Scorer::score(self, &wire).await.map(Response::new)
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
        let mut scores = Vec::with_capacity(txns.len());
        for (i, t) in txns.iter().enumerate() {
            let s = Scorer::score(self, t).await.map_err(|s| {
                Status::new(s.code(), format!("transactions[{i}]: {}", s.message()))
            })?;
            scores.push(s);
        }
        Ok(Response::new(ScoreBatchResponse { scores }))
    }
}
