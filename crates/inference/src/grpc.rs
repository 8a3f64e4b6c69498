//! The gRPC adapter: `InferenceService` over [`Scorer`]. It unwraps requests, calls the core
//! and turns a [`ScoringError`] into a `tonic::Status` (a failed call) or a code in a
//! `ScoreBatch` answer's `errors` (an item refused for its own reason) — `code` is the only
//! place inference chooses a status code.

use crate::scoring::{Scorer, ScoringError};
use crate::source::FeatureSource;
use proto::v1::inference_service_server::InferenceService;
use proto::v1::{ScoreBatchRequest, ScoreBatchResponse, ScoreError, ScoreRequest, ScoreResponse};
use tonic::{Code, Request, Response, Status};

/// The one mapping from scoring errors to gRPC codes.
pub(crate) fn code(error: &ScoringError) -> Code {
    match error {
        ScoringError::Missing(_) | ScoringError::Invalid(_) | ScoringError::TooLarge { .. } => {
            Code::InvalidArgument
        }
        // Loading is in progress (or the alias names nothing yet): another replica may answer.
        ScoringError::NoModel => Code::Unavailable,
        // The deployed model and the vector disagree: retrying the same request cannot help.
        ScoringError::Refused(_) => Code::FailedPrecondition,
        ScoringError::Explanation(_) => Code::Internal,
        ScoringError::InBatch { error, .. } => code(error),
    }
}

impl From<ScoringError> for Status {
    fn from(error: ScoringError) -> Status {
        Status::new(code(&error), error.to_string())
    }
}

/// The gRPC face of [`Scorer`].
pub struct Grpc<S>(pub Scorer<S>);

impl<S> std::fmt::Debug for Grpc<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Grpc").field(&self.0).finish()
    }
}

#[tonic::async_trait]
impl<S: FeatureSource> InferenceService for Grpc<S> {
    async fn score(
        &self,
        request: Request<ScoreRequest>,
    ) -> Result<Response<ScoreResponse>, Status> {
        let request = request.into_inner();
        let wire = request
            .transaction
            .ok_or(ScoringError::Missing("transaction"))?;
        Ok(Response::new(self.0.score(&wire, request.explain).await?))
    }

    async fn score_batch(
        &self,
        request: Request<ScoreBatchRequest>,
    ) -> Result<Response<ScoreBatchResponse>, Status> {
        let txns = request.into_inner().transactions;
        let outcome = self.0.score_batch(&txns).await?;
        let errors = outcome
            .errors
            .into_iter()
            .map(|(index, error)| ScoreError {
                index: index as u32,
                transaction_id: service_runtime::truncated(&txns[index].transaction_id, 64),
                code: code(&error) as i32,
                message: error.to_string(),
            })
            .collect();
        Ok(Response::new(ScoreBatchResponse {
            scores: outcome.scores,
            errors,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::scoring::tests::{Fixed, scorer, txn};
    use crate::slot::ModelSlot;
    use model::ReasonPolicy;
    use std::sync::Arc;

    async fn cancelled() -> tokio::task::JoinError {
        let task = tokio::spawn(std::future::pending::<()>());
        task.abort();
        task.await.unwrap_err()
    }

    #[tokio::test]
    async fn each_error_maps_to_its_code() {
        let invalid = domain::convert::transaction_from_proto(&txn("eur")).unwrap_err();
        let refused = || {
            model::ModelError::SchemaMismatch {
                expected: "a".into(),
                actual: "b".into(),
            }
            .into()
        };
        let cases: Vec<(ScoringError, Code, bool)> = vec![
            (
                ScoringError::Missing("transaction"),
                Code::InvalidArgument,
                false,
            ),
            (invalid.into(), Code::InvalidArgument, true),
            (
                ScoringError::TooLarge { max: 1_000 },
                Code::InvalidArgument,
                false,
            ),
            (ScoringError::NoModel, Code::Unavailable, false),
            (refused(), Code::FailedPrecondition, true),
            (
                ScoringError::Explanation(cancelled().await),
                Code::Internal,
                false,
            ),
            (
                ScoringError::InBatch {
                    index: 2,
                    error: Box::new(ScoringError::NoModel),
                },
                Code::Unavailable,
                false,
            ),
        ];
        // No wildcard: a new variant does not compile until it has a case here.
        let mut covered = [false; 7];
        for (error, expected, item) in cases {
            covered[match &error {
                ScoringError::Missing(_) => 0,
                ScoringError::Invalid(_) => 1,
                ScoringError::TooLarge { .. } => 2,
                ScoringError::NoModel => 3,
                ScoringError::Refused(_) => 4,
                ScoringError::Explanation(_) => 5,
                ScoringError::InBatch { .. } => 6,
            }] = true;
            assert_eq!(error.is_item_error(), item, "{error:?}");
            let debug = format!("{error:?}");
            assert_eq!(Status::from(error).code(), expected, "{debug}");
        }
        assert!(covered.iter().all(|&c| c), "{covered:?}");
    }

    #[test]
    fn messages_stay_what_clients_see() {
        let cases = [
            (
                ScoringError::Missing("transaction"),
                "invalid field `transaction`: is required",
            ),
            (
                ScoringError::TooLarge { max: 1_000 },
                "transactions: at most 1000 per batch",
            ),
            (
                ScoringError::NoModel,
                "no model loaded yet for the configured alias",
            ),
            (
                ScoringError::InBatch {
                    index: 0,
                    error: Box::new(ScoringError::NoModel),
                },
                "transactions[0]: no model loaded yet for the configured alias",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(Status::from(error).message(), message);
        }
    }

    #[tokio::test]
    async fn a_score_without_a_transaction_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let s = Grpc(scorer(Fixed(None), dir.path()));
        let request = ScoreRequest {
            transaction: None,
            explain: false,
        };
        let e = InferenceService::score(&s, Request::new(request))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(e.message(), "invalid field `transaction`: is required");
    }

    #[tokio::test]
    async fn a_batch_reports_refused_items_by_index_and_scores_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = Grpc(scorer(
            Fixed(Some(vec![0.0; features::FEATURES.len()])),
            dir.path(),
        ));
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
        let s = Grpc(Scorer::new(
            Arc::new(Fixed(None)),
            ModelSlot::empty(),
            Metrics::register(&prometheus::Registry::new()).unwrap(),
            ReasonPolicy::NONE,
        ));
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
    async fn a_batch_over_the_limit_is_refused() {
        let s = Grpc(Scorer::new(
            Arc::new(Fixed(None)),
            ModelSlot::empty(),
            Metrics::register(&prometheus::Registry::new()).unwrap(),
            ReasonPolicy::NONE,
        ));
        let request = ScoreBatchRequest {
            transactions: vec![txn("EUR"); crate::scoring::MAX_BATCH + 1],
        };
        let e = InferenceService::score_batch(&s, Request::new(request))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(e.message(), "transactions: at most 1000 per batch");
    }
}
