//! What every Vigil gRPC server serves besides its own service: `grpc.health.v1` and server
//! reflection. Both reflection versions are served: grpcurl 1.8.6 speaks only v1alpha.

use crate::admission::AdmissionLayer;
use crate::launch::GrpcListener;
use crate::security::{AuthLayer, ServerSecurity};
use tonic::service::RoutesBuilder;
use tonic_health::server::HealthReporter;
use tower::layer::util::{Identity, Stack};

/// Adds health and reflection (v1 + v1alpha) to `routes`; returns the health reporter, whose
/// overall status ("") starts SERVING — set per-service statuses with it. Reflection lists
/// `services` (fully-qualified names, e.g. `vigil.v1.IngestService`) and the health service.
pub fn add_standard_services(
    routes: &mut RoutesBuilder,
    services: &[&str],
) -> Result<HealthReporter, tonic_reflection::server::Error> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let builder = || {
        let mut b = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for s in services {
            b = b.with_service_name(*s);
        }
        b
    };
    let reflection_v1 = builder().build_v1()?;
    let reflection_v1alpha = builder().build_v1alpha()?;
    routes
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok(health_reporter)
}

/// The layers every Vigil server puts in front of its services, outermost first: the token
/// check (a refused call never takes an admission slot) and then the server-wide limit.
pub type StandardLayers = Stack<Stack<AdmissionLayer, Stack<AuthLayer, Identity>>, Identity>;

/// A tonic server with Vigil's standard middleware: TLS when configured, per-request timeout, a
/// per-connection concurrency limit and load shedding beyond it (tower layers configured through
/// tonic), and in front of them the bearer-token check ([`crate::security`]) and the server-wide
/// limit of `admission` ([`crate::admission`]).
pub fn server(
    cfg: &crate::ServerConfig,
    admission: AdmissionLayer,
    security: ServerSecurity,
) -> Result<tonic::transport::Server<StandardLayers>, tonic::transport::Error> {
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = security.tls {
        builder = builder.tls_config(tls)?;
    }
    Ok(builder
        .trace_fn(request_span)
        .timeout(std::time::Duration::from_millis(cfg.request_timeout_ms))
        .concurrency_limit_per_connection(cfg.concurrency_limit)
        .load_shed(true)
        .tcp_nodelay(true)
        .layer(
            tower::ServiceBuilder::new()
                .layer(security.auth)
                .layer(admission)
                .into_inner(),
        ))
}

/// The span of one gRPC request, child of the caller's W3C trace context (`traceparent` /
/// `tracestate` metadata), so a trace continues through this service. Health checks and
/// reflection get none: probes every few seconds would bury the traces that matter.
fn request_span(request: &tonic::codegen::http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    if path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") {
        return tracing::Span::none();
    }
    let span = tracing::info_span!("grpc.request", rpc.method = %path, otel.kind = "server");
    let carrier = crate::telemetry::HeaderCarrier(
        ["traceparent", "tracestate"]
            .into_iter()
            .filter_map(|k| {
                let v = request.headers().get(k)?.to_str().ok()?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect(),
    );
    crate::telemetry::set_parent_from_headers(&span, &carrier);
    span
}

/// Serves `routes` on `listener` until `stop` is cancelled: then reports NOT_SERVING on the
/// health service (so load balancers drain this instance), stops accepting connections and
/// lets in-flight requests finish.
pub async fn serve(
    grpc: GrpcListener,
    cfg: &crate::ServerConfig,
    routes: RoutesBuilder,
    health: HealthReporter,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), tonic::transport::Error> {
    // `Server::tcp_nodelay` only applies to listeners tonic binds itself; an incoming stream
    // handed in (ours, so the address is bound before readiness) needs it set here, or every
    // response waits on Nagle and the peer's delayed ACK (~40 ms per hop).
    let incoming =
        tonic::transport::server::TcpIncoming::from(grpc.listener).with_nodelay(Some(true));
    server(cfg, grpc.admission, grpc.security)?
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, async move {
            stop.cancelled().await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
        })
        .await
}

