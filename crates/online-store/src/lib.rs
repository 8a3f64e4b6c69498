//! The online store: Vigil's speed-layer state in Redis, through `fred`.
//!
//! Keys are namespaced and versioned by the stored states' layout (`vigil:v4:…`; bumped
//! whenever a stored state's format changes, so a new release never misreads an old state —
//! it starts from its own keys, bootstrapped with `vigil-materialize`):
//! * `vigil:v4:user:{user_id}` — the user's [`features::UserState`] (JSON), expiring
//!   [`features::LONGEST_WINDOW_MS`] after its last write;
//! * `vigil:v4:merchant:{merchant_id}` — a hash of the merchant's integer counters
//!   ([`features::MerchantState`]), changed only by `HINCRBY` (commutative, so several
//!   speed-layer instances may update one merchant) and `HDEL` of tiles no window reads any
//!   more; expires like user states;
//! * `vigil:v4:profile:{user_id}` — the user's [`features::ProfileHistory`] (JSON), expiring
//!   `profile` TTL (default 400 days) after its last change or its user's last transaction,
//!   whichever is later: a profile outlives idle windows;
//! * `vigil:v4:txn:{transaction_id}` — the transaction's merchant, written by ingest when it
//!   accepts the transaction, so a label submitted later without a merchant can be counted
//!   for it; expires after the label horizon;
//! * `vigil:v4:offset:{consumer}:{topic}:{partition}` — the next Kafka offset to apply;
//! * `vigil:v4:seen:{transaction_id}` — ingest's duplicate marker (with a TTL): `p` while
//!   ingest is publishing the transaction (a short lease), `1` once it is on the topic;
//! * `vigil:v4:outbox:{consumer}:{partition}` — the feature vectors of the consumer's last
//!   committed batch from that transactions partition that are not yet known to be published
//!   (length-delimited protobufs), written in the batch's commit, deleted once published.
//!
//! [`OnlineStore::commit`] writes a batch's user states, merchant increments, profiles *and*
//! the consumer's next offsets in one Lua script that first checks the offsets are still
//! those the batch was computed from: either the batch is applied and its offsets advanced,
//! or nothing is written. That is what makes the feature-service's Kafka consumer
//! effectively-once, even when a timed-out commit runs late on the server.
//!
//! Every command has a bounded timeout; reads of many keys use one `MGET`.

use features::{CounterKey, MerchantDelta, MerchantState, ProfileHistory, UserState};
use fred::prelude::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::time::Duration;

const PREFIX: &str = "vigil:v4";

/// The `redis` config section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// Timeout of every command.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// ACL user to authenticate as (Redis 6+); unset, `default`.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password (a mounted Secret; never the config itself, where it would
    /// show in logs and `kubectl describe`). Unset, no `AUTH` is sent.
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
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
    #[error("corrupt merchant state at {key}: unknown field {field:?}")]
    CorruptMerchant { key: String, field: String },
    #[error("corrupt offset at {key}: {value:?} is not an integer")]
    CorruptOffset { key: String, value: String },
    #[error(transparent)]
    Secret(#[from] service_runtime::ConfigError),
    /// A conditional commit found an offset moved since its batch read it: another commit
    /// (an earlier attempt that ran late, or another instance) applied those records first.
    #[error("offset {key} moved since the batch read it (now {found:?}): nothing written")]
    OffsetsMoved { key: String, found: Option<String> },
    #[error("unexpected reply of the commit script: {0}")]
    Script(String),
}

