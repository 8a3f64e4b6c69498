//! drift-monitor (being written)
