//! The ingest core: validate → de-duplicate → publish → acknowledge, with no transport in it.
//!
//! [`Intake`] takes the contract's messages (prost types, not tonic) and answers a result or an
//! [`IngestError`]; it never chooses a status code. The gRPC adapter ([`crate::grpc`]) maps
//! an [`IngestError`] to a `tonic::Status` in one place, so another transport (a file-drop
//! reader, an HTTP endpoint) reuses the same rules and chooses its own codes from the same
//! variants.

use crate::config::IngestSettings;
use crate::metrics::{
    Metrics, OUTCOME_ACCEPTED, OUTCOME_DEFERRED, OUTCOME_DUPLICATE, OUTCOME_REJECTED,
};
use bus::{BusError, Producer, topics};
use domain::convert::{
    label_from_proto, profile_from_proto, transaction_from_proto, transaction_to_proto,
};
use domain::{Transaction, ValidationError};
use online_store::{OnlineStore, Reservation, StoreError};
use proto::prost::Message;
use proto::v1::{
    Deferred, Rejection, SubmitBatchResponse, SubmitLabelsResponse, SubmitProfilesResponse,
    SubmitRequest, SubmitResponse,
};
use service_runtime::clock::now_ms;
use std::collections::HashSet;
use std::time::Duration;

/// Why a request was refused or failed. The client's faults (`Missing`, `Invalid`,
/// `TooLarge`), a conflict with a concurrent request (`InFlight`), and ours (`Bus`, `Store`,
/// transient: retrying is safe, every submit is idempotent).
#[derive(Debug, thiserror::Error)]
pub(crate) enum IngestError {
    /// A required field of the request is absent.
    #[error("invalid field `{0}`: is required")]
    Missing(&'static str),
    /// A record failed validation; `at` names it in its list (`labels[3]`) when the request
    /// is refused whole for it.
    #[error("{}{error}", at.map(|at| format!("{at}: ")).unwrap_or_default())]
    Invalid {
        at: Option<Item>,
        error: ValidationError,
    },
    /// More records in one request than `ingest.max_batch`.
    #[error("{list}: batch of {size} exceeds the limit of {limit}")]
    TooLarge {
        list: &'static str,
        size: usize,
        limit: usize,
    },
    /// A single submit whose transaction id another request is publishing right now.
    #[error("transaction_id {transaction_id:?}: {reason}")]
    InFlight {
        transaction_id: String,
        reason: String,
    },
    #[error("publishing to kafka failed: {0}")]
    Bus(#[from] BusError),
    #[error("duplicate check failed: {0}")]
    Store(#[from] StoreError),
}

/// A record's place in a request's list, as a client reads it: `labels[3]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) list: &'static str,
    pub(crate) index: usize,
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.list, self.index)
    }
}

/// Refuses a request of more than `limit` records.
pub(crate) fn check_size(list: &'static str, size: usize, limit: usize) -> Result<(), IngestError> {
    if size > limit {
        return Err(IngestError::TooLarge { list, size, limit });
    }
    Ok(())
}

/// The ingest service's rules over its producer and online store.
pub(crate) struct Intake {
    producer: Producer,
    store: OnlineStore,
    settings: IngestSettings,
    metrics: Metrics,
}

impl Intake {
    pub(crate) fn new(
        producer: Producer,
        store: OnlineStore,
        settings: IngestSettings,
        metrics: Metrics,
    ) -> Self {
        Intake {
            producer,
            store,
            settings,
            metrics,
        }
    }

    /// The largest batch [`Intake::accept`] takes (also a stream's chunk size).
    pub(crate) fn max_batch(&self) -> usize {
        self.settings.max_batch
    }

    /// The wire → domain validation plus the event-time rule (no event after
    /// `now + max_future_skew_ms`).
    fn validate(&self, wire: &proto::v1::Transaction) -> Result<Transaction, ValidationError> {
        let t = transaction_from_proto(wire)?;
        domain::check_not_future(
            "event_time",
            t.event_time_ms,
            now_ms(),
            self.settings.max_future_skew_ms,
        )?;
        Ok(t)
    }

    fn validate_label(&self, wire: &proto::v1::Label) -> Result<(), ValidationError> {
        let l = label_from_proto(wire)?;
        domain::check_not_future(
            "reported_at",
            l.reported_at_ms,
            now_ms(),
            self.settings.max_future_skew_ms,
        )
    }

    fn validate_profile(&self, wire: &proto::v1::UserProfile) -> Result<(), ValidationError> {
        let p = profile_from_proto(wire)?;
        domain::check_not_future(
            "valid_from",
            p.valid_from_ms,
            now_ms(),
            self.settings.max_future_skew_ms,
        )
    }