impl StoreError {
    /// Whether retrying can succeed. A corrupt stored value, a command Redis refuses for its
    /// arguments, or a value over Redis' size limit fails again however often it is retried;
    /// everything else (connection, timeout, a Redis out of memory or paused, a failover) is
    /// the dependency's and passes.
    pub fn is_transient(&self) -> bool {
        use fred::error::ErrorKind as K;
        match self {
            StoreError::Corrupt { .. }
            | StoreError::CorruptMerchant { .. }
            | StoreError::CorruptOffset { .. }
            | StoreError::Secret(_)
            | StoreError::Script(_) => false,
            // Re-reading the offsets skips what the other commit applied.
            StoreError::OffsetsMoved { .. } => true,
            StoreError::Redis(e) => match e.kind() {
                K::InvalidArgument | K::InvalidCommand | K::Parse | K::NotFound => false,
                K::Unknown => {
                    let d = e.details();
                    !(d.contains("exceeds maximum") || d.contains("too large"))
                }
                _ => true,
            },
        }
    }
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

fn merchant_key(merchant_id: &str) -> String {
    format!("{PREFIX}:merchant:{merchant_id}")
}

fn profile_key(user_id: &str) -> String {
    format!("{PREFIX}:profile:{user_id}")
}

fn txn_key(transaction_id: &str) -> String {
    format!("{PREFIX}:txn:{transaction_id}")
}

fn offset_key(consumer: &str, topic: &str, partition: i32) -> String {
    format!("{PREFIX}:offset:{consumer}:{topic}:{partition}")
}

fn seen_key(transaction_id: &str) -> String {
    format!("{PREFIX}:seen:{transaction_id}")
}

fn outbox_key(consumer: &str, partition: i32) -> String {
    format!("{PREFIX}:outbox:{consumer}:{partition}")
}

/// Everything one speed-layer batch changes, written atomically by [`OnlineStore::commit`].
#[derive(Debug, Default)]
pub struct Commit<'a> {
    /// What the batch will publish, per source partition (see [`OnlineStore::outboxes`]).
    pub outbox: Vec<(i32, Vec<u8>)>,
    pub users: Vec<(&'a str, &'a UserState)>,
    /// Increments per merchant (`HINCRBY`).
    pub merchant_deltas: Vec<(&'a str, &'a MerchantDelta)>,
    /// Counters no window reads any more (`HDEL`).
    pub merchant_stale: Vec<(&'a str, Vec<CounterKey>)>,
    /// Profile histories that changed (whole value, `SET`).
    pub profiles: Vec<(&'a str, &'a ProfileHistory)>,
    /// Users active in the batch: their profile keys' TTL restarts (`EXPIRE`), so a profile
    /// lives `profile` TTL after the user's last transaction, not after its last change.
    pub active_users: Vec<&'a str>,
    /// The offsets the batch advances, each with the value it was computed from.
    pub offsets: Vec<OffsetMove>,
}

/// A complete online state to load at once ([`OnlineStore::bootstrap`]): what the batch layer
/// rebuilt from the lake, with the offsets the speed layer continues from.
#[derive(Debug, Default)]
pub struct Snapshot<'a> {
    pub users: Vec<(&'a str, &'a UserState)>,
    /// Whole merchant states (the hash is replaced, not incremented).
    pub merchants: Vec<(&'a str, &'a MerchantState)>,
    pub profiles: Vec<(&'a str, &'a ProfileHistory)>,
    pub offsets: Vec<NextOffset>,
}

/// How long keys live after their last write.
#[derive(Debug, Clone, Copy)]
pub struct Ttls {
    /// User and merchant states: the longest window.
    pub state: Duration,
    /// Profile histories.
    pub profile: Duration,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX)
}

/// Which kind of state key, for [`OnlineStore::memory_usage`].
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    User,
    Merchant,
    Profile,
}

/// A consumer's next offset for one partition, part of a [`OnlineStore::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One offset a [`OnlineStore::commit`] advances: from the value the batch read to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetMove {
    pub next: NextOffset,
    /// The stored next offset the batch was computed from (`None`: none was stored). The
    /// commit is refused if Redis holds anything else by then.
    pub from: Option<i64>,
}

/// The Lua script behind [`OnlineStore::commit`]: compare the offsets, then apply every write.
///
/// `ARGV[1]` is the number of offsets to compare, `n`; `KEYS[1..n]` are their keys and
/// `ARGV[2..n+1]` the values expected (`""` for a key that must not exist). Then, for each
/// write, `ARGV` holds its command, its key's index in `KEYS` and its number of arguments,
/// followed by the arguments. Returns `{0}` once applied, or `{1, key, found}` for the
/// first offset that is not the expected one (`found` is `""` for a missing key).
/// Sent with `EVAL` (Redis caches the compiled script by its hash); fred's `EVALSHA` helper
/// would need its `sha-1` feature for a saving of about 1 KiB per batch.
pub const COMMIT_SCRIPT: &str = r#"
local n = tonumber(ARGV[1])
for i = 1, n do
  local found = redis.call('GET', KEYS[i])
  if found == false then found = '' end
  if found ~= ARGV[i + 1] then
    return {1, KEYS[i], found}
  end
