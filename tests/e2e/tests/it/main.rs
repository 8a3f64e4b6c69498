//! One integration-test binary for the workspace-level end-to-end tests.
mod parity;
mod pipeline;
