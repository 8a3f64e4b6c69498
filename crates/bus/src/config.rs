use crate::BusError;
use rdkafka::ClientConfig;
use serde::Deserialize;
use service_runtime::ConfigError;
use std::path::PathBuf;

/// The `kafka` config section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Work around tansu 0.6 (the local Kafka-protocol broker): shorter group session timeout
    /// (a group otherwise takes ~20 s to form) and no reliance on broker-side conveniences.
    /// Off for Apache Kafka.
    #[serde(default)]
    pub tansu_compat: bool,
    /// Consumer-group session timeout; defaults to 6 s with tansu, 45 s otherwise.
    #[serde(default)]
    pub session_timeout_ms: Option<u32>,
    /// Partitions of topics created by [`crate::admin::ensure_topics`].
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// How consumer loops retry and when they quarantine (`[kafka.retry]`).
    #[serde(default)]
    pub retry: crate::RetryPolicy,
    /// TLS and SASL towards the brokers (`[kafka.security]`); plaintext when unset.
    #[serde(default)]
    pub security: KafkaSecurity,
}

/// `security.protocol` of librdkafka.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn as_librdkafka(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
    fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
    fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// The SASL mechanisms offered. GSSAPI (Kerberos) and OAUTHBEARER need more than a password
/// file and are not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// The password travels as is: only over `sasl_ssl`.
    #[serde(rename = "PLAIN")]
    Plain,
}

impl SaslMechanism {
    fn as_librdkafka(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::Plain => "PLAIN",
        }
    }
}

/// `[kafka.security]`: how clients authenticate to the brokers and encrypt the traffic.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSecurity {
    pub protocol: SecurityProtocol,
    /// Required with `sasl_*`.
    pub sasl_mechanism: Option<SaslMechanism>,
    pub username: Option<String>,
    /// File holding the SASL password (a mounted Secret, never the config itself).
    pub password_file: Option<PathBuf>,
    /// CA bundle (PEM) the brokers' certificates must chain to; unset, the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for brokers that require mTLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

fn security_error(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::invalid(format!("kafka.security.{field}"), reason)
}

impl KafkaSecurity {
    /// Checks that the fields fit the protocol: a field the protocol would ignore is an error,
    /// not a silent plaintext connection.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = self.protocol;
        if p.sasl() {
            if self.sasl_mechanism.is_none() {
                return Err(security_error(
                    "sasl_mechanism",
                    "required with a sasl_* protocol (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN)",
                ));
            }
            if self.username.as_deref().is_none_or(str::is_empty) {
                return Err(security_error(
                    "username",
                    "required with a sasl_* protocol",
                ));
            }
            if self.password_file.is_none() {
                return Err(security_error(
                    "password_file",
                    "required with a sasl_* protocol",
                ));
            }
            if self.sasl_mechanism == Some(SaslMechanism::Plain) && !p.tls() {
                return Err(security_error(
                    "sasl_mechanism",
                    "PLAIN sends the password in the clear: use it only with sasl_ssl",
                ));
            }
        } else {
            for (field, set) in [
                ("sasl_mechanism", self.sasl_mechanism.is_some()),
                ("username", self.username.is_some()),
                ("password_file", self.password_file.is_some()),
            ] {
                if set {
                    return Err(security_error(
                        field,
                        format!("set, but protocol {} has no SASL", p.as_librdkafka()),
                    ));
                }
            }
        }
        if !p.tls() {
            for (field, set) in [
                ("ca_file", self.ca_file.is_some()),
                ("cert_file", self.cert_file.is_some()),
                ("key_file", self.key_file.is_some()),
            ] {
                if set {
                    return Err(security_error(
                        field,
                        format!("set, but protocol {} has no TLS", p.as_librdkafka()),
                    ));
                }
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(security_error(
                "cert_file",
                "cert_file and key_file go together",
            ));
        }
        Ok(())
    }

    /// Sets librdkafka's security properties on `c`, reading the password file.
    fn apply(&self, c: &mut ClientConfig) -> Result<(), BusError> {
        self.validate()?;
        c.set("security.protocol", self.protocol.as_librdkafka());
        if let (Some(mechanism), Some(user), Some(path)) =
            (self.sasl_mechanism, &self.username, &self.password_file)
        {
            c.set("sasl.mechanisms", mechanism.as_librdkafka())
                .set("sasl.username", user)
                .set(
                    "sasl.password",
                    service_runtime::security::read_secret("kafka.security.password_file", path)?,
                );
        }
        for (key, path) in [
            ("ssl.ca.location", &self.ca_file),
            ("ssl.certificate.location", &self.cert_file),
            ("ssl.key.location", &self.key_file),
        ] {
            if let Some(path) = path {
                c.set(key, path.display().to_string());
            }
        }
        Ok(())
    }
}

fn default_partitions() -> i32 {
    6
}
fn default_replication() -> i32 {
    1
}

