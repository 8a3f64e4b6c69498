//! `vigil-feature-service`: see the library for what it does.
fn main() -> std::process::ExitCode {
    service_runtime::launch("feature-service", feature_service::run)
}
