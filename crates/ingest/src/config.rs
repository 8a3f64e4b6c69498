use bus::KafkaConfig;
use online_store::RedisConfig;
use serde::Deserialize;
use service_runtime::telemetry::TelemetryConfig;
use service_runtime::{ConfigError, ServerConfig, ServiceConfig};

/// The ingest service's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub kafka: KafkaConfig,
    pub redis: RedisConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub ingest: IngestSettings,
}

/// The `ingest` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// How long an accepted transaction id is remembered for de-duplication.
    pub dedup_ttl_secs: u64,
    /// How long a transaction id stays reserved while it is being published: a retry within
    /// it is deferred, after it (the publishing process died) the id is free again. Longer
    /// than the producer's delivery timeout (30 s), so a live publish never loses its lease.
    pub dedup_lease_secs: u64,
    /// Largest batch accepted by SubmitBatch (and chunk size of SubmitStream).
    pub max_batch: usize,
    /// How far after the server clock an `event_time` (or a label's `reported_at`) may be;
    /// later ones are refused with INVALID_ARGUMENT naming the field.
    pub max_future_skew_ms: i64,
    /// How long an accepted transaction's merchant is remembered, so that a label submitted
    /// later without a merchant can be counted for it (merchant fraud risk).
    pub label_horizon_days: u32,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            dedup_ttl_secs: 7 * 86_400,
            dedup_lease_secs: 60,
            max_batch: 5_000,
            max_future_skew_ms: domain::DEFAULT_MAX_FUTURE_SKEW_MS,
            label_horizon_days: 120,
        }
    }
}

impl ServiceConfig for Config {
    const SECTIONS: &'static [&'static str] = &["server", "kafka", "redis", "telemetry", "ingest"];
    fn server(&self) -> &ServerConfig {
        &self.server
    }
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.security.validate()?;
        if self.ingest.max_batch == 0 {
            return Err(ConfigError::invalid(
                "ingest.max_batch",
                "must be at least 1",
            ));
        }
        if !(31..=self.ingest.dedup_ttl_secs.max(31)).contains(&self.ingest.dedup_lease_secs) {
            return Err(ConfigError::invalid(
                "ingest.dedup_lease_secs",
                "must be longer than the producer's 30 s delivery timeout and at most ingest.dedup_ttl_secs",
            ));
        }
        if self.ingest.label_horizon_days == 0 {
            return Err(ConfigError::invalid(
                "ingest.label_horizon_days",
                "must be at least 1",
            ));
        }
        if !(0..=86_400_000).contains(&self.ingest.max_future_skew_ms) {
            return Err(ConfigError::invalid(
                "ingest.max_future_skew_ms",
                "must be between 0 and 86400000 (one day)",
            ));
        }
        Ok(())
    }
}