end
local a = n + 2
while a <= #ARGV do
  local cmd, key, argc = ARGV[a], KEYS[tonumber(ARGV[a + 1])], tonumber(ARGV[a + 2])
  redis.call(cmd, key, unpack(ARGV, a + 3, a + 2 + argc))
  a = a + 3 + argc
end
return {0}
"#;

/// Builds the keys and arguments of one [`COMMIT_SCRIPT`] call.
#[derive(Default)]
struct ScriptBuilder {
    expected: Vec<(String, Option<i64>)>,
    ops: Vec<(&'static str, String, Vec<Value>)>,
}

impl ScriptBuilder {
    fn expect(&mut self, key: String, value: Option<i64>) {
        self.expected.push((key, value));
    }

    fn op(&mut self, command: &'static str, key: String, args: Vec<Value>) {
        self.ops.push((command, key, args));
    }

    async fn run(self, client: &Client) -> Result<(), StoreError> {
        let n = self.expected.len();
        let mut keys: Vec<String> = Vec::with_capacity(n + self.ops.len());
        let mut args: Vec<Value> = Vec::with_capacity(1 + n + self.ops.len() * 5);
        args.push(Value::from(n as i64));
        for (key, value) in self.expected {
            keys.push(key);
            args.push(value.map_or_else(|| Value::from(""), |v| Value::from(v.to_string())));
        }
        for (command, key, op_args) in self.ops {
            keys.push(key);
            args.push(command.into());
            args.push(Value::from(keys.len() as i64));
            args.push(Value::from(op_args.len() as i64));
            args.extend(op_args);
        }
        let reply: Vec<Value> = client.eval(COMMIT_SCRIPT, keys, args).await?;
        match reply.first().and_then(Value::as_i64) {
            Some(0) => Ok(()),
            // A reply of another shape is the script's bug: said, not read as empty fields.
            Some(1) => match (
                reply.get(1).and_then(Value::as_string),
                reply.get(2).and_then(Value::as_string),
            ) {
                (Some(key), Some(found)) => Err(StoreError::OffsetsMoved {
                    key,
                    found: (!found.is_empty()).then_some(found),
                }),
                _ => Err(StoreError::Script(format!("{reply:?}"))),
            },
            _ => Err(StoreError::Script(format!("{reply:?}"))),
        }
    }
}

/// The value of a duplicate marker while ingest is publishing its transaction.
const PENDING: &str = "p";

/// What [`OnlineStore::reserve`] found for one transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The id is now this caller's to publish.
    Reserved,
    /// Another request is publishing it right now (its outcome is not known yet).
    InFlight,
    /// It was accepted before: a duplicate.
    Accepted,
}

/// Keys per pipeline in [`OnlineStore::bootstrap`].
pub const BOOTSTRAP_CHUNK: usize = 250;

fn to_json<T: serde::Serialize>(key: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Corrupt {
        key: key.to_owned(),
        source,
    })
}

async fn set_json<C: KeysInterface + Sync, T: serde::Serialize>(
    c: &C,
    key: String,
    value: &T,
    ttl_secs: i64,
) -> Result<(), StoreError> {
    let json = to_json(&key, value)?;
    let () = c
        .set(key, json, Some(Expiration::EX(ttl_secs)), None, false)
        .await?;
    Ok(())
}

async fn set_offsets<C: KeysInterface + Sync>(
    c: &C,
    consumer: &str,
    offsets: &[NextOffset],
) -> Result<(), StoreError> {
    for o in offsets {
        let () = c
            .set(
                offset_key(consumer, &o.topic, o.partition),
                o.offset,
                None,
                None,
                false,
            )
            .await?;
    }
    Ok(())
}

