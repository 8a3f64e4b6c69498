//! Vigil's Kafka bus, built on rdkafka (librdkafka).
//!
//! * [`topics`] — the topic names, the one place they are spelled.
//! * [`admin::ensure_topics`] — explicit topic creation (auto-creation is never relied upon:
//!   tansu 0.6 does not auto-create, and production clusters should not either).
//! * [`Producer`] — idempotent (`enable.idempotence`, `acks=all`) typed producer; a send
//!   returns only once the broker acknowledged it. W3C trace context travels in headers.
//! * [`Consumer`] — a consumer-group member that hands out batches of [`Delivery`]s and
//!   commits offsets only when asked, after the caller has made its own state durable.
//! * [`BatchLoop`] — the standard consumer loop: retries a dependency's failures with
//!   back-off (holding readiness back while they last), quarantines a record that keeps
//!   failing on its own, commits a final time on shutdown.
//!
//! Delivery is at-least-once. Consumers are made effectively-once by the caller storing the
//! next offset per partition atomically with its state and skipping anything below it
//! ([`Delivery::is_below`]); Kafka offset commits are then only a hint for where to resume.
//! This keeps Vigil independent of Kafka transactions (which tansu does not support).
//!
//! Broker-specific workarounds (tansu) live here, behind [`KafkaConfig::tansu_compat`].

pub mod admin;
mod batches;
mod config;
mod consumer;
mod producer;
pub mod topics;

pub use batches::{BatchFuture, BatchLoop, Failure, LoopMetrics, RetryPolicy, StageMetrics};
pub use config::{KafkaConfig, KafkaSecurity, SaslMechanism, SecurityProtocol};
pub use consumer::{Consumer, Delivery, read_tail};
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
    #[error(transparent)]
    Security(#[from] service_runtime::ConfigError),
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

impl BusError {
    /// Whether retrying can succeed: everything but a record the broker refuses for itself
    /// (too large, invalid) or a payload that does not decode.
    pub fn is_transient(&self) -> bool {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode as C};
        match self {
            BusError::Kafka(KafkaError::MessageProduction(
                C::MessageSizeTooLarge
                | C::InvalidRecord
                | C::InvalidMessage
                | C::InvalidMessageSize,
            ))
            | BusError::Decode { .. }
            | BusError::Security(_) => false,
            BusError::Kafka(_) | BusError::CreateTopic { .. } | BusError::Task(_) => true,
        }
    }
}

impl Failure for BusError {
    fn is_transient(&self) -> bool {
        BusError::is_transient(self)
    }
    fn field(&self) -> &'static str {
        match self {
            BusError::Decode { .. } => "payload",
            _ => "",
        }
    }
}
