//! One integration-test binary for the workspace-level end-to-end tests.
mod pipeline;
