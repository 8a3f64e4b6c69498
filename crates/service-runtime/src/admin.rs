//! The admin HTTP server: Prometheus `/metrics`, liveness `/healthz`, readiness `/readyz`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::serve::ListenerExt;
use prometheus::{Encoder, Registry, TextEncoder};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Whether the service is ready to take traffic, and whether it is alive. Watchable: the gRPC
/// health service follows readiness (see [`crate::grpc::serve_service`]), so `/readyz`,
/// Kubernetes' gRPC probes, the smoke check and a blue/green switch all read the same truth.
///
/// Ready means: the service said so ([`Readiness::set`]: a model loaded and verified, a server
/// serving), no [`Component`] reports a failing dependency, and no consumer loop has died.
/// Alive (`/healthz`) means no loop has died: a loop that ended while the service was not
/// stopping (a panic, an unexpected exit) makes the process unhealthy, so it is restarted.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    ready: tokio::sync::watch::Sender<bool>,
    state: std::sync::Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    service_ready: bool,
    /// Components currently failing, with the reason.
    failing: std::collections::BTreeMap<String, String>,
    /// Loops that ended unexpectedly.
    dead: std::collections::BTreeSet<String>,
}

impl Health {
    fn ready(&self) -> bool {
        self.service_ready && self.failing.is_empty() && self.dead.is_empty()
    }
}

/// Longest reason kept per component (reasons often quote a dependency's error).
const MAX_REASON: usize = 300;

impl Default for Readiness {
    fn default() -> Self {
        Readiness(Arc::new(Inner {
            ready: tokio::sync::watch::Sender::new(false),
            state: std::sync::Mutex::default(),
        }))
    }
}

impl Readiness {
    /// Sets the service's own readiness (the components still have their say).
    pub fn set(&self, ready: bool) {
        self.update(|s| s.service_ready = ready);
    }
    /// Whether the service is ready: its own flag, no failing component, no dead loop.
    pub fn get(&self) -> bool {
        *self.0.ready.borrow()
    }
    /// Whether every loop is still running (liveness).
    pub fn alive(&self) -> bool {
        self.lock().dead.is_empty()
    }
    /// A receiver that sees every change from now on (and the current value).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.ready.subscribe()
    }
    /// A named part of the service (a consumer loop, a dependency) that can hold readiness
    /// back while it fails and, through [`Component::guard`], report its own death.
    pub fn component(&self, name: impl Into<String>) -> Component {
        Component {
            readiness: self.clone(),
            name: name.into(),
        }
    }
    /// What holds readiness back, one line per cause (empty when ready).
    pub fn causes(&self) -> Vec<String> {
        let s = self.lock();
        let mut out = Vec::new();
        if !s.service_ready {
            out.push("service: not ready".to_owned());
        }
        out.extend(
            s.dead
                .iter()
                .map(|n| format!("{n}: loop ended unexpectedly")),
        );
        out.extend(s.failing.iter().map(|(n, r)| format!("{n}: {r}")));
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that
        // matters (each update is one insert or remove), so a poisoned lock is still used.
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut Health)) {
        let ready = {
            let mut s = self.lock();
            f(&mut s);
            s.ready()
        };
        self.0
            .ready
            .send_if_modified(|r| std::mem::replace(r, ready) != ready);
    }
}

/// A named part of a service whose failures hold readiness back (see [`Readiness::component`]).
#[derive(Debug, Clone)]
pub struct Component {
    readiness: Readiness,
    name: String,
}

impl Component {
    /// The component works (again).
    pub fn healthy(&self) {
        self.readiness.update(|s| {
            s.failing.remove(&self.name);
        });
    }
    /// The component fails, for `reason`: the service is not ready until [`Self::healthy`].
    pub fn failing(&self, reason: &dyn std::fmt::Display) {
        let reason = crate::truncated(&reason.to_string(), MAX_REASON);
        self.readiness.update(|s| {
            s.failing.insert(self.name.clone(), reason);
        });
    }
    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// A guard held by the loop this component is: dropped without [`LoopGuard::finish`]
    /// (the loop panicked or returned while not stopping), it marks the loop dead — not ready,
    /// and not alive.
    pub fn guard(&self) -> LoopGuard {
        LoopGuard {
            component: self.clone(),
            finished: false,
        }
    }
}

