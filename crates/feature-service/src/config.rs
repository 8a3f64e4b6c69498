use bus::KafkaConfig;
use online_store::RedisConfig;
use serde::Deserialize;
use service_runtime::telemetry::TelemetryConfig;
use service_runtime::{ConfigError, ServerConfig, ServiceConfig};
use std::path::PathBuf;

/// The feature-service's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub kafka: KafkaConfig,
    pub redis: RedisConfig,
    pub lake: LakeConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub feature_service: Settings,
}

/// The `lake` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// Root directory of the Parquet lake.
    pub path: PathBuf,
}

/// The `feature_service` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Consumer group (and offset namespace in Redis) of the speed layer.
    pub speed_group: String,
    /// Consumer group of the lake writer.
    pub lake_group: String,
    pub speed_batch_max: usize,
    pub speed_linger_ms: u64,
    pub lake_batch_max: usize,
    pub lake_linger_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            speed_group: "vigil-feature-service".into(),
            lake_group: "vigil-lake-writer".into(),
            speed_batch_max: 500,
            speed_linger_ms: 20,
            lake_batch_max: 10_000,
            lake_linger_ms: 1_000,
        }
    }
}

impl ServiceConfig for Config {
    const SECTIONS: &'static [&'static str] = &[
        "server",
        "kafka",
        "redis",
        "lake",
        "telemetry",
        "feature_service",
    ];
    fn server(&self) -> &ServerConfig {
        &self.server
    }
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.feature_service;
        if s.speed_batch_max == 0 {
            return Err(ConfigError::invalid(
                "feature_service.speed_batch_max",
                "must be at least 1",
            ));
        }
        if s.lake_batch_max == 0 {
            return Err(ConfigError::invalid(
                "feature_service.lake_batch_max",
                "must be at least 1",
            ));
        }
        if s.speed_group == s.lake_group {
            return Err(ConfigError::invalid(
                "feature_service.lake_group",
                "must differ from speed_group",
            ));
        }
        Ok(())
    }
}
