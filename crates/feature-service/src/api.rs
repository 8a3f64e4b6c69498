//! The gRPC API of the feature store.

use crate::speed::envelope;
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
    skew_ms: i64,
}

impl Api {
    pub(crate) fn new(store: OnlineStore, skew_ms: i64) -> Self {
        Api { store, skew_ms }
    }
}

fn unavailable(e: online_store::StoreError) -> Status {
    tracing::error!(error = %e, "online store read failed");
    Status::unavailable(format!("online store: {e}"))
}

#[tonic::async_trait]
impl FeatureService for Api {
    /// The vector of a transaction as of now: current state + request-time features. Read-only.
    /// The vector is evaluated at the request's event time bounded by the server clock
    /// (`now ± max_future_skew_ms`), so a client cannot age its own history out of the
    /// windows by moving `event_time`.
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
        let (user_ids, merchant_ids) = ([t.user_id.as_str()], [t.merchant_id.as_str()]);
        let (user, merchant, profile) = tokio::try_join!(
            self.store.get_users(&user_ids),
            self.store.get_merchants(&merchant_ids),
            self.store.get_profiles(&user_ids)
        )
        .map_err(unavailable)?;
        let user = user.into_iter().next().flatten().unwrap_or_default();
        let merchant = merchant.into_iter().next().unwrap_or_default();
        let profile = profile.into_iter().next().unwrap_or_default();
        let now = now_ms();
        let at = features::serving_time(t.event_time_ms, now, self.skew_ms);
        let values = features::vector_at(
            &t,
            at,
            features::Entities {
                user: &user,
                merchant: &merchant,
                profile: &profile,
            },
        );
        Ok(Response::new(envelope(&t, values, now)))
    }

    async fn get_online_features(
        &self,
        request: Request<GetOnlineFeaturesRequest>,
    ) -> Result<Response<OnlineFeatures>, Status> {
        let user_id = domain::convert::check_id("user_id", &request.into_inner().user_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let state = self
            .store
            .get_users(&[user_id.as_str()])
            .await
            .map_err(unavailable)?
            .pop()
            .flatten()
            .ok_or_else(|| Status::not_found(format!("no online state for user {user_id}")))?;
        Ok(Response::new(OnlineFeatures {
            user_id,
            schema_hash: features::schema_hash().into(),
            values: features::user_aggregates_at(&state, now_ms())
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
