//! Vigil's Kafka bus, built on rdkafka (librdkafka).
//!
//! * [`topics`] — the topic names, the one place they are spelled.
//! * [`admin::ensure_topics`] — explicit topic creation (auto-creation is never relied upon:
//!   tansu 0.6 does not auto-create, and production clusters should not either).
//! * [`Producer`] — idempotent (`enable.idempotence`, `acks=all`) typed producer; a send
//!   returns only once the broker acknowledged it. W3C trace context travels in headers.
//! * [`Consumer`] — a consumer-group member that hands out batches of [`Delivery`]s and
//!   commits offsets only when asked, after the caller has made its own state durable.
//!
//! Delivery is at-least-once. Consumers are made effectively-once by the caller storing the
//! next offset per partition atomically with its state and skipping anything below it
//! ([`Delivery::is_below`]); Kafka offset commits are then only a hint for where to resume.
//! This keeps Vigil independent of Kafka transactions (which tansu does not support).
//!
//! Broker-specific workarounds (tansu) live here, behind [`KafkaConfig::tansu_compat`].

pub mod admin;
mod config;
mod consumer;
mod producer;
pub mod topics;

pub use config::KafkaConfig;
pub use consumer::{BatchFuture, Consumer, Delivery, run_batches};
pub use producer::Producer;

/// Errors of the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("creating topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("bus task failed: {0}")]
    Task(String),
    #[error("cannot decode {what} at {topic}/{partition}@{offset}: {source}")]
    Decode {
        what: &'static str,
        topic: String,
        partition: i32,
        offset: i64,
        #[source]
        source: proto::prost::DecodeError,
    },
}
