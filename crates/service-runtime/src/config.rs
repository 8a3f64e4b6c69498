//! Layered, typed configuration: defaults (serde) ← TOML file ← `VIGIL_SECTION__FIELD` env vars.
//!
//! The environment is passed in as a map so tests never mutate the process environment. Each
//! service lists the top-level sections it owns ([`ServiceConfig::SECTIONS`]); environment
//! variables for other sections are ignored (a shared Kubernetes ConfigMap carries settings for
//! several services), but unknown fields *inside* a known section, and anything unknown in the
//! file, are errors.

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

/// Prefix of every Vigil environment variable.
pub const ENV_PREFIX: &str = "VIGIL_";
/// The variable naming the config file.
pub const CONFIG_FILE_VAR: &str = "VIGIL_CONFIG";

/// A service's configuration type.
pub trait ServiceConfig: DeserializeOwned {
    /// Top-level sections this service reads from the environment.
    const SECTIONS: &'static [&'static str];

    /// The `server` section.
    fn server(&self) -> &ServerConfig;
    /// The `telemetry` section.
    fn telemetry(&self) -> &crate::telemetry::TelemetryConfig;

    /// Cross-field checks after deserialisation; the error names the field.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(Box<figment::Error>),
    #[error("configuration field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

impl ConfigError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        ConfigError::Figment(Box::new(e))
    }
}

/// Loads `T` from the file (explicit, or named by `VIGIL_CONFIG` in `env`) and `env`.
pub fn load<T: ServiceConfig>(
    file: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<T, ConfigError> {
    let mut figment = Figment::new();
    let from_env = env.get(CONFIG_FILE_VAR).map(Path::new);
    if let Some(path) = file.or(from_env) {
        if !path.exists() {
            return Err(ConfigError::invalid(
                CONFIG_FILE_VAR,
                format!("file {} does not exist", path.display()),
            ));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let mut vars: Vec<_> = env.iter().collect();
    vars.sort();
    for (key, value) in vars {
        let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, field)) = rest.split_once("__") else {
            continue;
        };
        let section = section.to_ascii_lowercase();
        if !T::SECTIONS.contains(&section.as_str()) {
            continue;
        }
        let path = format!(
            "{section}.{}",
            field.to_ascii_lowercase().replace("__", ".")
        );
        let value: figment::value::Value = value
            .parse()
            .unwrap_or_else(|_| figment::value::Value::from(value.clone()));
        figment = figment.merge((path, value));
    }
    let config: T = figment.extract()?;
    let server = config.server();
    for (field, value) in [
        ("server.max_in_flight", server.max_in_flight),
        ("server.concurrency_limit", server.concurrency_limit),
        ("server.max_message_bytes", server.max_message_bytes),
    ] {
        if value == 0 {
            return Err(ConfigError::invalid(field, "must be at least 1"));
        }
    }
    config.validate()?;
    Ok(config)
}

/// Listening addresses of a service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// gRPC listener.
    pub grpc_addr: SocketAddr,
    /// Admin HTTP listener (/metrics, /healthz, /readyz).
    pub admin_addr: SocketAddr,
    /// How long the shutdown sequence may take before the process exits anyway.
    #[serde(default = "default_shutdown_secs")]
    pub shutdown_timeout_secs: u64,
    /// Per-request deadline enforced by the gRPC server.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Concurrent requests per connection before load is shed.
    #[serde(default = "default_concurrency")]
    pub concurrency_limit: usize,
    /// Requests in flight across all connections before load is shed (`RESOURCE_EXHAUSTED`;
    /// health and reflection exempt).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Largest request message a server decodes (bytes); larger ones are refused with
    /// `OUT_OF_RANGE` before any handler runs. 4 MiB (tonic's default) fits a 1 000-item
    /// batch with room to spare.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Serve gRPC over TLS, and with a client CA require client certificates (mTLS).
    #[serde(default)]
    pub tls: Option<crate::security::ServerTls>,
    /// Require a bearer token on every call but health checks.
    #[serde(default)]
    pub auth: Option<crate::security::ServerAuth>,
}

#[cfg(test)]
impl ServerConfig {
    /// gRPC on `grpc_addr`, admin on any port, small limits, no TLS or tokens (unit tests).
    pub(crate) fn for_test(grpc_addr: std::net::SocketAddr) -> ServerConfig {
        ServerConfig {
            grpc_addr,
            admin_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown_timeout_secs: 5,
            request_timeout_ms: 2_000,
            concurrency_limit: 16,
            max_in_flight: 16,
            max_message_bytes: 1 << 20,
            tls: None,
            auth: None,
        }
    }
}

fn default_shutdown_secs() -> u64 {
    20
}
fn default_request_timeout_ms() -> u64 {
    2_000
}
fn default_concurrency() -> usize {
    256
}
fn default_max_in_flight() -> usize {
    512
}
fn default_max_message_bytes() -> usize {
    4 * 1024 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        server: ServerConfig,
        sample: Sample,
        #[serde(default)]
        telemetry: crate::telemetry::TelemetryConfig,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: String,
        #[serde(default)]
        flag: bool,
    }

    impl ServiceConfig for Cfg {
        const SECTIONS: &'static [&'static str] = &["server", "sample"];
        fn server(&self) -> &ServerConfig {
            &self.server
        }
        fn telemetry(&self) -> &crate::telemetry::TelemetryConfig {
            &self.telemetry
        }
        fn validate(&self) -> Result<(), ConfigError> {
            if self.sample.name.is_empty() {
                return Err(ConfigError::invalid("sample.name", "must not be empty"));
            }
            Ok(())
        }
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_env_override_and_foreign_sections_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\ngrpc_addr = \"127.0.0.1:1\"\nadmin_addr = \"127.0.0.1:2\"\n[sample]\nname = \"file\"\n",
        )
        .unwrap();
        let cfg: Cfg = load(
            Some(&file),
            &env(&[
                ("VIGIL_SAMPLE__NAME", "env"),
                ("VIGIL_SAMPLE__FLAG", "true"),
                ("VIGIL_OTHER__THING", "x"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.sample.name, "env");
        assert!(cfg.sample.flag);
        assert_eq!(cfg.server.grpc_addr.port(), 1);
        assert_eq!(cfg.server.request_timeout_ms, 2_000);
    }

    #[test]
    fn errors_name_the_field() {
        let base = [
            ("VIGIL_SERVER__GRPC_ADDR", "127.0.0.1:1"),
            ("VIGIL_SERVER__ADMIN_ADDR", "127.0.0.1:2"),
        ];
        let mut bad_addr = env(&base);
        bad_addr.insert("VIGIL_SERVER__GRPC_ADDR".into(), "not-an-address".into());
        bad_addr.insert("VIGIL_SAMPLE__NAME".into(), "x".into());
        let err = load::<Cfg>(None, &bad_addr).unwrap_err().to_string();
        assert!(err.contains("grpc_addr"), "{err}");

        let mut unknown = env(&base);
        unknown.insert("VIGIL_SAMPLE__NAME".into(), "x".into());
        unknown.insert("VIGIL_SAMPLE__TYPO".into(), "x".into());
        let err = load::<Cfg>(None, &unknown).unwrap_err().to_string();
        assert!(err.contains("typo"), "{err}");

        let err = load::<Cfg>(None, &env(&base)).unwrap_err().to_string();
        assert!(err.contains("sample"), "{err}");

        let mut empty = env(&base);
        empty.insert("VIGIL_SAMPLE__NAME".into(), String::new());
        let err = load::<Cfg>(None, &empty).unwrap_err().to_string();
        assert!(err.contains("sample.name"), "{err}");
    }
}
