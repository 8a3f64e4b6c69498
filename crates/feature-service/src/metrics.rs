//! The feature-service's metrics, defined once.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

pub(crate) const SKIP_ALREADY_APPLIED: &str = "already_applied";
pub(crate) const SKIP_DUPLICATE_ID: &str = "duplicate_transaction_id";
pub(crate) const SKIP_QUARANTINED: &str = "quarantined";
pub(crate) const LABEL_COUNTED: &str = "fraud_report_counted";
pub(crate) const LABEL_NOT_FRAUD: &str = "not_fraud";
pub(crate) const LABEL_UNRESOLVED: &str = "transaction_unknown";
pub(crate) const LABEL_INVALID: &str = "invalid";
pub(crate) const PROFILE_FOLDED: &str = "folded";
pub(crate) const PROFILE_UNCHANGED: &str = "unchanged";
pub(crate) const PROFILE_INVALID: &str = "invalid";

#[derive(Clone, Debug)]
pub(crate) struct Metrics {
    pub(crate) applied: IntCounter,
    pub(crate) skipped: IntCounterVec,
    pub(crate) lake_rows: IntCounterVec,
    pub(crate) batch_seconds: Histogram,
    pub(crate) labels: IntCounterVec,
    pub(crate) profiles: IntCounterVec,
    pub(crate) rewinds: IntCounter,
    pub(crate) past_retention: IntCounter,
}

impl Metrics {
    pub(crate) fn register(r: &Registry) -> Result<Metrics, prometheus::Error> {
        let applied = IntCounter::new(
            "features_transactions_applied_total",
            "Transactions folded into online state",
        )?;
        let skipped = IntCounterVec::new(
            Opts::new(
                "features_transactions_skipped_total",
                "Transactions not applied, by reason",
            ),
            &["reason"],
        )?;
        let lake_rows = IntCounterVec::new(
            Opts::new("lake_rows_written_total", "Rows written to the lake"),
            &["table"],
        )?;
        let batch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "features_batch_seconds",
                "Speed-layer batch processing time",
            )
            .buckets(prometheus::exponential_buckets(0.001, 2.0, 14)?),
        )?;
        let labels = IntCounterVec::new(
            Opts::new(
                "features_labels_total",
                "Labels consumed by the speed layer, by outcome",
            ),
            &["outcome"],
        )?;
        let profiles = IntCounterVec::new(
            Opts::new(
                "features_profiles_total",
                "Profile versions consumed by the speed layer, by outcome",
            ),
            &["outcome"],
        )?;
        let rewinds = IntCounter::new(
            "features_speed_rewinds_total",
            "Partitions the speed layer re-read because Redis lost offsets it had committed",
        )?;
        r.register(Box::new(rewinds.clone()))?;
        let past_retention = IntCounter::new(
            "features_speed_rewinds_past_retention_total",
            "Rewinds to an offset the topic no longer holds: state lost, rebuild with vigil-materialize",
        )?;
        r.register(Box::new(past_retention.clone()))?;
        for c in [&skipped, &lake_rows, &labels, &profiles] {
            r.register(Box::new(c.clone()))?;
        }
        r.register(Box::new(applied.clone()))?;
        r.register(Box::new(batch_seconds.clone()))?;
        Ok(Metrics {
            applied,
            skipped,
            lake_rows,
            batch_seconds,
            labels,
            profiles,
            rewinds,
            past_retention,
        })
    }
}
