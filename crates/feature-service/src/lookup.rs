//! The read side of the feature store, with no transport in it: a transaction's vector "as of
//! now" and a user's online aggregates.
//!
//! [`Lookup`] takes the contract's messages (prost types, not tonic) and answers them or a
//! [`LookupError`]; it never chooses a status code. The gRPC adapter ([`crate::grpc`]) maps a
//! [`LookupError`] to a `tonic::Status` in one place.

use crate::speed::envelope;
use domain::ValidationError;
use domain::convert::transaction_from_proto;
use online_store::{OnlineStore, StoreError};
use proto::v1::{FeatureVector, NamedValue, OnlineFeatures, Transaction};
use service_runtime::clock::now_ms;

/// Why a read was refused or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LookupError {
    /// A required field of the request is absent.
    #[error("invalid field `{0}`: is required")]
    Missing(&'static str),
    /// The request is not valid (names the field).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The user has no online state (never seen, or idle past every window).
    #[error("no online state for user {user_id}")]
    NoState { user_id: String },
    /// Redis could not be read.
    #[error("online store: {0}")]
    Store(#[from] StoreError),
}

/// Reads vectors and aggregates from the online store.
pub(crate) struct Lookup {
    store: OnlineStore,
    skew_ms: i64,
}

impl Lookup {
    pub(crate) fn new(store: OnlineStore, skew_ms: i64) -> Self {
        Lookup { store, skew_ms }
    }

    /// The vector of a transaction as of now: current state + request-time features. Read-only.
    /// The vector is evaluated at the request's event time bounded by the server clock
    /// (`now ± max_future_skew_ms`), so a client cannot age its own history out of the
    /// windows by moving `event_time`.
    pub(crate) async fn vector(&self, wire: &Transaction) -> Result<FeatureVector, LookupError> {
        let t = transaction_from_proto(wire)?;
        let (user_ids, merchant_ids) = ([t.user_id.as_str()], [t.merchant_id.as_str()]);
        let (user, merchant, profile) = tokio::try_join!(
            self.store.get_users(&user_ids),
            self.store.get_merchants(&merchant_ids),
            self.store.get_profiles(&user_ids)
        )?;
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
        Ok(envelope(&t, values, now))
    }

    /// A user's aggregates as of now, by feature name.
    pub(crate) async fn online_features(
        &self,
        user_id: &str,
    ) -> Result<OnlineFeatures, LookupError> {
        let user_id = domain::convert::check_id("user_id", user_id)?;
        let state = self
            .store
            .get_users(&[user_id.as_str()])
            .await?
            .pop()
            .flatten()
            .ok_or_else(|| LookupError::NoState {
                user_id: user_id.clone(),
            })?;
        Ok(OnlineFeatures {
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
        })
    }
}
