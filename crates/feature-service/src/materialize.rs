//! Bootstrap of the online store from the batch layer: the lake replayed through the
//! `features` engine ([`feature_builder::states_as_of`]) into Redis, with the next offsets the
//! speed layer continues from, so that live vectors start from the same history the model was
//! trained on.
//!
//! **Handover.** The rebuilt state holds every record of the lake. The speed layer must then
//! apply exactly the records that are *not* in it, once:
//! * [`Handover::Lake`] — the lake was written from these topics by the lake writer: the next
//!   offset of each partition is the lake's last offset + 1. Later records are applied by the
//!   speed layer from Kafka (they must still be in the topic's retention). A record the lake
//!   writer refused (invalid) and the speed layer would quarantine can sit past that offset:
//!   it is quarantined again, which changes no state.
//! * [`Handover::TopicEnd`] — the lake holds history that did not come through these topics
//!   (an import, a generated history) and everything in the topics is already in it: the
//!   speed layer starts at the topics' current end offsets.
//!
//! The speed layer must not run during a bootstrap (merchant hashes are replaced, not
//! incremented): the command refuses when the speed group already has offsets, unless
//! forced (then its offsets are cleared first; states of entities not in the lake are left
//! as they are — bootstrap into an empty store for a clean state). The speed group's
//! Kafka-committed position does not matter: the speed layer skips what is below the stored
//! offsets, and a group position past them is sought back to them (as after a Redis loss,
//! `speed::SpeedLayer::rewind_lost`), so it applies exactly what the bootstrap does not hold.

use crate::Config;
use crate::speed::INPUT_TOPICS;
use feature_builder::AsOf;
use features::LONGEST_WINDOW_MS;
use lake::{LakeReader, Table};
use online_store::{NextOffset, OnlineStore, Snapshot};
use serde::Serialize;
use service_runtime::clock::now_ms;
use std::collections::BTreeMap;

/// Where the speed layer continues after a bootstrap (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Handover {
    Lake,
    TopicEnd,
}

/// Errors of a bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error(transparent)]
    Store(#[from] online_store::StoreError),
    #[error(transparent)]
    Lake(#[from] lake::LakeError),
    #[error(transparent)]
    Build(#[from] feature_builder::BuildError),
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error(
        "the speed group {0:?} already has offsets in Redis: a speed layer ran against this store; stop it and pass --force to overwrite its state"
    )]
    AlreadyStarted(String),
}

/// What a bootstrap wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cutoff_ms: i64,
    pub handover: Handover,
    pub transactions_read: u64,
    pub duplicates: u64,
    pub fraud_reports: u64,
    pub profiles_read: u64,
    pub users: usize,
    /// Users whose latest event is older than the longest window: not written.
    pub users_idle: usize,
    pub merchants: usize,
    pub profiles: usize,
    /// The next offsets stored for the speed group, by topic and partition.
    pub offsets: BTreeMap<String, BTreeMap<i32, i64>>,
    pub elapsed_ms: u128,
}

/// Rebuilds the online state from the lake at `cfg.lake.path` and loads it into Redis for the
/// speed group `cfg.feature_service.speed_group`.
pub async fn materialize(
    cfg: &Config,
    handover: Handover,
    force: bool,
) -> Result<Report, MaterializeError> {
    let started = std::time::Instant::now();
    let s = &cfg.feature_service;
    let partitions = cfg.kafka.partitions;
    // A batch job, not a latency path: pipelines of whole states get a generous timeout.
    let redis = online_store::RedisConfig {
        timeout_ms: cfg.redis.timeout_ms.max(30_000),
        ..cfg.redis.clone()
    };
    let store = OnlineStore::connect(&redis).await?;
    if store
        .has_offsets(&s.speed_group, &INPUT_TOPICS, partitions)
        .await?
    {
        if !force {
            return Err(MaterializeError::AlreadyStarted(s.speed_group.clone()));
        }
        // Offsets of partitions without lake rows must not survive a forced bootstrap.
        store
            .clear_offsets(&s.speed_group, &INPUT_TOPICS, partitions)
            .await?;
    }
    let reader = LakeReader::open(cfg.lake.path.clone()).await?;
    // Everything the lake holds: no record in it is later than now + the allowed skew.
    let now = now_ms();
    let as_of = AsOf {
        cutoff_ms: now.saturating_add(s.max_future_skew_ms),
        assume_legit_after_ms: 0,
    };
    // Merchant tiles are not pruned here: what is stale depends on the event times still to
    // come (a replayed or late stream reads tiles older than the wall clock's windows); the
    // speed layer prunes each merchant by its own latest event on its next update.
    let (states, summary) = feature_builder::states_as_of(&reader, as_of).await?;
    let idle_before = now - LONGEST_WINDOW_MS;
    let users: Vec<(&str, &features::UserState)> = states
        .users
        .iter()
        .filter(|(_, u)| u.last_event_ms().is_some_and(|t| t >= idle_before))
        .map(|(id, u)| (id.as_str(), u))
        .collect();
    let users_idle = states.users.len() - users.len();

    let mut offsets: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for (topic, table) in
        INPUT_TOPICS
            .iter()
            .zip([Table::Transactions, Table::Labels, Table::Profiles])
    {
        let next = match handover {
            Handover::Lake => reader.next_offsets(table).await?,
            Handover::TopicEnd => bus::admin::end_offsets(&cfg.kafka, topic, partitions).await?,
        };
        offsets.insert((*topic).to_owned(), next);
    }
    let snapshot = Snapshot {
        users: users.clone(),
        merchants: states
            .merchants
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(id, m)| (id.as_str(), m))
            .collect(),
        profiles: states
            .profiles
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(id, h)| (id.as_str(), h))
            .collect(),
        offsets: offsets
            .iter()
            .flat_map(|(topic, next)| {
                next.iter().map(|(p, o)| NextOffset {
                    topic: topic.clone(),
                    partition: *p,
                    offset: *o,
                })
            })
            .collect(),
    };
    store.bootstrap(&s.speed_group, &snapshot, s.ttls()).await?;
    Ok(Report {
        cutoff_ms: as_of.cutoff_ms,
        handover,
        transactions_read: summary.transactions,
        duplicates: summary.duplicates,
        fraud_reports: summary.fraud_reports,
        profiles_read: summary.profiles,
        users: users.len(),
        users_idle,
        merchants: snapshot.merchants.len(),
        profiles: snapshot.profiles.len(),
        offsets,
        elapsed_ms: started.elapsed().as_millis(),
    })
}
