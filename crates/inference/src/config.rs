use bus::KafkaConfig;
use serde::Deserialize;
use service_runtime::telemetry::TelemetryConfig;
use service_runtime::{ConfigError, ServerConfig, ServiceConfig};
use std::path::PathBuf;

/// The inference service's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub kafka: KafkaConfig,
    pub registry: RegistrySection,
    pub features: FeaturesSection,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub inference: Settings,
}

/// The `registry` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    pub path: PathBuf,
}

/// The `features` section: where the feature-service is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesSection {
    /// e.g. `http://feature-service:50051`.
    pub endpoint: String,
    /// Deadline of a GetFeatureVector call before falling back to request-time features.
    #[serde(default = "default_feature_timeout")]
    pub timeout_ms: u64,
    /// Consecutive failed calls that open the circuit breaker (scoring is then degraded at
    /// once, without calling).
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long the breaker first stays open before a call probes again (half-open); doubles
    /// after each failed probe, up to `breaker_max_open_ms`.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
    #[serde(default = "default_breaker_max_open_ms")]
    pub breaker_max_open_ms: u64,
    /// TLS and bearer token towards the feature-service (`[features.security]`); unset,
    /// plaintext without a token.
    #[serde(default)]
    pub security: service_runtime::security::ClientSecurity,
}

fn default_feature_timeout() -> u64 {
    150
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    500
}
fn default_breaker_max_open_ms() -> u64 {
    10_000
}

/// The `inference` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Registry alias whose model is served.
    pub model_alias: String,
    /// How often the alias is checked for a move.
    pub poll_interval_ms: u64,
    pub consumer_group: String,
    pub batch_max: usize,
    pub linger_ms: u64,
    /// Which scores carry reasons (top contributing features), and how many.
    pub reasons: model::ReasonPolicy,
    /// Synchronous scores also go to `vigil.scores.v1` (source REQUEST), so the drift
    /// monitor and audits see them; off the request path, through a queue of this many.
    pub publish_request_scores: bool,
    pub publish_queue: usize,
    /// Registry alias of a model scored beside the served one (shadow): every request and
    /// stream vector is scored by both, only the served model answers, and the shadow's
    /// scores go to `vigil.scores.v1` flagged `shadow`. Unset: no shadow. Removing the alias
    /// stops shadowing.
    pub shadow_alias: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model_alias: registry::stages::PRODUCTION.into(),
            poll_interval_ms: 1_000,
            consumer_group: "vigil-inference".into(),
            batch_max: 500,
            linger_ms: 20,
            reasons: model::ReasonPolicy {
                max: 3,
                from: model::Decision::Review,
            },
            publish_request_scores: true,
            publish_queue: 10_000,
            shadow_alias: None,
        }
    }
}

impl ServiceConfig for Config {
    const SECTIONS: &'static [&'static str] = &[
        "server",
        "kafka",
        "registry",
        "features",
        "telemetry",
        "inference",
    ];
    fn server(&self) -> &ServerConfig {
        &self.server
    }
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.security.validate()?;
        if !(self.features.endpoint.starts_with("http://")
            || self.features.endpoint.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                "features.endpoint",
                "must be an http:// or https:// URL",
            ));
        }
        if self.inference.model_alias.is_empty() {
            return Err(ConfigError::invalid(
                "inference.model_alias",
                "must not be empty",
            ));
        }
        if self.inference.shadow_alias.as_deref() == Some(self.inference.model_alias.as_str()) {
            return Err(ConfigError::invalid(
                "inference.shadow_alias",
                "must differ from inference.model_alias",
            ));
        }
        if self.inference.batch_max == 0 {
            return Err(ConfigError::invalid(
                "inference.batch_max",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
