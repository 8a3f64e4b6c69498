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
    /// Largest batch accepted by SubmitBatch (and chunk size of SubmitStream).
    pub max_batch: usize,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            dedup_ttl_secs: 7 * 86_400,
            max_batch: 5_000,
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
        if self.ingest.max_batch == 0 {
            return Err(ConfigError::invalid(
                "ingest.max_batch",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
