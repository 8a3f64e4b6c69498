//! The gRPC handlers. Business rules: validate → de-duplicate → publish → acknowledge.

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
use proto::v1::ingest_service_server::IngestService;
use proto::v1::{
    Deferred, Rejection, SubmitBatchRequest, SubmitBatchResponse, SubmitLabelsRequest,
    SubmitLabelsResponse, SubmitProfilesRequest, SubmitProfilesResponse, SubmitRequest,
    SubmitResponse,
};
use service_runtime::clock::now_ms;
use std::collections::HashSet;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

pub(crate) struct Handler {
    producer: Producer,
    store: OnlineStore,
    settings: IngestSettings,
    metrics: Metrics,
}

/// Failures while handling a request (not the client's fault).
#[derive(Debug, thiserror::Error)]
enum HandlerError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The one mapping from handler errors to gRPC statuses.
fn status(error: HandlerError) -> Status {
    tracing::error!(%error, "request failed");
    match error {
        // Both are transient from the client's point of view: retrying is safe (idempotent).
        HandlerError::Bus(e) => Status::unavailable(format!("publishing to kafka failed: {e}")),
        HandlerError::Store(e) => Status::unavailable(format!("duplicate check failed: {e}")),
    }
}

fn invalid(error: &ValidationError) -> Status {
    Status::invalid_argument(error.to_string())
}

impl Handler {
    pub(crate) fn new(
        producer: Producer,
        store: OnlineStore,
        settings: IngestSettings,
        metrics: Metrics,
    ) -> Self {
        Handler {
            producer,
            store,
            settings,
            metrics,
        }
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

    /// Validates, de-duplicates and publishes a batch; reports rejections by index.
    ///
    /// De-duplication is reserve → publish → confirm: each valid id is reserved atomically
    /// (of concurrent submissions of one id exactly one gets it; the others are told it is a
    /// duplicate, or deferred while the first is still publishing), then published, then
    /// confirmed. An id whose publish failed is released, so the client's retry publishes it;
    /// one that was published stays reserved, so the retry counts it a duplicate. Either way
    /// a retry after any failure is safe.
    async fn accept(
        &self,
        batch: Vec<proto::v1::Transaction>,
    ) -> Result<SubmitBatchResponse, HandlerError> {
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
    ) -> Result<(), HandlerError> {
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

    fn check_size(&self, n: usize) -> Result<(), Status> {
        if n > self.settings.max_batch {
            return Err(Status::invalid_argument(format!(
                "transactions: batch of {n} exceeds the limit of {}",
                self.settings.max_batch
            )));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl IngestService for Handler {
    #[tracing::instrument(skip_all, fields(transaction_id))]
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let wire = request
            .into_inner()
            .transaction
            .ok_or_else(|| Status::invalid_argument("invalid field `transaction`: is required"))?;
        tracing::Span::current().record("transaction_id", wire.transaction_id.as_str());
        if let Err(e) = self.validate(&wire) {
            self.quarantine(&wire, &e).await.map_err(status)?;
            self.metrics
                .transactions
                .with_label_values(&[OUTCOME_REJECTED])
                .inc();
            return Err(invalid(&e));
        }
        let id = wire.transaction_id.clone();
        let response = self.accept(vec![wire]).await.map_err(status)?;
        if let Some(d) = response.deferred.first() {
            return Err(Status::aborted(format!(
                "transaction_id {:?}: {}",
                service_runtime::truncated(&d.transaction_id, 64),
                d.reason
            )));
        }
        Ok(Response::new(SubmitResponse {
            transaction_id: id,
            duplicate: response.duplicates > 0,
        }))
    }

    #[tracing::instrument(skip_all, fields(size))]
    async fn submit_batch(
        &self,
        request: Request<SubmitBatchRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let batch = request.into_inner().transactions;
        tracing::Span::current().record("size", batch.len());
        self.check_size(batch.len())?;
        self.accept(batch).await.map(Response::new).map_err(status)
    }

    async fn submit_stream(
        &self,
        request: Request<Streaming<proto::v1::Transaction>>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let mut stream = request.into_inner();
        let mut total = SubmitBatchResponse::default();
        let mut chunk = Vec::with_capacity(self.settings.max_batch);
        let mut offset = 0u32;
        loop {
            let next = stream.next().await;
            let end = next.is_none();
            if let Some(item) = next {
                chunk.push(item?);
            }
            if chunk.len() == self.settings.max_batch || (end && !chunk.is_empty()) {
                let n = chunk.len() as u32;
                let r = self
                    .accept(std::mem::take(&mut chunk))
                    .await
                    .map_err(status)?;
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
        let mut labels = request.into_inner().labels;
        self.check_size(labels.len())?;
        for (i, l) in labels.iter().enumerate() {
            if let Err(e) = self.validate_label(l) {
                self.metrics
                    .labels
                    .with_label_values(&[OUTCOME_REJECTED])
                    .inc();
                return Err(Status::invalid_argument(format!("labels[{i}]: {e}")));
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
        let found = self
            .store
            .merchants_of(&ids)
            .await
            .map_err(|e| status(e.into()))?;
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
            .await
            .map_err(|e| status(e.into()))?;
        self.metrics
            .labels
            .with_label_values(&[OUTCOME_ACCEPTED])
            .inc_by(labels.len() as u64);
        Ok(Response::new(SubmitLabelsResponse {
            accepted: labels.len() as u32,
        }))
    }

    async fn submit_profiles(
        &self,
        request: Request<SubmitProfilesRequest>,
    ) -> Result<Response<SubmitProfilesResponse>, Status> {
        let profiles = request.into_inner().profiles;
        self.check_size(profiles.len())?;
        for (i, p) in profiles.iter().enumerate() {
            if let Err(e) = self.validate_profile(p) {
                self.metrics
                    .profiles
                    .with_label_values(&[OUTCOME_REJECTED])
                    .inc();
                return Err(Status::invalid_argument(format!("profiles[{i}]: {e}")));
            }
        }
        // No de-duplication: a repeated version is folded idempotently downstream (same
        // `valid_from`, same values) and the lake keeps the history as received.
        self.producer
            .send_all(
                topics::PROFILES,
                profiles.iter().map(|p| (p.user_id.as_str(), p)),
            )
            .await
            .map_err(|e| status(e.into()))?;
        self.metrics
            .profiles
            .with_label_values(&[OUTCOME_ACCEPTED])
            .inc_by(profiles.len() as u64);
        Ok(Response::new(SubmitProfilesResponse {
            accepted: profiles.len() as u32,
        }))
    }
}