impl OnlineStore {
    /// Connects and checks the connection with a `PING`.
    pub async fn connect(cfg: &RedisConfig) -> Result<OnlineStore, StoreError> {
        let mut config = Config::from_url(&cfg.url)?;
        if let Some(path) = &cfg.password_file {
            config.password = Some(service_runtime::security::read_secret(
                "redis.password_file",
                path,
            )?);
        }
        if let Some(user) = &cfg.username {
            config.username = Some(user.clone());
        }
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                // fred leaves TCP_NODELAY unset (Nagle on): concurrent commands written while
                // the first reply is unacknowledged would wait for Redis' delayed ACK.
                c.tcp.nodelay = Some(true);
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

    /// The values of `keys` (one `GET` or `MGET`).
    async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<String>>, StoreError> {
        Ok(match keys.len() {
            0 => Vec::new(),
            1 => vec![self.client.get(&keys[0]).await?],
            _ => self.client.mget(keys).await?,
        })
    }

    /// The JSON values of `keys`, decoded; `None` where a key is missing.
    async fn get_json<T: DeserializeOwned>(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<T>>, StoreError> {
        let values = self.get_many(keys.clone()).await?;
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

    /// The states of `user_ids` (one `MGET`); `None` for users never seen (or expired).
    pub async fn get_users(&self, user_ids: &[&str]) -> Result<Vec<Option<UserState>>, StoreError> {
        self.get_json(user_ids.iter().map(|u| user_key(u)).collect())
            .await
    }

    /// The profile histories of `user_ids` (one `MGET`); empty for users without a profile.
    pub async fn get_profiles(&self, user_ids: &[&str]) -> Result<Vec<ProfileHistory>, StoreError> {
        let found: Vec<Option<ProfileHistory>> = self
            .get_json(user_ids.iter().map(|u| profile_key(u)).collect())
            .await?;
        Ok(found.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// The states of `merchant_ids` (`HGETALL` each, in one pipeline); empty for merchants
    /// never seen.
    pub async fn get_merchants(
        &self,
        merchant_ids: &[&str],
    ) -> Result<Vec<MerchantState>, StoreError> {
        if merchant_ids.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = self.client.pipeline();
        for m in merchant_ids {
            let () = pipeline.hgetall(merchant_key(m)).await?;
        }
        let maps: Vec<std::collections::HashMap<String, i64>> = pipeline.all().await?;
        maps.into_iter()
            .zip(merchant_ids)
            .map(|(map, m)| {
                MerchantState::from_fields(map.iter().map(|(f, v)| (f.as_str(), *v))).map_err(
                    |field| StoreError::CorruptMerchant {
                        key: merchant_key(m),
                        field,
                    },
                )
            })
            .collect()
    }

    /// The merchants of `transaction_ids` from the label resolution index (one `MGET`).
    pub async fn merchants_of(
        &self,
        transaction_ids: &[&str],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if transaction_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.get_many(transaction_ids.iter().map(|t| txn_key(t)).collect())
            .await
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
        let values = self.get_many(keys.clone()).await?;
        (0..partitions)
            .zip(values)
            .zip(keys)
            .filter_map(|((p, v), key)| v.map(|o| (p, o, key)))
            .map(|(p, o, key)| {
                o.parse::<i64>()
                    .map(|o| (p, o))
                    .map_err(|_| StoreError::CorruptOffset { key, value: o })
            })
            .collect()
    }

    /// Writes everything a batch changed, atomically and only if the consumer's stored
    /// offsets are still those the batch read ([`OffsetMove::from`]); otherwise nothing is
    /// written and [`StoreError::OffsetsMoved`] names the first offset that moved.
    ///
    /// The check and the writes run in one Lua script ([`COMMIT_SCRIPT`]), so no other client
    /// can come between them. That is what keeps a retried commit from applying a batch twice
    /// when its first attempt timed out on the client but still ran on the server later (a
    /// Redis paused or slow): `HINCRBY` is not idempotent, and with `MULTI` alone the retry
    /// would be refused only as long as every command of this client shares one connection.
    /// As with `MULTI`, Redis does not roll back a script whose command fails part-way; the
    /// offsets are written last, so such a batch is not marked applied.
    pub async fn commit(
        &self,
        consumer: &str,
        commit: &Commit<'_>,
        ttls: Ttls,
    ) -> Result<(), StoreError> {
        let mut script = ScriptBuilder::default();
        for m in &commit.offsets {
            script.expect(
                offset_key(consumer, &m.next.topic, m.next.partition),
                m.from,
            );
        }
        let state_ttl = secs(ttls.state);
        for (user, state) in &commit.users {
            let key = user_key(user);
            let json = to_json(&key, state)?;
            script.op("SET", key, vec![json.into(), "EX".into(), state_ttl.into()]);
        }
        for (user, history) in &commit.profiles {
            let key = profile_key(user);
            let json = to_json(&key, history)?;
            script.op(
                "SET",
                key,
                vec![json.into(), "EX".into(), secs(ttls.profile).into()],
            );
        }
        for user in &commit.active_users {
            script.op("EXPIRE", profile_key(user), vec![secs(ttls.profile).into()]);
        }
        for (merchant, delta) in &commit.merchant_deltas {
            let key = merchant_key(merchant);
            for (counter, by) in &delta.0 {
                script.op(
                    "HINCRBY",
                    key.clone(),
                    vec![counter.to_string().into(), (*by).into()],
                );
            }
            script.op("EXPIRE", key, vec![state_ttl.into()]);
        }
        for (merchant, stale) in &commit.merchant_stale {
            if !stale.is_empty() {
                let fields = stale.iter().map(|c| c.to_string().into()).collect();
                script.op("HDEL", merchant_key(merchant), fields);
            }
        }
        for (partition, bytes) in &commit.outbox {
            script.op(
                "SET",
                outbox_key(consumer, *partition),
                vec![
                    Value::Bytes(bytes.clone().into()),
                    "EX".into(),
                    state_ttl.into(),
                ],
            );
        }
        for m in &commit.offsets {
            script.op(
                "SET",
                offset_key(consumer, &m.next.topic, m.next.partition),
                vec![m.next.offset.into()],
            );
        }
        script.run(&self.client).await
    }

    /// The unpublished outboxes of `consumer` among `partitions` (one `MGET`): what a batch
    /// committed but may not have published before it failed or its process died. The
    /// consumer publishes them, then [`Self::clear_outboxes`], before its next batch — so a
    /// retried batch never computes and publishes its vectors a second time.
    pub async fn outboxes(
        &self,
        consumer: &str,
        partitions: &[i32],
    ) -> Result<Vec<(i32, Vec<u8>)>, StoreError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = partitions
            .iter()
            .map(|p| outbox_key(consumer, *p))
            .collect();
        let values: Vec<Option<Vec<u8>>> = if keys.len() == 1 {
            vec![self.client.get(&keys[0]).await?]
        } else {
            self.client.mget(keys).await?
        };
        Ok(partitions
            .iter()
            .zip(values)
            .filter_map(|(p, v)| v.filter(|v| !v.is_empty()).map(|v| (*p, v)))
            .collect())
    }

    /// Deletes the outboxes of `consumer` for `partitions` (published).
    pub async fn clear_outboxes(
        &self,
        consumer: &str,
        partitions: &[i32],
    ) -> Result<(), StoreError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = partitions
            .iter()
            .map(|p| outbox_key(consumer, *p))
            .collect();
        let _: Value = self.client.del(keys).await?;
        Ok(())
    }

    /// Deletes `consumer`'s stored offsets for `topics` (before a forced bootstrap).
    pub async fn clear_offsets(
        &self,
        consumer: &str,
        topics: &[&str],
        partitions: i32,
    ) -> Result<(), StoreError> {
        let keys: Vec<String> = topics
            .iter()
            .flat_map(|t| (0..partitions).map(move |p| offset_key(consumer, t, p)))
            .collect();
        if !keys.is_empty() {
            let _: Value = self.client.del(keys).await?;
        }
        Ok(())
    }

    /// Whether `consumer` has any stored offset for `topics` (a speed layer already ran).
    pub async fn has_offsets(
        &self,
        consumer: &str,
        topics: &[&str],
        partitions: i32,
    ) -> Result<bool, StoreError> {
        for topic in topics {
            if !self
                .next_offsets(consumer, topic, partitions)
                .await?
                .is_empty()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Loads a whole rebuilt state, then the offsets the speed layer continues from.
    ///
    /// States go in pipelines of [`BOOTSTRAP_CHUNK`] keys (a 10⁶-user state does not fit one
    /// `MULTI`); the offsets are written last, in one `MULTI`, so an interrupted bootstrap
    /// leaves no offsets and is simply run again (every write here replaces, none adds).
    /// The speed layer must not run meanwhile: merchant hashes are replaced, not incremented.
    pub async fn bootstrap(
        &self,
        consumer: &str,
        snapshot: &Snapshot<'_>,
        ttls: Ttls,
    ) -> Result<(), StoreError> {
        let state_ttl = secs(ttls.state);
        for chunk in snapshot.users.chunks(BOOTSTRAP_CHUNK) {
            let p = self.client.pipeline();
            for (user, state) in chunk {
                set_json(&p, user_key(user), state, state_ttl).await?;
            }
            let _: Vec<Value> = p.all().await?;
        }
        for chunk in snapshot.profiles.chunks(BOOTSTRAP_CHUNK) {
            let p = self.client.pipeline();
            for (user, history) in chunk {
                set_json(&p, profile_key(user), history, secs(ttls.profile)).await?;
            }
            let _: Vec<Value> = p.all().await?;
        }
        for chunk in snapshot.merchants.chunks(BOOTSTRAP_CHUNK) {
            let p = self.client.pipeline();
            for (merchant, state) in chunk {
                let key = merchant_key(merchant);
                let _: Value = p.del(&key).await?;
                let fields: Vec<(String, i64)> = state.fields().collect();
                if !fields.is_empty() {
                    let _: Value = p.hset(&key, fields).await?;
                    let _: Value = p.expire(&key, state_ttl, None).await?;
                }
            }
            let _: Vec<Value> = p.all().await?;
        }
        let tx = self.client.multi();
        set_offsets(&tx, consumer, &snapshot.offsets).await?;
        let _: Value = tx.exec(true).await?;
        Ok(())
    }

    /// Bytes Redis uses for a key (`MEMORY USAGE`), for state-size measurements.
    pub async fn memory_usage(&self, kind: KeyKind, id: &str) -> Result<Option<u64>, StoreError> {
        let key = match kind {
            KeyKind::User => user_key(id),
            KeyKind::Merchant => merchant_key(id),
            KeyKind::Profile => profile_key(id),
        };
        let v: Option<u64> = self.client.memory_usage(key, Some(0)).await?;
        Ok(v)
    }

    /// Reserves `transaction_ids` for publishing, atomically per id (`SET … NX GET` in one
    /// pipeline): of concurrent reservations of one id exactly one gets
    /// [`Reservation::Reserved`]. A reservation is a lease of `lease`: if the reserving process
    /// dies before [`Self::mark_seen`] or [`Self::release`], the id becomes free again.
    pub async fn reserve(
        &self,
        transaction_ids: &[&str],
        lease: Duration,
    ) -> Result<Vec<Reservation>, StoreError> {
        if transaction_ids.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = self.client.pipeline();
        for t in transaction_ids {
            let () = pipeline
                .set(
                    seen_key(t),
                    PENDING,
                    Some(Expiration::EX(secs(lease))),
                    Some(SetOptions::NX),
                    true,
                )
                .await?;
        }
        let previous: Vec<Option<String>> = pipeline.all().await?;
        Ok(previous
            .into_iter()
            .map(|v| match v.as_deref() {
                None => Reservation::Reserved,
                Some(PENDING) => Reservation::InFlight,
                Some(_) => Reservation::Accepted,
            })
            .collect())
    }

    /// Gives reservations back (their publish failed), so a retry can publish them.
    pub async fn release(&self, transaction_ids: &[&str]) -> Result<(), StoreError> {
        if transaction_ids.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = transaction_ids.iter().map(|t| seen_key(t)).collect();
        let _: Value = self.client.del(keys).await?;
        Ok(())
    }

    /// Marks transactions `(transaction_id, merchant_id)` as accepted by ingest (published;
    /// this replaces their reservation), for `ttl`,
    /// and records their merchants in the label resolution index for `index_ttl` (one
    /// pipeline).
    pub async fn mark_seen(
        &self,
        transactions: &[(&str, &str)],
        ttl: Duration,
        index_ttl: Duration,
    ) -> Result<(), StoreError> {
        if transactions.is_empty() {
            return Ok(());
        }
        let pipeline = self.client.pipeline();
        let (secs, index_secs) = (secs(ttl), secs(index_ttl));
        for (t, merchant) in transactions {
            let () = pipeline
                .set(seen_key(t), "1", Some(Expiration::EX(secs)), None, false)
                .await?;
            let () = pipeline
                .set(
                    txn_key(t),
                    *merchant,
                    Some(Expiration::EX(index_secs)),
                    None,
                    false,
                )
                .await?;
        }
        let _: Vec<Value> = pipeline.all().await?;
        Ok(())
    }

    /// One round trip to Redis (`PING`): for readiness probes of services that use the store
    /// only when a request comes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.client.ping(None).await?;
        Ok(())
    }

    /// Closes the connection.
    pub async fn quit(&self) -> Result<(), StoreError> {
        self.client.quit().await?;
        Ok(())
    }
}