    /// One transaction: refused whole if invalid (and quarantined), `InFlight` if another
    /// request is publishing its id, otherwise accepted or a duplicate.
    pub(crate) async fn submit(
        &self,
        request: SubmitRequest,
    ) -> Result<SubmitResponse, IngestError> {
        let wire = request
            .transaction
            .ok_or(IngestError::Missing("transaction"))?;
        if let Err(error) = self.validate(&wire) {
            self.quarantine(&wire, &error).await?;
            self.metrics
                .transactions
                .with_label_values(&[OUTCOME_REJECTED])
                .inc();
            return Err(IngestError::Invalid { at: None, error });
        }
        let id = wire.transaction_id.clone();
        let response = self.publish_batch(vec![wire]).await?;
        if let Some(d) = response.deferred.first() {
            return Err(IngestError::InFlight {
                transaction_id: service_runtime::truncated(&d.transaction_id, 64),
                reason: d.reason.clone(),
            });
        }
        Ok(SubmitResponse {
            transaction_id: id,
            duplicate: response.duplicates > 0,
        })
    }

    /// A batch of at most `ingest.max_batch` transactions, see [`Intake::publish_batch`].
    pub(crate) async fn accept(
        &self,
        batch: Vec<proto::v1::Transaction>,
    ) -> Result<SubmitBatchResponse, IngestError> {
        check_size("transactions", batch.len(), self.settings.max_batch)?;
        self.publish_batch(batch).await
    }

    /// Validates, de-duplicates and publishes a batch; reports rejections by index.
    ///
    /// De-duplication is reserve → publish → confirm: each valid id is reserved atomically
    /// (of concurrent submissions of one id exactly one gets it; the others are told it is a
    /// duplicate, or deferred while the first is still publishing), then published, then
    /// confirmed. An id whose publish failed is released, so the client's retry publishes it;
    /// one that was published stays reserved, so the retry counts it a duplicate. Either way
    /// a retry after any failure is safe.
    async fn publish_batch(
        &self,
        batch: Vec<proto::v1::Transaction>,
    ) -> Result<SubmitBatchResponse, IngestError> {
        let mut rejected = Vec::new();
        let mut valid: Vec<(usize, Transaction)> = Vec::with_capacity(batch.len());
        let mut in_batch = HashSet::new();
        let mut duplicates = 0u32;
        for (index, wire) in batch.iter().enumerate() {
            match self.validate(wire) {
                Ok(t) => {
                    if in_batch.insert(t.transaction_id.clone()) {
                        valid.push((index, t));
                    } else {
                        duplicates += 1;
                    }
                }
                Err(e) => {
                    self.quarantine(wire, &e).await?;
                    rejected.push(Rejection {
                        index: index as u32,
                        transaction_id: service_runtime::truncated(&wire.transaction_id, 64),
                        field: e.field.to_owned(),
                        reason: e.reason,
                    });
                }
            }
        }
        let ids: Vec<&str> = valid
            .iter()
            .map(|(_, t)| t.transaction_id.as_str())
            .collect();
        let lease = Duration::from_secs(self.settings.dedup_lease_secs);
        let reservations = self.store.reserve(&ids, lease).await?;
        let mut fresh: Vec<&Transaction> = Vec::with_capacity(valid.len());
        let mut deferred = Vec::new();
        for ((index, t), r) in valid.iter().zip(reservations) {
            match r {
                Reservation::Reserved => fresh.push(t),
                Reservation::Accepted => duplicates += 1,
                Reservation::InFlight => deferred.push(Deferred {
                    index: *index as u32,
                    transaction_id: t.transaction_id.clone(),
                    reason: "another request is publishing this transaction_id; resubmit it".into(),
                }),
            }
        }
        let timer = self.metrics.publish_seconds.start_timer();
        let wires: Vec<proto::v1::Transaction> =
            fresh.iter().map(|t| transaction_to_proto(t)).collect();
        let sends = fresh
            .iter()
            .zip(&wires)
            .map(|(t, w)| self.producer.send(topics::TRANSACTIONS, &t.user_id, w));
        let results = futures::future::join_all(sends).await;
        timer.observe_duration();
        let (mut published, mut unpublished, mut failure) = (Vec::new(), Vec::new(), None);
        for (t, r) in fresh.iter().zip(results) {
            match r {
                Ok(_) => published.push((t.transaction_id.as_str(), t.merchant_id.as_str())),
                Err(e) => {
                    unpublished.push(t.transaction_id.as_str());
                    failure.get_or_insert(e);
                }
            }
        }
        if !unpublished.is_empty()
            && let Err(error) = self.store.release(&unpublished).await
        {
            // Their leases run out by themselves; until then a retry is deferred, not lost.
            tracing::warn!(%error, "cannot release reservations of unpublished transactions");
        }
        self.confirm(&published).await;
        let m = &self.metrics.transactions;
        m.with_label_values(&[OUTCOME_ACCEPTED])
            .inc_by(published.len() as u64);
        if let Some(error) = failure {
            // Published ones stay reserved (the retry counts them duplicates), the rest were
            // released (the retry publishes them).
            return Err(error.into());
        }
        m.with_label_values(&[OUTCOME_DUPLICATE])
            .inc_by(u64::from(duplicates));
        m.with_label_values(&[OUTCOME_REJECTED])
            .inc_by(rejected.len() as u64);
        m.with_label_values(&[OUTCOME_DEFERRED])
            .inc_by(deferred.len() as u64);
        Ok(SubmitBatchResponse {
            accepted: published.len() as u32,
            duplicates,
            rejected,
            deferred,
        })
    }

