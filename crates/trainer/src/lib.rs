//! trainer (being written)