impl KafkaConfig {
    /// A config for `brokers` with defaults (tests, tools).
    pub fn new(brokers: impl Into<String>, tansu_compat: bool) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            tansu_compat,
            session_timeout_ms: None,
            partitions: default_partitions(),
            replication_factor: default_replication(),
            retry: crate::RetryPolicy::default(),
            security: KafkaSecurity::default(),
        }
    }

    /// A client config with the brokers, this client's id and `[kafka.security]` applied; fails
    /// only on security settings (a missing password file, fields that do not fit the protocol).
    pub(crate) fn client(&self, client_id: &str) -> Result<ClientConfig, BusError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", client_id)
            .set("allow.auto.create.topics", "false")
            .set("socket.keepalive.enable", "true")
            // librdkafka leaves Nagle on by default: a produce request or a fetch written
            // while the previous segment is unacknowledged waits for the peer's delayed ACK.
            // `linger.ms` already does the batching, so Nagle only adds latency.
            .set("socket.nagle.disable", "true");
        if self.tansu_compat {
            // tansu listens on IPv4 loopback; skip the IPv6 attempt on "localhost".
            c.set("broker.address.family", "v4");
        }
        self.security.apply(&mut c)?;
        Ok(c)
    }

    pub(crate) fn session_timeout_ms(&self) -> u32 {
        self.session_timeout_ms
            .unwrap_or(if self.tansu_compat { 6_000 } else { 45_000 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SaslMechanism::*;
    use SecurityProtocol::*;
    use std::path::Path;

    fn sasl(protocol: SecurityProtocol, mechanism: SaslMechanism, pw: &Path) -> KafkaSecurity {
        KafkaSecurity {
            protocol,
            sasl_mechanism: Some(mechanism),
            username: Some("vigil".into()),
            password_file: Some(pw.to_path_buf()),
            ..KafkaSecurity::default()
        }
    }

    fn client(security: KafkaSecurity) -> Result<ClientConfig, BusError> {
        let mut cfg = KafkaConfig::new("b:9092", false);
        cfg.security = security;
        cfg.client("t")
    }

    #[test]
    fn sasl_scram_maps_to_librdkafka_with_the_password_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let c = client(KafkaSecurity {
            ca_file: Some("/etc/ca.pem".into()),
            ..sasl(SaslSsl, ScramSha512, &pw)
        })
        .unwrap();
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.username"), Some("vigil"));
        assert_eq!(c.get("sasl.password"), Some("s3cret"));
        assert_eq!(c.get("ssl.ca.location"), Some("/etc/ca.pem"));
        // Plaintext by default, and said so explicitly.
        let c = client(KafkaSecurity::default()).unwrap();
        assert_eq!(c.get("security.protocol"), Some("plaintext"));
        assert_eq!(c.get("sasl.username"), None);
        // The section's spelling in a config file.
        let s: KafkaSecurity = serde_json::from_str(
            r#"{"protocol": "sasl_plaintext", "sasl_mechanism": "SCRAM-SHA-256"}"#,
        )
        .unwrap();
        assert_eq!(
            (s.protocol, s.sasl_mechanism),
            (SaslPlaintext, Some(ScramSha256))
        );
    }

    #[test]
    fn fields_that_do_not_fit_the_protocol_are_refused_by_name() {
        let pw = Path::new("/nonexistent/pw");
        let err = |s: KafkaSecurity| s.validate().unwrap_err().to_string();
        let base = sasl(SaslPlaintext, ScramSha256, pw);
        let no_mechanism = KafkaSecurity {
            sasl_mechanism: None,
            ..base.clone()
        };
        assert!(err(no_mechanism).contains("kafka.security.sasl_mechanism"));
        let no_user = KafkaSecurity {
            username: None,
            ..base.clone()
        };
        assert!(err(no_user).contains("kafka.security.username"));
        let no_password = KafkaSecurity {
            password_file: None,
            ..base.clone()
        };
        assert!(err(no_password).contains("kafka.security.password_file"));
        assert!(err(sasl(SaslPlaintext, Plain, pw)).contains("only with sasl_ssl"));
        let stray_user = KafkaSecurity {
            username: Some("u".into()),
            ..KafkaSecurity::default()
        };
        let e = err(stray_user);
        assert!(
            e.contains("kafka.security.username") && e.contains("protocol plaintext has no SASL"),
            "{e}"
        );
        let stray_ca = KafkaSecurity {
            ca_file: Some("/ca".into()),
            ..base.clone()
        };
        assert!(err(stray_ca).contains("kafka.security.ca_file"));
        let half_identity = KafkaSecurity {
            protocol: Ssl,
            cert_file: Some("/c".into()),
            ..KafkaSecurity::default()
        };
        assert!(err(half_identity).contains("go together"));
        // A missing password file is named when the client is made.
        let e = client(base).unwrap_err().to_string();
        assert!(
            e.contains("kafka.security.password_file") && e.contains("/nonexistent/pw"),
            "{e}"
        );
    }
}
