//! Stream scoring: `vigil.features.v1` → model → `vigil.scores.v1`.
//!
//! Scoring is a pure function of (vector, model version), so a redelivered vector produces
//! the same score event again; downstream consumers de-duplicate on the transaction id.
//! Offsets are committed after the scores are acknowledged (at-least-once, never lost).

use crate::metrics::Metrics;
use crate::scoring::{decision_to_proto, reasons_to_proto, shadow_event};
use crate::slot::ModelSlot;
use bus::{Consumer, Delivery, Producer, topics};
use proto::v1::{FeatureVector, ScoreEvent};
use service_runtime::clock::now_ms;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const STAGE: &str = "stream-scoring";

pub(crate) struct StreamScorer {
    pub(crate) consumer: Consumer,
    pub(crate) producer: Producer,
    pub(crate) slot: ModelSlot,
    /// A model scored beside the served one; its scores are published flagged `shadow`.
    pub(crate) shadow: Option<ModelSlot>,
    pub(crate) metrics: Metrics,
    pub(crate) batch_max: usize,
    pub(crate) linger: Duration,
    pub(crate) reasons: model::ReasonPolicy,
    pub(crate) retry: bus::RetryPolicy,
}

impl StreamScorer {
    pub(crate) async fn run(
        mut self,
        health: service_runtime::admin::Component,
        loops: bus::LoopMetrics,
        stop: CancellationToken,
    ) {
        // Nothing is consumed before a model is loaded: vectors wait in Kafka.
        if !self.slot.wait_loaded(&stop).await {
            return;
        }
        let this = &self;
        bus::BatchLoop {
            stage: STAGE,
            consumer: &self.consumer,
            max: self.batch_max,
            linger: self.linger,
            policy: self.retry,
            quarantine: &self.producer,
            health,
            metrics: loops.stage(STAGE),
        }
        .run(&stop, move |batch| {
            Box::pin(async move { this.process(&batch).await })
        })
        .await;
    }

    async fn process(&self, batch: &[Delivery]) -> Result<(), bus::BusError> {
        let Some(active) = self.slot.current() else {
            return Ok(());
        };
        let shadow = self.shadow.as_ref().and_then(|s| s.shadow_of(&active));
        let scored_at = Some(proto::time::from_unix_ms(now_ms()));
        let mut events = Vec::with_capacity(batch.len());
        let mut spans = Vec::with_capacity(batch.len());
        for d in batch {
            let span = d.span(STAGE);
            let vector: FeatureVector = match d.decode("feature vector") {
                Ok(v) => v,
                Err(error) => {
                    self.metrics.rejected_vectors.inc();
                    self.producer
                        .quarantine_delivery(d, STAGE, "payload", &error.to_string(), now_ms())
                        .await?;
                    continue;
                }
            };
            match active
                .model
                .score(&vector.schema_hash, &vector.values, self.reasons)
            {
                Ok(s) => {
                    let decision = decision_to_proto(s.decision);
                    self.metrics
                        .stream_scores
                        .with_label_values(&[decision.as_str_name()])
                        .inc();
                    let event = ScoreEvent {
                        transaction_id: vector.transaction_id,
                        user_id: vector.user_id,
                        model_id: active.reference.model_id.clone(),
                        model_version: active.reference.version.clone(),
                        probability: s.probability,
                        decision: decision as i32,
                        reasons: reasons_to_proto(&s),
                        event_time: vector.event_time,
                        scored_at,
                        schema_hash: vector.schema_hash,
                        shadow: false,
                        source: proto::v1::ScoreSource::Stream as i32,
                        degraded: false,
                    };
                    let shadowed = shadow.as_ref().and_then(|s| {
                        shadow_event(s, &event, &vector.values, &self.metrics, "stream")
                    });
                    events.push(event);
                    if let Some(e) = shadowed {
                        events.push(e);
                        spans.push(span.clone());
                    }
                    spans.push(span);
                }
                Err(error) => {
                    // A vector of another feature schema: never scored, kept with the reason.
                    self.metrics.rejected_vectors.inc();
                    tracing::error!(%error, transaction_id = %vector.transaction_id, "vector refused");
                    self.producer
                        .quarantine_delivery(d, STAGE, "schema_hash", &error.to_string(), now_ms())
                        .await?;
                }
            }
        }
        self.producer
            .send_all_traced(
                topics::SCORES,
                events
                    .iter()
                    .zip(&spans)
                    .map(|(e, span)| (e.user_id.as_str(), e, span)),
            )
            .await?;
        Ok(())
    }
}
