//! Where feature vectors come from. Scoring depends on the [`FeatureSource`] trait, not on a
//! tonic client, so it is unit-tested without a network; [`GrpcFeatureSource`] is the real one.

use proto::v1::feature_service_client::FeatureServiceClient;
use proto::v1::{FeatureVector, GetFeatureVectorRequest, Transaction};
use service_runtime::security::{ClientSecurity, SecureChannel};
use std::time::Duration;

/// Why a vector could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("feature-service: {0}")]
    Status(#[from] tonic::Status),
    #[error(transparent)]
    Config(#[from] service_runtime::ConfigError),
    #[error("feature-service circuit breaker open: not called")]
    BreakerOpen,
}

impl SourceError {
    /// Whether the failure says the feature-service is unwell (it counts towards opening the
    /// breaker) rather than that this request was bad.
    fn is_dependency_failure(&self) -> bool {
        match self {
            SourceError::Status(s) => !matches!(
                s.code(),
                tonic::Code::InvalidArgument
                    | tonic::Code::NotFound
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::OutOfRange
            ),
            SourceError::BreakerOpen => true,
            SourceError::Config(_) => false,
        }
    }
}

/// Counts the breaker's moves (`inference_breaker_*`).
#[derive(Debug, Clone)]
pub struct BreakerMetrics {
    /// Calls answered degraded at once because the breaker was open.
    pub rejected: prometheus::IntCounter,
    /// Times the breaker opened.
    pub opened: prometheus::IntCounter,
    /// 0 closed, 1 half-open, 2 open.
    pub state: prometheus::IntGauge,
}

impl failsafe::Instrument for BreakerMetrics {
    fn on_call_rejected(&self) {
        self.rejected.inc();
    }
    fn on_open(&self) {
        tracing::warn!("feature-service circuit breaker open: scoring degraded without calling");
        self.opened.inc();
        self.state.set(2);
    }
    fn on_half_open(&self) {
        self.state.set(1);
    }
    fn on_closed(&self) {
        tracing::info!("feature-service circuit breaker closed");
        self.state.set(0);
    }
}

/// Open times doubling from a start to a cap. (failsafe's own `backoff::exponential` counts
/// in whole seconds and refuses a start under 1 s; a scorer wants to probe sooner.)
#[derive(Debug, Clone)]
struct Doubling {
    next: Duration,
    max: Duration,
}

impl Iterator for Doubling {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        Some(now)
    }
}

type Breaker =
    failsafe::StateMachine<failsafe::failure_policy::ConsecutiveFailures<Doubling>, BreakerMetrics>;

/// A [`FeatureSource`] behind a circuit breaker (failsafe): after `failures` consecutive
/// dependency failures it answers [`SourceError::BreakerOpen`] at once, without calling, for
/// `open` (doubling up to `max_open` while probes keep failing); then calls probe again
/// (half-open) and the first success closes it. So while the feature-service is down a Score
/// costs microseconds, not the client's deadline.
pub struct BreakerSource<S> {
    inner: S,
    breaker: Breaker,
}

impl<S> std::fmt::Debug for BreakerSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerSource").finish_non_exhaustive()
    }
}

impl<S: FeatureSource> BreakerSource<S> {
    pub fn new(
        inner: S,
        failures: u32,
        open: Duration,
        max_open: Duration,
        metrics: BreakerMetrics,
    ) -> Self {
        let policy = failsafe::failure_policy::consecutive_failures(
            failures.max(1),
            Doubling {
                next: open,
                max: max_open.max(open),
            },
        );
        BreakerSource {
            inner,
            breaker: failsafe::Config::new()
                .failure_policy(policy)
                .instrument(metrics)
                .build(),
        }
    }
}

#[tonic::async_trait]
impl<S: FeatureSource> FeatureSource for BreakerSource<S> {
    async fn vector(&self, transaction: &Transaction) -> Result<FeatureVector, SourceError> {
        use failsafe::futures::CircuitBreaker as _;
        match self
            .breaker
            .call_with(
                SourceError::is_dependency_failure,
                self.inner.vector(transaction),
            )
            .await
        {
            Ok(v) => Ok(v),
            Err(failsafe::Error::Inner(e)) => Err(e),
            Err(failsafe::Error::Rejected) => Err(SourceError::BreakerOpen),
        }
    }
}

