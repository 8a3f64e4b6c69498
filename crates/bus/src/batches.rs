//! The standard consumer loop: batches in, processed idempotently, offsets committed — and a
//! pipeline that never stalls on one record nor skips one because a dependency is down.
//!
//! Every failure is one of two kinds ([`Failure::is_transient`]):
//! * **a dependency's** (the broker, Redis, the disk): retried with capped exponential
//!   back-off for as long as it lasts; after [`RetryPolicy::unhealthy_after`] consecutive
//!   failures the loop's health component holds readiness back (with the reason), and the
//!   first success gives it back. Nothing is skipped.
//! * **the record's own** (a stored state that cannot be read, a value too large to store):
//!   the batch is retried [`RetryPolicy::max_attempts`] times, then its records are processed
//!   one at a time, and a record that still fails `max_attempts` times on its own goes to
//!   `vigil.quarantine.v1` with the stage and the reason; the loop moves on.
//!
//! Both are safe only because every Vigil consumer's processing is idempotent: applying a
//! batch again after a failure, or its records one by one, applies nothing twice.

use crate::{Consumer, Delivery, Producer};
use serde::Deserialize;
use service_runtime::admin::Component;
use service_runtime::clock::now_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A processing failure, classified.
pub trait Failure: std::fmt::Display {
    /// True when the failure is a dependency's and retrying later can succeed; false when it
    /// is the record's own and would fail again however often it is retried.
    fn is_transient(&self) -> bool;
    /// The field of the record the failure is about, when known (for the quarantine record).
    fn field(&self) -> &'static str {
        ""
    }
}

impl Failure for std::convert::Infallible {
    fn is_transient(&self) -> bool {
        match *self {}
    }
}

/// How a consumer loop retries (the `kafka.retry` config section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts of a failing batch, then of each of its records alone, before a record that
    /// fails for a reason of its own is quarantined.
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Consecutive transient failures before the loop holds the service's readiness back.
    pub unhealthy_after: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 5_000,
            unhealthy_after: 3,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let ms = self
            .initial_backoff_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.max_backoff_ms);
        Duration::from_millis(ms)
    }
}

/// The counters of a service's consumer loops, by stage: `consumer_retries_total` (failed
/// attempts, of either kind) and `consumer_quarantined_total` (records that kept failing).
/// Registered once per service; [`LoopMetrics::stage`] hands each loop its own.
#[derive(Debug, Clone)]
pub struct LoopMetrics {
    retries: prometheus::IntCounterVec,
    quarantined: prometheus::IntCounterVec,
}

/// One loop's counters.
#[derive(Debug, Clone)]
pub struct StageMetrics {
    pub retries: prometheus::IntCounter,
    pub quarantined: prometheus::IntCounter,
}

impl LoopMetrics {
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let retries = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "consumer_retries_total",
                "Failed attempts to process a consumed batch or record, by stage",
            ),
            &["stage"],
        )?;
        let quarantined = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "consumer_quarantined_total",
                "Consumed records quarantined after failing repeatedly, by stage",
            ),
            &["stage"],
        )?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(quarantined.clone()))?;
        Ok(LoopMetrics {
            retries,
            quarantined,
        })
    }

    pub fn stage(&self, stage: &str) -> StageMetrics {
        StageMetrics {
            retries: self.retries.with_label_values(&[stage]),
            quarantined: self.quarantined.with_label_values(&[stage]),
        }
    }
}

/// One consumer loop's wiring.
#[derive(Debug)]
pub struct BatchLoop<'a> {
    /// The stage, named in logs, health and quarantine records (e.g. `speed-layer`).
    pub stage: &'static str,
    pub consumer: &'a Consumer,
    pub max: usize,
    pub linger: Duration,
    pub policy: RetryPolicy,
    /// Where records that keep failing go.
    pub quarantine: &'a Producer,
    pub health: Component,
    pub metrics: StageMetrics,
}

/// The future of processing one batch (boxed: one allocation per batch, not per message).
pub type BatchFuture<'a, E> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), E>> + Send + 'a>>;

