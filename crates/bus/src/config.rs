use rdkafka::ClientConfig;
use serde::Deserialize;

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
        }
    }

    pub(crate) fn client(&self, client_id: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", client_id)
            .set("allow.auto.create.topics", "false")
            .set("socket.keepalive.enable", "true");
        if self.tansu_compat {
            // tansu listens on IPv4 loopback; skip the IPv6 attempt on "localhost".
            c.set("broker.address.family", "v4");
        }
        c
    }

    pub(crate) fn session_timeout_ms(&self) -> u32 {
        self.session_timeout_ms
            .unwrap_or(if self.tansu_compat { 6_000 } else { 45_000 })
    }
}
