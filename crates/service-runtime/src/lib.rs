//! The run-time plumbing every Vigil service shares, so that service crates hold only wiring
//! and handlers:
//!
//! * [`config`] — typed configuration from a TOML file plus `VIGIL_*` environment overrides,
//!   validated once at start-up; errors name the offending field.
//! * [`telemetry`] — `tracing` with JSON logs and OpenTelemetry export when an OTLP endpoint is
//!   configured; trace-context propagation helpers for gRPC metadata.
//! * [`admin`] — the admin HTTP port: Prometheus `/metrics`, `/healthz`, `/readyz`.
//! * [`grpc`] — `grpc.health.v1` and server reflection (v1 and v1alpha, so grpcurl works).
//! * [`gate`] — the one tower service behind the request gates (admission, tokens).
//! * [`security`] — TLS / mTLS and bearer tokens for gRPC servers and clients; secrets from files.
//! * [`shutdown`] — signal handling and the ordered, deadline-bounded shutdown sequence.

pub mod admin;
pub mod admission;
pub mod clock;
pub mod config;
pub mod gate;
pub mod grpc;
pub mod launch;
pub mod security;
pub mod shutdown;
pub mod telemetry;
#[cfg(any(test, feature = "test-pki"))]
pub mod test_pki;

pub use config::{ConfigError, ServerConfig, ServiceConfig};
pub use launch::{Context, launch};
pub use shutdown::Shutdown;

/// At most `max` characters of `text` (an error from a dependency, a client's value), with an
/// ellipsis when cut: what Vigil echoes in errors, logs and health reasons is bounded.
pub fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod truncation_tests {
    #[test]
    fn text_is_cut_at_a_character_boundary_with_an_ellipsis() {
        assert_eq!(super::truncated("short", 10), "short");
        assert_eq!(super::truncated("abcdef", 3), "abc…");
        assert_eq!(super::truncated("ééééé", 2), "éé…");
    }
}