/// Probes a dependency every `every` until `stop`, for services whose dependencies no
/// consumer loop exercises (ingest's Redis and broker are used only when a request comes).
/// After `unhealthy_after` failed probes in a row (an error, or no answer within `every`) the
/// component holds readiness back with the reason; the first success gives it back.
pub async fn probe<F, Fut, E>(
    component: Component,
    every: std::time::Duration,
    unhealthy_after: u32,
    mut check: F,
    stop: CancellationToken,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut failures = 0_u32;
    loop {
        let failure = match tokio::time::timeout(every, check()).await {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("no answer within {every:?}")),
        };
        match failure {
            None => {
                failures = 0;
                component.healthy();
            }
            Some(reason) => {
                failures += 1;
                if failures >= unhealthy_after {
                    component.failing(&format!("{failures} probes failed in a row: {reason}"));
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => break,
        }
    }
}

/// See [`Component::guard`].
#[derive(Debug)]
pub struct LoopGuard {
    component: Component,
    finished: bool,
}

impl LoopGuard {
    /// The loop ended as asked (shutdown): not a death.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for LoopGuard {
    fn drop(&mut self) {
        if !self.finished {
            tracing::error!(component = %self.component.name, "loop ended unexpectedly");
            let name = self.component.name.clone();
            self.component.readiness.update(|s| {
                s.dead.insert(name);
            });
        }
    }
}

#[derive(Clone)]
struct AdminState {
    registry: Registry,
    readiness: Readiness,
}

async fn metrics(State(state): State<AdminState>) -> Result<String, (StatusCode, String)> {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&state.registry.gather(), &mut buf)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    String::from_utf8(buf).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, String) {
    if state.readiness.get() {
        (StatusCode::OK, "ready\n".into())
    } else {
        let mut body = "not ready\n".to_owned();
        for cause in state.readiness.causes() {
            body.push_str(&cause);
            body.push('\n');
        }
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

async fn healthz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.readiness.alive() {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "a loop ended unexpectedly (see /readyz)\n",
        )
    }
}

/// Serves the admin endpoints on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    readiness: Readiness,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AdminState {
            registry,
            readiness,
        });
    // Scrapes and probes are small writes; without TCP_NODELAY a response can wait for the
    // client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "admin connection: could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::Readiness;

    #[tokio::test]
    async fn a_probe_holds_readiness_back_after_failures_in_a_row_and_gives_it_back() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
        let r = Readiness::default();
        r.set(true);
        let (up, probes) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU32::new(0)));
        let stop = tokio_util::sync::CancellationToken::new();
        let task = {
            let (up, probes) = (up.clone(), probes.clone());
            tokio::spawn(super::probe(
                r.component("redis"),
                std::time::Duration::from_millis(5),
                3,
                move || {
                    let (up, probes) = (up.clone(), probes.clone());
                    async move {
                        probes.fetch_add(1, Ordering::SeqCst);
                        if up.load(Ordering::SeqCst) {
                            Ok(())
                        } else {
                            Err("connection refused")
                        }
                    }
                },
                stop.clone(),
            ))
        };
        let until = async |what: &str, ok: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !ok() {
                assert!(std::time::Instant::now() < deadline, "timed out: {what}");
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        };
        until("a first probe", &|| probes.load(Ordering::SeqCst) >= 1).await;
        assert!(r.get());
        up.store(false, Ordering::SeqCst);
        let from = probes.load(Ordering::SeqCst);
        until("one failed probe", &|| {
            probes.load(Ordering::SeqCst) >= from + 2
        })
        .await;
        // Not after one or two failures (a blip), but after three.
        until("not ready", &|| !r.get()).await;
        assert!(probes.load(Ordering::SeqCst) >= from + 3);
        let causes = r.causes().join(" ");
        assert!(
            causes.contains("redis") && causes.contains("connection refused"),
            "{causes}"
        );
        up.store(true, Ordering::SeqCst);
        until("ready again", &|| r.get()).await;
        stop.cancel();
        task.await.unwrap();
    }

    #[test]
    fn a_failing_component_holds_readiness_back_until_it_recovers() {
        let r = Readiness::default();
        let changes = r.subscribe();
        r.set(true);
        assert!(r.get());
        let redis = r.component("speed-layer");
        redis.failing(&"redis: connection refused");
        assert!(!r.get());
        assert!(r.alive(), "a failing dependency is not a dead loop");
        assert_eq!(r.causes(), vec!["speed-layer: redis: connection refused"]);
        assert!(changes.has_changed().unwrap());
        redis.healthy();
        assert!(r.get());
        assert!(r.causes().is_empty());
    }

    #[test]
    fn a_loop_that_ends_without_being_stopped_is_dead_and_one_that_finishes_is_not() {
        let r = Readiness::default();
        r.set(true);
        r.component("lake-writer").guard().finish();
        assert!(r.get() && r.alive());
        let guard = r.component("speed-layer").guard();
        let died = std::thread::spawn(move || {
            let _held = guard;
            panic!("the loop panics");
        })
        .join();
        assert!(died.is_err());
        assert!(!r.get(), "a dead loop makes the service not ready");
        assert!(!r.alive(), "and not alive, so it is restarted");
        assert_eq!(r.causes(), vec!["speed-layer: loop ended unexpectedly"]);
    }

    #[test]
    fn long_reasons_are_truncated() {
        let r = Readiness::default();
        r.component("c").failing(&"x".repeat(10_000));
        assert!(r.causes()[0].chars().count() < 400);
    }
}
