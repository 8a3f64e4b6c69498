//! The speed layer: transactions → feature vectors → Redis state, effectively once.

use crate::config::Config;
use crate::metrics::{Metrics, SKIP_ALREADY_APPLIED, SKIP_DUPLICATE_ID, SKIP_QUARANTINED};
use bus::{BusError, Consumer, Delivery, Producer, topics};
use domain::Transaction;
use domain::convert::transaction_from_proto;
use features::{Fold, UserState};
use online_store::{NextOffset, OnlineStore, StoreError};
use proto::v1::FeatureVector;
use service_runtime::clock::now_ms;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) struct SpeedLayer {
    consumer: Consumer,
    store: OnlineStore,
    producer: Producer,
    metrics: Metrics,
    group: String,
    partitions: i32,
    batch_max: usize,
    linger: Duration,
}

#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SpeedLayer {
    pub(crate) fn new(
        cfg: &Config,
        store: OnlineStore,
        producer: Producer,
        metrics: Metrics,
    ) -> Result<Self, BusError> {
        let s = &cfg.feature_service;
        Ok(SpeedLayer {
            consumer: Consumer::new(&cfg.kafka, &s.speed_group, &[topics::TRANSACTIONS])?,
            store,
            producer,
            metrics,
            group: s.speed_group.clone(),
            partitions: cfg.kafka.partitions,
            batch_max: s.speed_batch_max,
            linger: Duration::from_millis(s.speed_linger_ms),
        })
    }

    pub(crate) async fn run(self, stop: CancellationToken) {
        let retries = self.metrics.retries.with_label_values(&["speed"]);
        let this = &self;
        bus::run_batches(
            "speed-layer",
            &self.consumer,
            self.batch_max,
            self.linger,
            &stop,
            || retries.inc(),
            move |batch| {
                Box::pin(async move {
                    let timer = this.metrics.batch_seconds.start_timer();
                    let result = this.process(&batch).await;
                    timer.observe_duration();
                    result
                })
            },
        )
        .await;
    }

    /// Applies one batch. Idempotent: safe to call again with the same batch after a failure.
    async fn process(&self, batch: &[Delivery]) -> Result<(), BatchError> {
        let next = self
            .store
            .next_offsets(&self.group, topics::TRANSACTIONS, self.partitions)
            .await?;
        let mut txns: Vec<Transaction> = Vec::with_capacity(batch.len());
        for d in batch {
            if d.is_below(&next) {
                self.metrics
                    .skipped
                    .with_label_values(&[SKIP_ALREADY_APPLIED])
                    .inc();
                continue;
            }
            match decode(d) {
                Ok(t) => txns.push(t),
                Err((field, reason)) => {
                    self.metrics
                        .skipped
                        .with_label_values(&[SKIP_QUARANTINED])
                        .inc();
                    tracing::warn!(partition = d.partition, offset = d.offset, field, %reason, "quarantined");
                    let key = d.key.clone().unwrap_or_default();
                    self.producer
                        .quarantine(
                            topics::TRANSACTIONS,
                            &key,
                            d.payload.clone(),
                            field,
                            &reason,
                            now_ms(),
                        )
                        .await?;
                }
            }
        }
        let mut users: Vec<&str> = txns.iter().map(|t| t.user_id.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        let loaded = self.store.get_states(&users).await?;
        let mut states: HashMap<&str, UserState> = users
            .iter()
            .zip(loaded)
            .map(|(u, s)| (*u, s.unwrap_or_default()))
            .collect();
        let computed_at = Some(proto::time::from_unix_ms(now_ms()));
        let mut vectors = Vec::with_capacity(txns.len());
        for t in &txns {
            let state = states.entry(t.user_id.as_str()).or_default();
            let values = state.vector(t);
            match state.fold(t) {
                Fold::Applied => vectors.push(FeatureVector {
                    transaction_id: t.transaction_id.clone(),
                    user_id: t.user_id.clone(),
                    feature_set_version: features::FEATURE_SET_VERSION.into(),
                    schema_hash: features::schema_hash().into(),
                    values,
                    event_time: Some(proto::time::from_unix_ms(t.event_time_ms)),
                    computed_at,
                    merchant_id: t.merchant_id.clone(),
                }),
                Fold::Duplicate => {
                    self.metrics
                        .skipped
                        .with_label_values(&[SKIP_DUPLICATE_ID])
                        .inc();
                }
            }
        }
        // Publish first, then commit state + offsets atomically. A crash in between republishes
        // identical vectors on redelivery (same state, same input); consumers key on the
        // transaction id.
        self.producer
            .send_all(
                topics::FEATURES,
                vectors.iter().map(|v| (v.user_id.as_str(), v)),
            )
            .await?;
        let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
        for d in batch {
            let e = offsets.entry(d.partition).or_insert(d.offset + 1);
            *e = (*e).max(d.offset + 1);
        }
        let offsets: Vec<NextOffset> = offsets
            .into_iter()
            .filter(|(p, o)| next.get(p).is_none_or(|n| o > n))
            .map(|(partition, offset)| NextOffset {
                topic: topics::TRANSACTIONS.into(),
                partition,
                offset,
            })
            .collect();
        let changed: Vec<(&str, &UserState)> = states.iter().map(|(u, s)| (*u, s)).collect();
        self.store.commit(&self.group, &changed, &offsets).await?;
        self.metrics.applied.inc_by(vectors.len() as u64);
        Ok(())
    }
}

/// Decodes and validates a transaction; on failure, the field and the reason.
fn decode(d: &Delivery) -> Result<Transaction, (&'static str, String)> {
    let wire: proto::v1::Transaction = d
        .decode("transaction")
        .map_err(|e| ("payload", e.to_string()))?;
    transaction_from_proto(&wire).map_err(|e| (e.field, e.reason))
}
