//! `vigil-ingest`: see the library for what it does.
fn main() -> std::process::ExitCode {
    service_runtime::launch("ingest", ingest::run)
}