/// Error building the reflection service.
pub use tonic_reflection::server::Error as ReflectionError;

/// Why a gRPC server could not be built or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("grpc: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] ReflectionError),
}

/// Serves a service's `routes` with the standard services (health, reflection listing
/// `services`) until `stop`. When `ready_now`, readiness is set at once (services that must wait
/// for something, e.g. a model, set it themselves); it is cleared when serving ends.
///
/// `grpc.health.v1` follows readiness, for the whole server (`""`) and for each name in
/// `services`: NOT_SERVING until ready (an inference slot without a verified model), SERVING
/// while ready, NOT_SERVING again when readiness drops or shutdown starts. So a Kubernetes
/// gRPC probe, the smoke check and a blue/green switch see what `/readyz` says.
pub async fn serve_service(
    grpc: GrpcListener,
    cfg: &crate::ServerConfig,
    mut routes: RoutesBuilder,
    services: &[&str],
    readiness: &crate::admin::Readiness,
    ready_now: bool,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), ServeError> {
    let health = add_standard_services(&mut routes, services)?;
    let names: Vec<String> = std::iter::once(String::new())
        .chain(services.iter().map(|s| (*s).to_owned()))
        .collect();
    // Set before the listener serves, so no probe ever sees a status readiness did not give.
    follow(&health, &names, readiness.get()).await;
    let mut changes = readiness.subscribe();
    let follower = {
        let health = health.clone();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let ready = *changes.borrow_and_update();
                follow(&health, &names, ready).await;
            }
        })
    };
    if ready_now {
        readiness.set(true);
    }
    tracing::info!(?services, "serving");
    // Not ready as soon as shutdown starts, while in-flight requests still drain.
    let not_ready = {
        let (stop, readiness) = (stop.clone(), readiness.clone());
        async move {
            stop.cancelled().await;
            readiness.set(false);
        }
    };
    let (served, ()) = tokio::join!(serve(grpc, cfg, routes, health, stop), not_ready);
    readiness.set(false);
    follower.abort();
    Ok(served?)
}

async fn follow(health: &HealthReporter, names: &[String], ready: bool) {
    let status = if ready {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    for name in names {
        health.set_service_status(name, status).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    async fn status(client: &mut HealthClient<tonic::transport::Channel>, name: &str) -> i32 {
        client
            .check(HealthCheckRequest {
                service: name.to_owned(),
            })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or_else(|s| panic!("health check of {name:?}: {s}"))
    }

    /// Polls until both the server and the service report `want` (the follower is a task).
    async fn until(client: &mut HealthClient<tonic::transport::Channel>, want: ServingStatus) {
        for _ in 0..200 {
            if status(client, "").await == want as i32
                && status(client, "vigil.v1.Test").await == want as i32
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("health never reported {want:?}");
    }

    #[tokio::test]
    async fn grpc_health_follows_readiness_for_the_server_and_each_service() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = crate::ServerConfig::for_test(addr);
        let readiness = crate::admin::Readiness::default();
        let stop = tokio_util::sync::CancellationToken::new();
        let server = {
            let (readiness, stop) = (readiness.clone(), stop.clone());
            tokio::spawn(async move {
                serve_service(
                    GrpcListener::new(listener, 16),
                    &cfg,
                    RoutesBuilder::default(),
                    &["vigil.v1.Test"],
                    &readiness,
                    false,
                    stop,
                )
                .await
            })
        };
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::new(channel);
        // Not ready (e.g. no model yet): NOT_SERVING, and the service name is known.
        assert_eq!(
            status(&mut client, "").await,
            ServingStatus::NotServing as i32
        );
        assert_eq!(
            status(&mut client, "vigil.v1.Test").await,
            ServingStatus::NotServing as i32
        );
        readiness.set(true);
        until(&mut client, ServingStatus::Serving).await;
        readiness.set(false);
        until(&mut client, ServingStatus::NotServing).await;
        stop.cancel();
        server.await.unwrap().unwrap();
    }
}
