//! The ingest service's metrics: every name is defined here, once.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

pub(crate) const OUTCOME_ACCEPTED: &str = "accepted";
pub(crate) const OUTCOME_DUPLICATE: &str = "duplicate";
pub(crate) const OUTCOME_REJECTED: &str = "rejected";
pub(crate) const OUTCOME_DEFERRED: &str = "deferred";

#[derive(Clone, Debug)]
pub(crate) struct Metrics {
    /// Transactions by outcome.
    pub(crate) transactions: IntCounterVec,
    pub(crate) labels: IntCounterVec,
    pub(crate) profiles: IntCounterVec,
    /// Seconds from request to Kafka acknowledgement of a batch.
    pub(crate) publish_seconds: Histogram,
    /// Published batches whose duplicate markers could not be confirmed.
    pub(crate) confirm_failures: IntCounter,
}

impl Metrics {
    pub(crate) fn register(registry: &Registry) -> Result<Metrics, prometheus::Error> {
        let transactions = IntCounterVec::new(
            Opts::new(
                "ingest_transactions_total",
                "Transactions received, by outcome",
            ),
            &["outcome"],
        )?;
        let labels = IntCounterVec::new(
            Opts::new("ingest_labels_total", "Labels received, by outcome"),
            &["outcome"],
        )?;
        let profiles = IntCounterVec::new(
            Opts::new(
                "ingest_profiles_total",
                "Profile versions received, by outcome",
            ),
            &["outcome"],
        )?;
        let publish_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "ingest_publish_seconds",
                "Time to publish a batch and get Kafka acks",
            )
            .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14)?),
        )?;
        let confirm_failures = IntCounter::new(
            "ingest_confirm_failures_total",
            "Published batches whose duplicate markers could not be confirmed in Redis",
        )?;
        registry.register(Box::new(confirm_failures.clone()))?;
        registry.register(Box::new(transactions.clone()))?;
        registry.register(Box::new(labels.clone()))?;
        registry.register(Box::new(profiles.clone()))?;
        registry.register(Box::new(publish_seconds.clone()))?;
        Ok(Metrics {
            transactions,
            labels,
            profiles,
            publish_seconds,
            confirm_failures,
        })
    }
}
