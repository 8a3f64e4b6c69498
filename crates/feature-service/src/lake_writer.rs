//! The lake writer: transactions, labels and profile versions from Kafka into the Parquet lake,
//! idempotently.
//!
//! The lake's own commit markers say which offsets are in; anything below them is skipped by
//! the lake itself, so redelivery after a crash writes nothing twice.

use crate::config::Config;
use crate::metrics::Metrics;
use bus::{BusError, Consumer, Delivery, topics};
use lake::{LakeError, LakeWriter, Record};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) struct LakeWriterLoop {
    consumer: Consumer,
    producer: bus::Producer,
    retry: bus::RetryPolicy,
    lake: Arc<LakeWriter>,
    metrics: Metrics,
    batch_max: usize,
    linger: Duration,
    skew_ms: i64,
}

#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("lake write task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl bus::Failure for WriteError {
    fn is_transient(&self) -> bool {
        match self {
            WriteError::Lake(e) => e.is_transient(),
            // A panic while writing: the record's own, most likely.
            WriteError::Join(_) => false,
        }
    }
}

impl LakeWriterLoop {
    pub(crate) fn new(
        cfg: &Config,
        lake: Arc<LakeWriter>,
        producer: bus::Producer,
        metrics: Metrics,
    ) -> Result<Self, BusError> {
        let s = &cfg.feature_service;
        Ok(LakeWriterLoop {
            consumer: Consumer::new(
                &cfg.kafka,
                &s.lake_group,
                &[topics::TRANSACTIONS, topics::LABELS, topics::PROFILES],
            )?,
            producer,
            retry: cfg.kafka.retry,
            lake,
            metrics,
            batch_max: s.lake_batch_max,
            linger: Duration::from_millis(s.lake_linger_ms),
            skew_ms: s.max_future_skew_ms,
        })
    }

    pub(crate) async fn run(
        self,
        health: service_runtime::admin::Component,
        loops: &bus::LoopMetrics,
        stop: CancellationToken,
    ) {
        let this = &self;
        bus::BatchLoop {
            stage: "lake-writer",
            consumer: &self.consumer,
            max: self.batch_max,
            linger: self.linger,
            policy: self.retry,
            quarantine: &self.producer,
            health,
            metrics: loops.stage("lake-writer"),
        }
        .run(&stop, move |batch| {
            Box::pin(async move { this.write(&batch).await })
        })
        .await;
    }

    async fn write(&self, batch: &[Delivery]) -> Result<(), WriteError> {
        let mut txns: BTreeMap<i32, Vec<Record<domain::Transaction>>> = BTreeMap::new();
        let mut labels: BTreeMap<i32, Vec<Record<domain::Label>>> = BTreeMap::new();
        let mut profiles: BTreeMap<i32, Vec<Record<domain::UserProfile>>> = BTreeMap::new();
        let now = service_runtime::clock::now_ms();
        for d in batch {
            // Invalid records (the same rules as the speed layer's, event time included) are
            // quarantined by the speed layer; the lake keeps valid data only.
            if d.topic == topics::TRANSACTIONS {
                if let Ok(t) = crate::speed::decode_transaction(d, now, self.skew_ms) {
                    txns.entry(d.partition).or_default().push(Record {
                        partition: d.partition,
                        offset: d.offset,
                        value: t,
                    });
                }
            } else if d.topic == topics::PROFILES {
                // Invalid versions are quarantined (and counted) by the speed layer.
                if let Ok(p) = crate::speed::decode_profile(d, now, self.skew_ms) {
                    profiles.entry(d.partition).or_default().push(Record {
                        partition: d.partition,
                        offset: d.offset,
                        value: p,
                    });
                }
            } else if d.topic == topics::LABELS {
                match crate::speed::decode_label(d, now, self.skew_ms) {
                    Ok(l) => labels.entry(d.partition).or_default().push(Record {
                        partition: d.partition,
                        offset: d.offset,
                        value: l,
                    }),
                    Err((field, reason)) => tracing::warn!(
                        partition = d.partition,
                        offset = d.offset,
                        field,
                        %reason,
                        "invalid label skipped"
                    ),
                }
            }
        }
        let lake = self.lake.clone();
        let (t_rows, l_rows, p_rows) =
            tokio::task::spawn_blocking(move || -> Result<(usize, usize, usize), LakeError> {
                let mut t_rows = 0;
                for (p, records) in &txns {
                    t_rows += lake.write_transactions(*p, records)?;
                }
                let mut l_rows = 0;
                for (p, records) in &labels {
                    l_rows += lake.write_labels(*p, records)?;
                }
                let mut p_rows = 0;
                for (p, records) in &profiles {
                    p_rows += lake.write_profiles(*p, records)?;
                }
                Ok((t_rows, l_rows, p_rows))
            })
            .await??;
        self.metrics
            .lake_rows
            .with_label_values(&["transactions"])
            .inc_by(t_rows as u64);
        self.metrics
            .lake_rows
            .with_label_values(&["labels"])
            .inc_by(l_rows as u64);
        self.metrics
            .lake_rows
            .with_label_values(&["profiles"])
            .inc_by(p_rows as u64);
        Ok(())
    }
}