/// Why an attempt sequence ended without success.
enum Gave {
    /// The record (or batch) failed for a reason of its own `max_attempts` times.
    Up(String, &'static str),
    /// `stop` was cancelled meanwhile.
    Stopped,
}

impl BatchLoop<'_> {
    /// Runs until `stop`: take a batch, process it (see the module doc for failures), commit
    /// its offsets as a resume hint. On `stop`, an unfinished batch is left uncommitted (it is
    /// redelivered after restart) and the offsets of the finished ones are committed
    /// synchronously before returning.
    pub async fn run<'s, E: Failure>(
        self,
        stop: &CancellationToken,
        mut process: impl FnMut(Arc<[Delivery]>) -> BatchFuture<'s, E>,
    ) {
        let guard = self.health.guard();
        let mut consume_failures = 0u32;
        loop {
            let batch = tokio::select! {
                () = stop.cancelled() => break,
                b = self.consumer.next_batch(self.max, self.linger) => b,
            };
            let batch: Arc<[Delivery]> = match batch {
                Ok(b) => b.into(),
                Err(error) => {
                    consume_failures += 1;
                    self.transient(&error, consume_failures);
                    if self.sleep(stop, consume_failures).await {
                        break;
                    }
                    continue;
                }
            };
            consume_failures = 0;
            match self.attempt(stop, &mut process, batch.clone()).await {
                Ok(()) => {}
                Err(Gave::Stopped) => break,
                Err(Gave::Up(reason, _)) if batch.len() > 1 => {
                    tracing::warn!(stage = self.stage, %reason, size = batch.len(), "batch keeps failing; applying its records one at a time");
                    if !self.one_by_one(stop, &mut process, &batch).await {
                        break;
                    }
                }
                Err(Gave::Up(reason, field)) => {
                    if !self.quarantine(stop, &batch[0], field, &reason).await {
                        break;
                    }
                }
            }
            if let Err(error) = self.consumer.commit(&batch) {
                tracing::warn!(%error, stage = self.stage, "offset commit failed (resume hint only)");
            }
        }
        if let Err(error) = self.consumer.commit_final() {
            tracing::warn!(%error, stage = self.stage, "final offset commit failed (resume hint only)");
        }
        tracing::info!(stage = self.stage, "consumer stopped");
        guard.finish();
    }

    /// Processes `batch` until it succeeds, `stop`, or it failed for its own reasons
    /// `max_attempts` times. Transient failures never count towards that.
    async fn attempt<'s, E: Failure>(
        &self,
        stop: &CancellationToken,
        process: &mut impl FnMut(Arc<[Delivery]>) -> BatchFuture<'s, E>,
        batch: Arc<[Delivery]>,
    ) -> Result<(), Gave> {
        let (mut own, mut transient) = (0u32, 0u32);
        loop {
            let error = match process(batch.clone()).await {
                Ok(()) => {
                    if transient >= self.policy.unhealthy_after {
                        tracing::info!(stage = self.stage, "dependency recovered");
                    }
                    self.health.healthy();
                    return Ok(());
                }
                Err(e) => e,
            };
            self.metrics.retries.inc();
            let attempt = if error.is_transient() {
                transient += 1;
                self.transient(&error, transient);
                transient
            } else {
                own += 1;
                tracing::warn!(stage = self.stage, %error, attempt = own, "processing failed");
                if own >= self.policy.max_attempts.max(1) {
                    return Err(Gave::Up(error.to_string(), error.field()));
                }
                own
            };
            if self.sleep(stop, attempt).await {
                tracing::info!(
                    stage = self.stage,
                    "stopped with a batch unapplied; it will be redelivered"
                );
                return Err(Gave::Stopped);
            }
        }
    }

    /// Processes each record of `batch` alone, quarantining those that fail on their own.
    /// False when stopped.
    async fn one_by_one<'s, E: Failure>(
        &self,
        stop: &CancellationToken,
        process: &mut impl FnMut(Arc<[Delivery]>) -> BatchFuture<'s, E>,
        batch: &[Delivery],
    ) -> bool {
        for d in batch {
            match self.attempt(stop, process, Arc::from([d.clone()])).await {
                Ok(()) => {}
                Err(Gave::Stopped) => return false,
                Err(Gave::Up(reason, field)) => {
                    if !self.quarantine(stop, d, field, &reason).await {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Sends `d` to quarantine (retrying the broker until it takes it). False when stopped.
    async fn quarantine(
        &self,
        stop: &CancellationToken,
        d: &Delivery,
        field: &str,
        reason: &str,
    ) -> bool {
        tracing::error!(stage = self.stage, topic = %d.topic, partition = d.partition, offset = d.offset, %reason, "record quarantined after repeated failures");
        let reason = format!(
            "{}: {}",
            self.stage,
            service_runtime::truncated(reason, 500)
        );
        let mut attempt = 0;
        loop {
            match self
                .quarantine
                .quarantine_delivery(d, self.stage, field, &reason, now_ms())
                .await
            {
                Ok(()) => {
                    self.metrics.quarantined.inc();
                    return true;
                }
                Err(error) => {
                    attempt += 1;
                    self.transient(&error, attempt);
                    if self.sleep(stop, attempt).await {
                        return false;
                    }
                }
            }
        }
    }

    fn transient(&self, error: &dyn std::fmt::Display, consecutive: u32) {
        tracing::warn!(stage = self.stage, %error, consecutive, "dependency failing; retrying");
        if consecutive >= self.policy.unhealthy_after {
            self.health.failing(error);
        }
    }

    /// Sleeps the back-off of `attempt`; true when `stop` came first.
    async fn sleep(&self, stop: &CancellationToken, attempt: u32) -> bool {
        tokio::select! {
            () = tokio::time::sleep(self.policy.backoff(attempt.saturating_sub(1))) => false,
            () = stop.cancelled() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_from_the_initial_delay_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(5), Duration::from_millis(3_200));
        assert_eq!(p.backoff(6), Duration::from_millis(5_000));
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(5_000));
    }
}
