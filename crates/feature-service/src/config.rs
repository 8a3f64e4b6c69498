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
    /// How far after the server clock an event time (or a label's `reported_at`) may be;
    /// later ones are quarantined. The synchronous path also bounds a request's event time
    /// to `now ± this` (see `features::serving_time`).
    pub max_future_skew_ms: i64,
    /// How long a user's profile history lives in Redis after its last change.
    pub profile_ttl_days: u32,
}

impl Settings {
    /// Key lifetimes in Redis: states live as long as the longest window after their last
    /// write; profiles `profile_ttl_days` (they change rarely and outlive idle windows).
    pub fn ttls(&self) -> online_store::Ttls {
        online_store::Ttls {
            state: std::time::Duration::from_millis(features::LONGEST_WINDOW_MS.unsigned_abs()),
            profile: std::time::Duration::from_secs(u64::from(self.profile_ttl_days) * 86_400),
        }
    }
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
            max_future_skew_ms: domain::DEFAULT_MAX_FUTURE_SKEW_MS,
            profile_ttl_days: 400,
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
        self.kafka.security.validate()?;
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
        if !(0..=86_400_000).contains(&s.max_future_skew_ms) {
            return Err(ConfigError::invalid(
                "feature_service.max_future_skew_ms",
                "must be between 0 and 86400000 (one day)",
            ));
        }
        if s.profile_ttl_days == 0 {
            return Err(ConfigError::invalid(
                "feature_service.profile_ttl_days",
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