    /// Confirms published transactions (their marker outlives the lease; their merchants go
    /// into the label index). They are on the topic whatever happens here, so a failure is
    /// retried briefly, then logged and counted, never answered as a failed submit (the
    /// client's retry would publish them twice once the lease ran out).
    async fn confirm(&self, published: &[(&str, &str)]) {
        let ttl = Duration::from_secs(self.settings.dedup_ttl_secs);
        let index_ttl = Duration::from_secs(u64::from(self.settings.label_horizon_days) * 86_400);
        let mut delay = Duration::from_millis(20);
        for attempt in 1..=3 {
            match self.store.mark_seen(published, ttl, index_ttl).await {
                Ok(()) => return,
                Err(error) if attempt == 3 => {
                    self.metrics.confirm_failures.inc();
                    tracing::error!(%error, count = published.len(), "published transactions not confirmed: their duplicate markers expire with the lease");
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "confirming published transactions failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
            }
        }
    }

    async fn quarantine(
        &self,
        wire: &proto::v1::Transaction,
        e: &ValidationError,
    ) -> Result<(), IngestError> {
        tracing::warn!(transaction_id = %wire.transaction_id, field = e.field, reason = %e.reason, "transaction rejected");
        self.producer
            .quarantine(
                "ingest",
                topics::TRANSACTIONS,
                &wire.user_id,
                wire.encode_to_vec(),
                e.field,
                &e.reason,
                now_ms(),
            )
            .await?;
        Ok(())
    }

    /// Fraud reports: refused whole if one is invalid (naming it), then published to
    /// `vigil.labels.v1`.
    pub(crate) async fn submit_labels(
        &self,
        mut labels: Vec<proto::v1::Label>,
    ) -> Result<SubmitLabelsResponse, IngestError> {
        check_size("labels", labels.len(), self.settings.max_batch)?;
        for (index, l) in labels.iter().enumerate() {
            if let Err(error) = self.validate_label(l) {
                self.metrics
                    .labels
                    .with_label_values(&[OUTCOME_REJECTED])
                    .inc();
                let at = Some(Item {
                    list: "labels",
                    index,
                });
                return Err(IngestError::Invalid { at, error });
            }
        }
        // A label without a merchant gets the one of its transaction, when ingest accepted it.
        let missing: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i].merchant_id.is_empty())
            .collect();
        let ids: Vec<&str> = missing
            .iter()
            .map(|&i| labels[i].transaction_id.as_str())
            .collect();
        let found = self.store.merchants_of(&ids).await?;
        for (i, merchant) in missing.into_iter().zip(found) {
            if let Some(m) = merchant {
                labels[i].merchant_id = m;
            }
        }
        self.producer
            .send_all(
                topics::LABELS,
                labels.iter().map(|l| (l.user_id.as_str(), l)),
            )
            .await?;
        self.metrics
            .labels
            .with_label_values(&[OUTCOME_ACCEPTED])
            .inc_by(labels.len() as u64);
        Ok(SubmitLabelsResponse {
            accepted: labels.len() as u32,
        })
    }

    /// Profile versions: refused whole if one is invalid (naming it), then published to
    /// `vigil.profiles.v1`.
    pub(crate) async fn submit_profiles(
        &self,
        profiles: Vec<proto::v1::UserProfile>,
    ) -> Result<SubmitProfilesResponse, IngestError> {
        check_size("profiles", profiles.len(), self.settings.max_batch)?;
        for (index, p) in profiles.iter().enumerate() {
            if let Err(error) = self.validate_profile(p) {
                self.metrics
                    .profiles
                    .with_label_values(&[OUTCOME_REJECTED])
                    .inc();
                let at = Some(Item {
                    list: "profiles",
                    index,
                });
                return Err(IngestError::Invalid { at, error });
            }
        }
        // No de-duplication: a repeated version is folded idempotently downstream (same
        // `valid_from`, same values) and the lake keeps the history as received.
        self.producer
            .send_all(
                topics::PROFILES,
                profiles.iter().map(|p| (p.user_id.as_str(), p)),
            )
            .await?;
        self.metrics
            .profiles
            .with_label_values(&[OUTCOME_ACCEPTED])
            .inc_by(profiles.len() as u64);
        Ok(SubmitProfilesResponse {
            accepted: profiles.len() as u32,
        })
    }
}