/// A provider of feature vectors for the synchronous path.
#[tonic::async_trait]
pub trait FeatureSource: Send + Sync + 'static {
    async fn vector(&self, transaction: &Transaction) -> Result<FeatureVector, SourceError>;
}

/// The feature-service over gRPC (lazy connection, per-call deadline, TLS and token as
/// `[features.security]` says).
#[derive(Debug, Clone)]
pub struct GrpcFeatureSource {
    client: FeatureServiceClient<SecureChannel>,
}

impl GrpcFeatureSource {
    pub fn new(
        endpoint: &str,
        timeout: Duration,
        security: &ClientSecurity,
    ) -> Result<Self, SourceError> {
        let channel = security.channel_lazy("features.security", endpoint, |e| {
            e.timeout(timeout)
                .connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
        })?;
        Ok(GrpcFeatureSource {
            client: FeatureServiceClient::new(channel),
        })
    }
}

#[tonic::async_trait]
impl FeatureSource for GrpcFeatureSource {
    async fn vector(&self, transaction: &Transaction) -> Result<FeatureVector, SourceError> {
        let mut request = tonic::Request::new(GetFeatureVectorRequest {
            transaction: Some(transaction.clone()),
        });
        // Propagate the trace context to the feature-service.
        for (k, v) in service_runtime::telemetry::current_context_headers().0 {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(k.as_bytes()),
                tonic::metadata::MetadataValue::try_from(v.as_str()),
            ) {
                request.metadata_mut().insert(key, value);
            }
        }
        Ok(self
            .client
            .clone()
            .get_feature_vector(request)
            .await?
            .into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    /// Fails with `code` while `down`, counting calls.
    struct Flaky {
        down: Arc<AtomicBool>,
        code: tonic::Code,
        calls: Arc<AtomicU32>,
    }

    #[tonic::async_trait]
    impl FeatureSource for Flaky {
        async fn vector(&self, _: &Transaction) -> Result<FeatureVector, SourceError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                Err(tonic::Status::new(self.code, "boom").into())
            } else {
                Ok(FeatureVector::default())
            }
        }
    }

    fn metrics() -> BreakerMetrics {
        BreakerMetrics {
            rejected: prometheus::IntCounter::new("r", "r").unwrap(),
            opened: prometheus::IntCounter::new("o", "o").unwrap(),
            state: prometheus::IntGauge::new("s", "s").unwrap(),
        }
    }

    type Fixture = (
        BreakerSource<Flaky>,
        Arc<AtomicBool>,
        Arc<AtomicU32>,
        BreakerMetrics,
    );

    fn breaker(code: tonic::Code) -> Fixture {
        let (down, calls) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU32::new(0)));
        let source = Flaky {
            down: down.clone(),
            code,
            calls: calls.clone(),
        };
        let m = metrics();
        let b = BreakerSource::new(
            source,
            3,
            Duration::from_millis(100),
            Duration::from_millis(400),
            m.clone(),
        );
        (b, down, calls, m)
    }

    #[tokio::test]
    async fn opens_after_consecutive_failures_answers_without_calling_then_probes_and_closes() {
        let (b, down, calls, m) = breaker(tonic::Code::Unavailable);
        let t = Transaction::default();
        for _ in 0..3 {
            assert!(matches!(b.vector(&t).await, Err(SourceError::Status(_))));
        }
        // Open: answered at once, the feature-service not called.
        let started = std::time::Instant::now();
        for _ in 0..100 {
            assert!(matches!(b.vector(&t).await, Err(SourceError::BreakerOpen)));
        }
        assert!(started.elapsed() < Duration::from_millis(50));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            (m.state.get(), m.opened.get(), m.rejected.get()),
            (2, 1, 100)
        );
        // After the open time a call probes (half-open); the service is back: closed.
        down.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(b.vector(&t).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(b.vector(&t).await.is_ok());
        assert_eq!(m.state.get(), 0);
    }

    #[tokio::test]
    async fn a_request_the_feature_service_refuses_does_not_open_the_breaker() {
        let (b, _down, calls, m) = breaker(tonic::Code::InvalidArgument);
        let t = Transaction::default();
        for _ in 0..10 {
            assert!(matches!(b.vector(&t).await, Err(SourceError::Status(_))));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 10);
        assert_eq!(m.opened.get(), 0);
    }
}
