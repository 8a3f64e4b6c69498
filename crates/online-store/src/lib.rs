//! The online store: Vigil's speed-layer state in Redis, through `fred`.
//!
//! Keys are namespaced and versioned (`vigil:v1:…`):
//! * `vigil:v1:user:{user_id}` — the user's [`features::UserState`] (JSON);
//! * `vigil:v1:offset:{consumer}:{topic}:{partition}` — the next Kafka offset to apply;
//! * `vigil:v1:seen:{transaction_id}` — ingest's duplicate marker (with a TTL).
//!
//! [`OnlineStore::commit`] writes a batch's user states *and* the consumer's next offsets in one
//! `MULTI`/`EXEC` transaction: either the batch is applied and its offsets advanced, or neither.
//! That is what makes the feature-service's Kafka consumer effectively-once.
//!
//! Every command has a bounded timeout; reads of many keys use one `MGET`.

use features::UserState;
use fred::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

const PREFIX: &str = "vigil:v1";

/// The `redis` config section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// Timeout of every command.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    1_000
}

/// Errors of the online store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("corrupt state at {key}: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A handle to the online store (cheap to clone).
#[derive(Clone)]
pub struct OnlineStore {
    client: Client,
}

impl std::fmt::Debug for OnlineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineStore").finish_non_exhaustive()
    }
}

fn user_key(user_id: &str) -> String {
    format!("{PREFIX}:user:{user_id}")
}

fn offset_key(consumer: &str, topic: &str, partition: i32) -> String {
    format!("{PREFIX}:offset:{consumer}:{topic}:{partition}")
}

fn seen_key(transaction_id: &str) -> String {
    format!("{PREFIX}:seen:{transaction_id}")
}

/// A consumer's next offset for one partition, part of a [`OnlineStore::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl OnlineStore {
    /// Connects and checks the connection with a `PING`.
    pub async fn connect(cfg: &RedisConfig) -> Result<OnlineStore, StoreError> {
        let config = Config::from_url(&cfg.url)?;
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
            })
            .with_performance_config(|p| {
                p.default_command_timeout = timeout;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build()?;
        client.init().await?;
        let _: String = client.ping(None).await?;
        Ok(OnlineStore { client })
    }

    /// The states of `user_ids` (one `MGET`); `None` for users never seen.
    pub async fn get_states(
        &self,
        user_ids: &[&str],
    ) -> Result<Vec<Option<UserState>>, StoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = user_ids.iter().map(|u| user_key(u)).collect();
        let values: Vec<Option<String>> = if keys.len() == 1 {
            vec![self.client.get(&keys[0]).await?]
        } else {
            self.client.mget(keys.clone()).await?
        };
        values
            .into_iter()
            .zip(keys)
            .map(|(v, key)| match v {
                None => Ok(None),
                Some(json) => serde_json::from_str(&json)
                    .map(Some)
                    .map_err(|source| StoreError::Corrupt { key, source }),
            })
            .collect()
    }

    /// The stored next offsets of `consumer` for `topic`, for partitions `0..partitions`.
    pub async fn next_offsets(
        &self,
        consumer: &str,
        topic: &str,
        partitions: i32,
    ) -> Result<BTreeMap<i32, i64>, StoreError> {
        let keys: Vec<String> = (0..partitions)
            .map(|p| offset_key(consumer, topic, p))
            .collect();
        if keys.is_empty() {
            return Ok(BTreeMap::new());
        }
        let values: Vec<Option<i64>> = if keys.len() == 1 {
            vec![self.client.get(&keys[0]).await?]
        } else {
            self.client.mget(keys).await?
        };
        Ok((0..partitions)
            .zip(values)
            .filter_map(|(p, v)| v.map(|o| (p, o)))
            .collect())
    }

    /// Atomically writes the user states and the consumer's next offsets (`MULTI`/`EXEC`).
    pub async fn commit(
        &self,
        consumer: &str,
        states: &[(&str, &UserState)],
        offsets: &[NextOffset],
    ) -> Result<(), StoreError> {
        let tx = self.client.multi();
        for (user, state) in states {
            let json = serde_json::to_string(state).map_err(|source| StoreError::Corrupt {
                key: user_key(user),
                source,
            })?;
            let () = tx.set(user_key(user), json, None, None, false).await?;
        }
        for o in offsets {
            let () = tx
                .set(
                    offset_key(consumer, &o.topic, o.partition),
                    o.offset,
                    None,
                    None,
                    false,
                )
                .await?;
        }
        let _: Value = tx.exec(true).await?;
        Ok(())
    }

    /// Which of `transaction_ids` ingest has already accepted (one `MGET`).
    pub async fn seen(&self, transaction_ids: &[&str]) -> Result<Vec<bool>, StoreError> {
        if transaction_ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = transaction_ids.iter().map(|t| seen_key(t)).collect();
        let values: Vec<Option<String>> = if keys.len() == 1 {
            vec![self.client.get(&keys[0]).await?]
        } else {
            self.client.mget(keys).await?
        };
        Ok(values.into_iter().map(|v| v.is_some()).collect())
    }

    /// Marks transactions as accepted by ingest, for `ttl` (one pipeline).
    pub async fn mark_seen(
        &self,
        transaction_ids: &[&str],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        if transaction_ids.is_empty() {
            return Ok(());
        }
        let pipeline = self.client.pipeline();
        let secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        for t in transaction_ids {
            let () = pipeline
                .set(seen_key(t), "1", Some(Expiration::EX(secs)), None, false)
                .await?;
        }
        let _: Vec<Value> = pipeline.all().await?;
        Ok(())
    }

    /// Closes the connection.
    pub async fn quit(&self) -> Result<(), StoreError> {
        self.client.quit().await?;
        Ok(())
    }
}
