//! Integration tests of the training library (one binary per crate).

mod parity;
mod protocol;
