//! Synchronous scores onto `vigil.scores.v1`, off the request path.
//!
//! A `Score` answer never waits for Kafka: the scoring core hands each event to a
//! [`ScoreSink`], and [`TopicSink`] queues it (bounded) for a task that publishes in batches
//! with the idempotent producer. What cannot be queued (the queue is full) or sent (the
//! producer gave up after its own retries) is counted by reason in
//! `vigil_inference_request_scores_dropped_total` and logged — a score record is an output the
//! client already has, so losing one costs a drift-window sample, never an answer.

use crate::metrics::Metrics;
use bus::{Producer, topics};
use proto::v1::ScoreEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where the scoring core records each synchronous score.
pub trait ScoreSink: Send + Sync + 'static {
    /// Must not block or wait: called on the request path.
    fn record(&self, event: ScoreEvent);
}

/// Queues scores for [`publish_loop`].
#[derive(Debug, Clone)]
pub struct TopicSink {
    tx: mpsc::Sender<(ScoreEvent, tracing::Span)>,
    metrics: Metrics,
}

impl ScoreSink for TopicSink {
    /// Queues the event with the current span (the request's, which continues the client's
    /// trace), so that the record carries that trace on.
    fn record(&self, event: ScoreEvent) {
        if self.tx.try_send((event, tracing::Span::current())).is_err() {
            self.metrics
                .request_scores_dropped
                .with_label_values(&["queue_full"])
                .inc();
        }
    }
}

/// Events sent per produce call.
const BATCH: usize = 500;

impl TopicSink {
    /// A sink with a queue of `capacity`, and the task that empties it into the scores
    /// topic until `stop`, then publishes what is still queued and ends.
    pub fn start(
        producer: Producer,
        capacity: usize,
        metrics: Metrics,
        tasks: &tokio_util::task::TaskTracker,
        stop: CancellationToken,
    ) -> TopicSink {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tasks.spawn(publish_loop(producer, rx, metrics.clone(), stop));
        TopicSink { tx, metrics }
    }
}

async fn publish_loop(
    producer: Producer,
    mut rx: mpsc::Receiver<(ScoreEvent, tracing::Span)>,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            () = stop.cancelled() => {
                // Drain what was answered before the stop.
                while let Ok(e) = rx.try_recv() {
                    batch.push(e);
                }
                send(&producer, &mut batch, &metrics).await;
                return;
            }
        };
        if n == 0 {
            return; // every sender is gone
        }
        send(&producer, &mut batch, &metrics).await;
    }
}

async fn send(
    producer: &Producer,
    batch: &mut Vec<(ScoreEvent, tracing::Span)>,
    metrics: &Metrics,
) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len() as u64;
    match producer
        .send_all_traced(
            topics::SCORES,
            batch.iter().map(|(e, span)| (e.user_id.as_str(), e, span)),
        )
        .await
    {
        Ok(_) => metrics.request_scores_published.inc_by(n),
        Err(error) => {
            metrics
                .request_scores_dropped
                .with_label_values(&["kafka"])
                .inc_by(n);
            tracing::error!(%error, count = n, "synchronous scores not published");
        }
    }
    batch.clear();
}
