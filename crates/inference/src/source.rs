//! Where feature vectors come from. Scoring depends on the [`FeatureSource`] trait, not on a
//! tonic client, so it is unit-tested without a network; [`GrpcFeatureSource`] is the real one.

use proto::v1::feature_service_client::FeatureServiceClient;
use proto::v1::{FeatureVector, GetFeatureVectorRequest, Transaction};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Why a vector could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("feature-service: {0}")]
    Status(#[from] tonic::Status),
    #[error("feature-service endpoint: {0}")]
    Endpoint(#[from] tonic::transport::Error),
}

/// A provider of feature vectors for the synchronous path.
#[tonic::async_trait]
pub trait FeatureSource: Send + Sync + 'static {
    async fn vector(&self, transaction: &Transaction) -> Result<FeatureVector, SourceError>;
}

/// The feature-service over gRPC (lazy connection, per-call deadline).
#[derive(Debug, Clone)]
pub struct GrpcFeatureSource {
    client: FeatureServiceClient<Channel>,
}

impl GrpcFeatureSource {
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self, SourceError> {
        let channel = Endpoint::from_shared(endpoint.to_owned())?
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(GrpcFeatureSource {
            client: FeatureServiceClient::new(channel),
        })
    }
}

#[tonic::async_trait]
impl FeatureSource for GrpcFeatureSource {
    async fn vector(&self, transaction: &Transaction) -> Result<FeatureVector, SourceError> {
        let mut request = tonic::Request::new(GetFeatureVectorRequest {
            transaction: Some(transaction.clone()),
        });
        // Propagate the trace context to the feature-service.
        for (k, v) in service_runtime::telemetry::current_context_headers().0 {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(k.as_bytes()),
                tonic::metadata::MetadataValue::try_from(v.as_str()),
            ) {
                request.metadata_mut().insert(key, value);
            }
        }
        Ok(self
            .client
            .clone()
            .get_feature_vector(request)
            .await?
            .into_inner())
    }
}
