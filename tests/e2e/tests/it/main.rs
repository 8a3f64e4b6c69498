//! One integration-test binary for the workspace-level end-to-end tests.
mod faults;
mod parity;
mod pipeline;
mod retrain;
mod rollout;
mod security;
mod sockets;
mod store;
mod traces;
