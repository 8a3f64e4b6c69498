//! `vigil-drift-monitor`: see the library for what it does.
fn main() -> std::process::ExitCode {
    service_runtime::launch("drift-monitor", drift_monitor::run)
}
