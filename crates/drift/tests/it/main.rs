//! The drift crate's integration tests (one binary).

mod scipy;
