//! The one tower service behind Vigil's request gates ([`crate::admission`], the token check
//! of [`crate::security`]): ask the gate about a request; admitted, call the inner service and
//! keep the gate's ticket (e.g. a concurrency permit) until the response is produced; refused,
//! answer the gate's `Status` at once without calling it.

use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{BoxFuture, Service};

/// A decision on each request before it reaches the service.
pub trait Guard: Clone {
    /// Held while the admitted request runs; dropped when its response is ready.
    type Ticket: Send + 'static;
    fn admit<B>(&self, request: &Request<B>) -> Result<Self::Ticket, tonic::Status>;
}

/// `inner` behind `guard` (built by the guards' `tower::Layer` impls).
#[derive(Debug, Clone)]
pub struct Gated<S, G> {
    pub(crate) inner: S,
    pub(crate) guard: G,
}

impl<S, G, B> Service<Request<B>> for Gated<S, G>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    G: Guard,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.guard.admit(&request) {
            Ok(ticket) => {
                let response = self.inner.call(request);
                Box::pin(async move {
                    let r = response.await;
                    drop(ticket);
                    r
                })
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}
