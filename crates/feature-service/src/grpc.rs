//! The gRPC adapter: `FeatureService` over [`Lookup`]. It unwraps requests, calls the core and
//! turns a [`LookupError`] into a `tonic::Status` — [`code`] is the only place the
//! feature-service chooses a status code.

use crate::lookup::{Lookup, LookupError};
use proto::v1::feature_service_server::FeatureService;
use proto::v1::{FeatureVector, GetFeatureVectorRequest, GetOnlineFeaturesRequest, OnlineFeatures};
use tonic::{Code, Request, Response, Status};

/// The one mapping from lookup errors to gRPC codes.
fn code(error: &LookupError) -> Code {
    match error {
        LookupError::Missing(_) | LookupError::Invalid(_) => Code::InvalidArgument,
        LookupError::NoState { .. } => Code::NotFound,
        // Transient: inference scores degraded meanwhile, and its breaker counts these.
        LookupError::Store(_) => Code::Unavailable,
    }
}

impl From<LookupError> for Status {
    fn from(error: LookupError) -> Status {
        let code = code(&error);
        if let LookupError::Store(e) = &error {
            tracing::error!(error = %e, "online store read failed");
        }
        Status::new(code, error.to_string())
    }
}

/// The gRPC face of [`Lookup`].
pub(crate) struct Grpc(pub(crate) Lookup);

#[tonic::async_trait]
impl FeatureService for Grpc {
    /// See [`Lookup::vector`].
    async fn get_feature_vector(
        &self,
        request: Request<GetFeatureVectorRequest>,
    ) -> Result<Response<FeatureVector>, Status> {
        let wire = request
            .into_inner()
            .transaction
            .ok_or(LookupError::Missing("transaction"))?;
        Ok(Response::new(self.0.vector(&wire).await?))
    }

    async fn get_online_features(
        &self,
        request: Request<GetOnlineFeaturesRequest>,
    ) -> Result<Response<OnlineFeatures>, Status> {
        let user_id = request.into_inner().user_id;
        Ok(Response::new(self.0.online_features(&user_id).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_code_and_keeps_its_message() {
        let invalid = domain::convert::check_id("user_id", "").unwrap_err();
        let cases = vec![
            (
                LookupError::Missing("transaction"),
                Code::InvalidArgument,
                "invalid field `transaction`: is required".to_owned(),
            ),
            (
                invalid.clone().into(),
                Code::InvalidArgument,
                invalid.to_string(),
            ),
            (
                LookupError::NoState {
                    user_id: "u1".into(),
                },
                Code::NotFound,
                "no online state for user u1".into(),
            ),
            (
                online_store::StoreError::Script("odd".into()).into(),
                Code::Unavailable,
                "online store: unexpected reply of the commit script: odd".into(),
            ),
        ];
        // No wildcard: a new variant does not compile until it has a case here.
        let mut covered = [false; 4];
        for (error, expected, message) in cases {
            covered[match &error {
                LookupError::Missing(_) => 0,
                LookupError::Invalid(_) => 1,
                LookupError::NoState { .. } => 2,
                LookupError::Store(_) => 3,
            }] = true;
            let debug = format!("{error:?}");
            let status = Status::from(error);
            assert_eq!(status.code(), expected, "{debug}");
            assert_eq!(status.message(), message, "{debug}");
        }
        assert!(covered.iter().all(|&c| c), "{covered:?}");
    }
}
