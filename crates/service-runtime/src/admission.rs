//! A service-wide limit on requests in flight, with load shedding beyond it.
//!
//! tonic's own limit (`concurrency_limit_per_connection`) counts per connection: a service
//! with 50 client connections admits 50 × the limit, so it does not protect the process. This
//! layer holds one semaphore for the whole server. A request that finds no permit is answered
//! at once with `RESOURCE_EXHAUSTED` naming the limit (not queued: a queue under overload
//! only turns excess load into latency for everyone). Health and reflection are exempt, so a
//! busy instance still answers its probes and is not restarted for being busy.
//!
//! Written here rather than taken from tower: `GlobalConcurrencyLimitLayer` with
//! `LoadShedLayer` sheds by the same rule, but it cannot exempt paths and its error surfaces
//! through tonic as "Too many active requests for the connection", which is false here.

use crate::gate::{Gated, Guard};
use prometheus::IntCounter;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tonic::codegen::http::Request;

/// Paths that are never shed: the probes and the tools.
fn exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// The limit shared by every connection of one server.
#[derive(Clone, Debug)]
pub struct AdmissionLayer {
    permits: Arc<Semaphore>,
    limit: usize,
    shed: Option<IntCounter>,
}

impl AdmissionLayer {
    /// At most `limit` requests in flight across all connections; `shed` counts the refused.
    pub fn new(limit: usize, shed: Option<IntCounter>) -> AdmissionLayer {
        AdmissionLayer {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            shed,
        }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Gated<S, AdmissionLayer>;
    fn layer(&self, inner: S) -> Self::Service {
        Gated {
            inner,
            guard: self.clone(),
        }
    }
}

impl Guard for AdmissionLayer {
    /// The permit, released when the response is ready; none for an exempt path.
    type Ticket = Option<tokio::sync::OwnedSemaphorePermit>;

    fn admit<B>(&self, request: &Request<B>) -> Result<Self::Ticket, tonic::Status> {
        if exempt(request.uri().path()) {
            return Ok(None);
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => {
                if let Some(c) = &self.shed {
                    c.inc();
                }
                Err(tonic::Status::resource_exhausted(format!(
                    "overloaded: {} requests already in flight (server.max_in_flight); retry with back-off",
                    self.limit
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;
    use tonic::body::Body;
    use tonic::codegen::http::Response;
    use tower::{Layer, ServiceExt};

    fn request(path: &str) -> Request<Body> {
        Request::builder().uri(path).body(Body::empty()).unwrap()
    }

    fn grpc_status(r: &Response<Body>) -> Option<&str> {
        r.headers().get("grpc-status").and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn beyond_the_limit_requests_are_shed_at_once_and_probes_still_pass() {
        let release = Arc::new(Notify::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let inner = {
            let (release, calls) = (release.clone(), calls.clone());
            tower::service_fn(move |_: Request<Body>| {
                let (release, calls) = (release.clone(), calls.clone());
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    release.notified().await;
                    Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
                }
            })
        };
        let shed = IntCounter::new("shed", "shed").unwrap();
        let svc = AdmissionLayer::new(2, Some(shed.clone())).layer(inner);

        // Two requests hold the two permits (across "connections": clones share them).
        let held: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(
                    svc.clone()
                        .oneshot(request("/vigil.v1.InferenceService/Score")),
                )
            })
            .collect();
        while calls.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        // The third is answered RESOURCE_EXHAUSTED (8) without reaching the service.
        let r = svc
            .clone()
            .oneshot(request("/vigil.v1.InferenceService/Score"))
            .await
            .unwrap();
        assert_eq!(grpc_status(&r), Some("8"));
        let message = r.headers().get("grpc-message").unwrap().to_str().unwrap();
        assert!(message.contains("max_in_flight"), "{message}");
        assert_eq!((calls.load(Ordering::SeqCst), shed.get()), (2, 1));

        // A health probe is not shed: it reaches the service.
        let probe = tokio::spawn(svc.clone().oneshot(request("/grpc.health.v1.Health/Check")));
        while calls.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        release.notify_waiters();
        for h in held {
            assert_eq!(grpc_status(&h.await.unwrap().unwrap()), None);
        }
        probe.await.unwrap().unwrap();

        // Permits come back when responses complete.
        let after = tokio::spawn(
            svc.clone()
                .oneshot(request("/vigil.v1.InferenceService/Score")),
        );
        while calls.load(Ordering::SeqCst) < 4 {
            tokio::task::yield_now().await;
        }
        release.notify_waiters();
        assert_eq!(grpc_status(&after.await.unwrap().unwrap()), None);
        assert_eq!(shed.get(), 1);
    }
}
