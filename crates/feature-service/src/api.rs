//! The gRPC API of the feature store.

use domain::convert::transaction_from_proto;
use online_store::OnlineStore;
use proto::v1::feature_service_server::FeatureService;
use proto::v1::{
    FeatureVector, GetFeatureVectorRequest, GetOnlineFeaturesRequest, NamedValue, OnlineFeatures,
};
use service_runtime::clock::now_ms;
use tonic::{Request, Response, Status};

pub(crate) struct Api {
    store: OnlineStore,
}

impl Api {
    pub(crate) fn new(store: OnlineStore) -> Self {
        Api { store }
    }
}

fn unavailable(e: online_store::StoreError) -> Status {
    tracing::error!(error = %e, "online store read failed");
    Status::unavailable(format!("online store: {e}"))
}

#[tonic::async_trait]
impl FeatureService for Api {
    /// The vector of a transaction as of now: current state + request-time features. Read-only.
    async fn get_feature_vector(
        &self,
        request: Request<GetFeatureVectorRequest>,
    ) -> Result<Response<FeatureVector>, Status> {
        let wire = request
            .into_inner()
            .transaction
            .ok_or_else(|| Status::invalid_argument("invalid field `transaction`: is required"))?;
        let t =
            transaction_from_proto(&wire).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let state = self
            .store
            .get_states(&[t.user_id.as_str()])
            .await
            .map_err(unavailable)?
            .pop()
            .flatten()
            .unwrap_or_default();
        Ok(Response::new(FeatureVector {
            transaction_id: t.transaction_id.clone(),
            user_id: t.user_id.clone(),
            feature_set_version: features::FEATURE_SET_VERSION.into(),
            schema_hash: features::schema_hash().into(),
            values: state.vector(&t),
            event_time: wire.event_time,
            computed_at: Some(proto::time::from_unix_ms(now_ms())),
            merchant_id: t.merchant_id,
        }))
    }

    async fn get_online_features(
        &self,
        request: Request<GetOnlineFeaturesRequest>,
    ) -> Result<Response<OnlineFeatures>, Status> {
        let user_id = request.into_inner().user_id;
        if user_id.is_empty() {
            return Err(Status::invalid_argument(
                "invalid field `user_id`: must not be empty",
            ));
        }
        let state = self
            .store
            .get_states(&[user_id.as_str()])
            .await
            .map_err(unavailable)?
            .pop()
            .flatten()
            .ok_or_else(|| Status::not_found(format!("no online state for user {user_id}")))?;
        Ok(Response::new(OnlineFeatures {
            user_id,
            schema_hash: features::schema_hash().into(),
            values: state
                .aggregates_at(now_ms())
                .into_iter()
                .map(|(name, value)| NamedValue {
                    name: name.into(),
                    value,
                })
                .collect(),
            transactions_seen: state.transactions_seen(),
            last_event_time: state.last_event_ms().map(proto::time::from_unix_ms),
        }))
    }
}
