//! The gRPC adapter: `IngestService` over [`Intake`]. It unwraps requests, calls the core and
//! turns an [`IngestError`] into a `tonic::Status` — [`code`] is the only place ingest chooses
//! a status code.

use crate::intake::{IngestError, Intake};
use proto::v1::ingest_service_server::IngestService;
use proto::v1::{
    SubmitBatchRequest, SubmitBatchResponse, SubmitLabelsRequest, SubmitLabelsResponse,
    SubmitProfilesRequest, SubmitProfilesResponse, SubmitRequest, SubmitResponse,
};
use tokio_stream::StreamExt;
use tonic::{Code, Request, Response, Status, Streaming};

/// The one mapping from ingest errors to gRPC codes.
fn code(error: &IngestError) -> Code {
    match error {
        IngestError::Missing(_) | IngestError::Invalid { .. } | IngestError::TooLarge { .. } => {
            Code::InvalidArgument
        }
        // The concurrent request may still fail: the client resubmits (ABORTED = retry the
        // whole read-modify-write sequence).
        IngestError::InFlight { .. } => Code::Aborted,
        // Both are transient from the client's point of view: retrying is safe (idempotent).
        IngestError::Bus(_) | IngestError::Store(_) => Code::Unavailable,
    }
}

impl From<IngestError> for Status {
    fn from(error: IngestError) -> Status {
        let code = code(&error);
        if code == Code::Unavailable {
            tracing::error!(%error, "request failed");
        }
        Status::new(code, error.to_string())
    }
}

/// The gRPC face of [`Intake`].
pub(crate) struct Grpc(pub(crate) Intake);

#[tonic::async_trait]
impl IngestService for Grpc {
    #[tracing::instrument(skip_all, fields(transaction_id))]
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let request = request.into_inner();
        if let Some(t) = &request.transaction {
            tracing::Span::current().record("transaction_id", t.transaction_id.as_str());
        }
        Ok(Response::new(self.0.submit(request).await?))
    }

    #[tracing::instrument(skip_all, fields(size))]
    async fn submit_batch(
        &self,
        request: Request<SubmitBatchRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let batch = request.into_inner().transactions;
        tracing::Span::current().record("size", batch.len());
        Ok(Response::new(self.0.accept(batch).await?))
    }

    /// Chunks of `ingest.max_batch`, each accepted like a `SubmitBatch`; indexes are the
    /// stream's.
    async fn submit_stream(
        &self,
        request: Request<Streaming<proto::v1::Transaction>>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let mut stream = request.into_inner();
        let max_batch = self.0.max_batch();
        let mut total = SubmitBatchResponse::default();
        let mut chunk = Vec::with_capacity(max_batch);
        let mut offset = 0u32;
        loop {
            let next = stream.next().await;
            let end = next.is_none();
            if let Some(item) = next {
                chunk.push(item?);
            }
            if chunk.len() == max_batch || (end && !chunk.is_empty()) {
                let n = chunk.len() as u32;
                let r = self.0.accept(std::mem::take(&mut chunk)).await?;
                total.accepted += r.accepted;
                total.duplicates += r.duplicates;
                total.rejected.extend(r.rejected.into_iter().map(|mut x| {
                    x.index += offset;
                    x
                }));
                total.deferred.extend(r.deferred.into_iter().map(|mut x| {
                    x.index += offset;
                    x
                }));
                offset += n;
            }
            if end {
                return Ok(Response::new(total));
            }
        }
    }

    async fn submit_labels(
        &self,
        request: Request<SubmitLabelsRequest>,
    ) -> Result<Response<SubmitLabelsResponse>, Status> {
        let labels = request.into_inner().labels;
        Ok(Response::new(self.0.submit_labels(labels).await?))
    }

    async fn submit_profiles(
        &self,
        request: Request<SubmitProfilesRequest>,
    ) -> Result<Response<SubmitProfilesResponse>, Status> {
        let profiles = request.into_inner().profiles;
        Ok(Response::new(self.0.submit_profiles(profiles).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::{Item, check_size};
    use domain::convert::transaction_from_proto;

    fn validation_error() -> domain::ValidationError {
        let wire = proto::v1::Transaction {
            transaction_id: "t".into(),
            ..Default::default()
        };
        transaction_from_proto(&wire).unwrap_err()
    }

    /// Every variant, with the code and the message a client sees (clients and the e2e
    /// tests match on both).
    fn cases() -> Vec<(IngestError, Code, String)> {
        let invalid = validation_error();
        vec![
            (
                IngestError::Missing("transaction"),
                Code::InvalidArgument,
                "invalid field `transaction`: is required".into(),
            ),
            (
                IngestError::Invalid {
                    at: None,
                    error: invalid.clone(),
                },
                Code::InvalidArgument,
                invalid.to_string(),
            ),
            (
                IngestError::Invalid {
                    at: Some(Item {
                        list: "labels",
                        index: 3,
                    }),
                    error: invalid.clone(),
                },
                Code::InvalidArgument,
                format!("labels[3]: {invalid}"),
            ),
            (
                check_size("transactions", 6, 5).unwrap_err(),
                Code::InvalidArgument,
                "transactions: batch of 6 exceeds the limit of 5".into(),
            ),
            (
                IngestError::InFlight {
                    transaction_id: "t1".into(),
                    reason: "another request is publishing this transaction_id; resubmit it".into(),
                },
                Code::Aborted,
                "transaction_id \"t1\": another request is publishing this transaction_id; \
                 resubmit it"
                    .into(),
            ),
            (
                bus::BusError::Task("gone".into()).into(),
                Code::Unavailable,
                "publishing to kafka failed: bus task failed: gone".into(),
            ),
            (
                online_store::StoreError::Script("odd".into()).into(),
                Code::Unavailable,
                "duplicate check failed: unexpected reply of the commit script: odd".into(),
            ),
        ]
    }

    #[test]
    fn each_error_maps_to_its_code_and_keeps_its_message() {
        // No wildcard: a new variant does not compile until it has a case here.
        let mut covered = [false; 6];
        for (error, expected, message) in cases() {
            covered[match &error {
                IngestError::Missing(_) => 0,
                IngestError::Invalid { .. } => 1,
                IngestError::TooLarge { .. } => 2,
                IngestError::InFlight { .. } => 3,
                IngestError::Bus(_) => 4,
                IngestError::Store(_) => 5,
            }] = true;
            let debug = format!("{error:?}");
            let status = Status::from(error);
            assert_eq!(status.code(), expected, "{debug}");
            assert_eq!(status.message(), message, "{debug}");
        }
        assert!(covered.iter().all(|&c| c), "{covered:?}");
    }

    #[test]
    fn a_batch_at_the_limit_is_accepted() {
        assert!(check_size("labels", 5, 5).is_ok());
        assert!(check_size("profiles", 0, 5).is_ok());
        // The refusal names the list it counted.
        let e = check_size("labels", 6, 5).unwrap_err();
        assert_eq!(e.to_string(), "labels: batch of 6 exceeds the limit of 5");
    }
}
