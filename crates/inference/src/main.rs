//! `vigil-inference`: see the library for what it does.
fn main() -> std::process::ExitCode {
    service_runtime::launch("inference", inference::run)
}
