//! What every Vigil gRPC server serves besides its own service: `grpc.health.v1` and server
//! reflection. Both reflection versions are served: grpcurl 1.8.6 speaks only v1alpha.

use tonic::service::RoutesBuilder;
use tonic_health::server::HealthReporter;

/// Adds health and reflection (v1 + v1alpha) to `routes`; returns the health reporter, whose
/// overall status ("") starts SERVING — set per-service statuses with it.
pub fn add_standard_services(
    routes: &mut RoutesBuilder,
) -> Result<HealthReporter, tonic_reflection::server::Error> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    routes
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok(health_reporter)
}

/// A tonic server with Vigil's standard middleware: per-request timeout, a per-connection
/// concurrency limit and load shedding beyond it (tower layers configured through tonic).
pub fn server(cfg: &crate::ServerConfig) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .timeout(std::time::Duration::from_millis(cfg.request_timeout_ms))
        .concurrency_limit_per_connection(cfg.concurrency_limit)
        .load_shed(true)
        .tcp_nodelay(true)
}
