//! The inference service's metrics, defined once.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone, Debug)]
pub struct Metrics {
    pub(crate) scores: IntCounterVec,
    pub(crate) stream_scores: IntCounterVec,
    pub(crate) score_seconds: Histogram,
    /// The feature fetch of a `Score` (`FeatureSource::vector`), answered or failed.
    pub(crate) feature_fetch_seconds: Histogram,
    /// The model's part of a `Score`: the score, and the reasons on the blocking pool.
    pub(crate) model_seconds: Histogram,
    pub(crate) degraded: IntCounter,
    pub(crate) swaps: IntCounter,
    pub(crate) load_failures: IntCounter,
    pub(crate) rejected_vectors: IntCounter,
    pub(crate) request_scores_published: IntCounter,
    pub(crate) request_scores_dropped: IntCounterVec,
    /// Shadow scores recorded (by source: request, stream).
    pub(crate) shadow_scores: IntCounterVec,
    /// Vectors the shadow model refused (another feature schema): no shadow score for them.
    pub(crate) shadow_refused: IntCounter,
}

impl Metrics {
    pub fn register(r: &Registry) -> Result<Metrics, prometheus::Error> {
        let scores = IntCounterVec::new(
            Opts::new("inference_scores_total", "Synchronous scores by decision"),
            &["decision"],
        )?;
        let stream_scores = IntCounterVec::new(
            Opts::new("inference_stream_scores_total", "Stream scores by decision"),
            &["decision"],
        )?;
        let score_seconds = Histogram::with_opts(
            HistogramOpts::new("inference_score_seconds", "Synchronous Score latency")
                .buckets(prometheus::exponential_buckets(0.0001, 2.0, 16)?),
        )?;
        // Score's hops, on the same buckets, so that its p99 can be broken down.
        let feature_fetch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "inference_feature_fetch_seconds",
                "Synchronous Score: feature vector fetch latency (answered or failed)",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 2.0, 16)?),
        )?;
        let model_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "inference_model_seconds",
                "Synchronous Score: model latency (score, and reasons when computed)",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 2.0, 16)?),
        )?;
        let degraded = IntCounter::new(
            "inference_degraded_total",
            "Scores computed without the feature-service",
        )?;
        let swaps = IntCounter::new("inference_model_swaps_total", "Models swapped in")?;
        let load_failures = IntCounter::new(
            "inference_model_load_failures_total",
            "Attempts to load the alias's version that failed (the current model kept serving)",
        )?;
        let rejected_vectors = IntCounter::new(
            "inference_rejected_vectors_total",
            "Stream vectors refused (schema mismatch, undecodable)",
        )?;
        r.register(Box::new(scores.clone()))?;
        r.register(Box::new(stream_scores.clone()))?;
        r.register(Box::new(score_seconds.clone()))?;
        r.register(Box::new(feature_fetch_seconds.clone()))?;
        r.register(Box::new(model_seconds.clone()))?;
        r.register(Box::new(degraded.clone()))?;
        r.register(Box::new(swaps.clone()))?;
        r.register(Box::new(load_failures.clone()))?;
        let request_scores_published = IntCounter::new(
            "inference_request_scores_published_total",
            "Synchronous scores published to the scores topic",
        )?;
        let request_scores_dropped = IntCounterVec::new(
            Opts::new(
                "inference_request_scores_dropped_total",
                "Synchronous scores not published: queue_full (the answer never waits), kafka (the send failed)",
            ),
            &["reason"],
        )?;
        r.register(Box::new(rejected_vectors.clone()))?;
        r.register(Box::new(request_scores_published.clone()))?;
        r.register(Box::new(request_scores_dropped.clone()))?;
        let shadow_scores = IntCounterVec::new(
            Opts::new(
                "inference_shadow_scores_total",
                "Scores of the shadow model recorded on the scores topic (never answered)",
            ),
            &["source"],
        )?;
        let shadow_refused = IntCounter::new(
            "inference_shadow_refused_total",
            "Vectors the shadow model refused (another feature schema)",
        )?;
        r.register(Box::new(shadow_scores.clone()))?;
        r.register(Box::new(shadow_refused.clone()))?;
        Ok(Metrics {
            scores,
            stream_scores,
            score_seconds,
            feature_fetch_seconds,
            model_seconds,
            degraded,
            swaps,
            load_failures,
            rejected_vectors,
            request_scores_published,
            request_scores_dropped,
            shadow_scores,
            shadow_refused,
        })
    }
}

/// The circuit breaker's counters (see [`crate::source::BreakerSource`]).
pub fn breaker_metrics(r: &Registry) -> Result<crate::source::BreakerMetrics, prometheus::Error> {
    let rejected = IntCounter::new(
        "inference_breaker_rejected_total",
        "Feature fetches not attempted because the circuit breaker was open",
    )?;
    let opened = IntCounter::new(
        "inference_breaker_opened_total",
        "Times the feature-service circuit breaker opened",
    )?;
    let state = prometheus::IntGauge::new(
        "inference_breaker_state",
        "Feature-service circuit breaker: 0 closed, 1 half-open, 2 open",
    )?;
    r.register(Box::new(rejected.clone()))?;
    r.register(Box::new(opened.clone()))?;
    r.register(Box::new(state.clone()))?;
    Ok(crate::source::BreakerMetrics {
        rejected,
        opened,
        state,
    })
}
