//! feature-service (being written)
