//! The run-time plumbing every Vigil service shares, so that service crates hold only wiring
//! and handlers:
//!
//! * [`config`] — typed configuration from a TOML file plus `VIGIL_*` environment overrides,
//!   validated once at start-up; errors name the offending field.
//! * [`telemetry`] — `tracing` with JSON logs and OpenTelemetry export when an OTLP endpoint is
//!   configured; trace-context propagation helpers for gRPC metadata.
//! * [`admin`] — the admin HTTP port: Prometheus `/metrics`, `/healthz`, `/readyz`.
//! * [`grpc`] — `grpc.health.v1` and server reflection (v1 and v1alpha, so grpcurl works).
//! * [`shutdown`] — signal handling and the ordered, deadline-bounded shutdown sequence.

pub mod admin;
pub mod clock;
pub mod config;
pub mod grpc;
pub mod launch;
pub mod shutdown;
pub mod telemetry;

pub use config::{ConfigError, ServerConfig, ServiceConfig};
pub use launch::{Context, launch};
pub use shutdown::Shutdown;
