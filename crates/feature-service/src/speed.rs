//! The speed layer: transactions, labels and profiles → feature vectors → Redis state,
//! effectively once.
//!
//! One consumer reads `vigil.transactions.v1`, `vigil.labels.v1` and `vigil.profiles.v1` (all
//! keyed by user, so a partition holds a user's records in arrival order). Per batch:
//! 1. records at or past the stored next offsets are decoded and validated (a transaction
//!    dated after `now + max_future_skew` is quarantined, naming `event_time`);
//! 2. the batch's users (JSON states), profile histories and merchants (counter hashes) are
//!    loaded, and labels are resolved to their transaction's merchant (the batch itself, else
//!    the Redis index);
//! 3. the `features` engine runs over the batch in order: a transaction gets its vector as
//!    of just before it and is folded into its user and merchant; a fraud label becomes
//!    increments of its merchant's report counters at its `reported_at`; a profile version
//!    joins its user's history (read by the user's transactions dated from its `valid_from`);
//! 4. user states, profile histories, merchant increments (`HINCRBY`, commutative, so other
//!    instances may update the same merchant), the next offsets of the three topics *and the
//!    batch's vectors* (an outbox per transactions partition) are committed in one Lua
//!    script, only if the stored offsets are still those read in step 1 (else nothing is
//!    written and the batch is retried from a fresh read); then the vectors are published
//!    and the outbox cleared.
//!
//! A retried batch re-reads the offsets, so nothing is applied twice, and it never computes
//! or publishes its vectors again: they are in the outbox, which every batch first publishes
//! (for the partitions this instance is assigned) if a failure or a crash left it there. A
//! vector is published twice only if the process dies, or the broker fails part of a
//! publish, between publishing and clearing the outbox.
//!
//! Failures are classified for [`bus::BatchLoop`]: Redis or the broker unavailable are
//! retried until they recover; a record whose stored state cannot be read is quarantined.
//!
//! Redis is the source of truth for what was applied. If it comes back holding less than was
//! committed to it — by this instance, or by the consumer group before this instance was
//! assigned the partition (a crash that lost writes, a failover to a lagging replica, a
//! restored backup, even while no instance ran) — the partitions concerned are sought back
//! to the offsets Redis holds and re-applied ([`SpeedLayer::rewind_lost`]); their vectors
//! are published a second time.

use crate::config::Config;
use crate::metrics::{
    LABEL_COUNTED, LABEL_INVALID, LABEL_NOT_FRAUD, LABEL_UNRESOLVED, Metrics, PROFILE_FOLDED,
    PROFILE_INVALID, PROFILE_UNCHANGED, SKIP_ALREADY_APPLIED, SKIP_DUPLICATE_ID, SKIP_QUARANTINED,
};
use bus::{BusError, Consumer, Delivery, Producer, topics};
use domain::convert::{label_from_proto, profile_from_proto, transaction_from_proto};
use domain::{Label, Transaction, UserProfile};
use features::{Applied, CounterKey, MemoryStates, MerchantDelta};
use online_store::{Commit, NextOffset, OffsetMove, OnlineStore, StoreError, Ttls};
use proto::v1::FeatureVector;
use service_runtime::clock::now_ms;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) struct SpeedLayer {
    consumer: Consumer,
    retry: bus::RetryPolicy,
    store: OnlineStore,
    producer: Producer,
    metrics: Metrics,
    group: String,
    partitions: i32,
    batch_max: usize,
    linger: Duration,
    skew_ms: i64,
    ttls: Ttls,
    /// The next offsets this instance committed to Redis, by (topic, partition): Redis
    /// holding less means it lost writes (see [`SpeedLayer::rewind_lost`]).
    stored_by_me: std::sync::Mutex<HashMap<(String, i32), i64>>,
    /// Partitions whose group offsets were read into `stored_by_me` since they were last
    /// assigned (see [`SpeedLayer::seed_from_group`]).
    seeded: std::sync::Mutex<HashSet<(String, i32)>>,
}

#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt outbox of partition {partition}: {source}")]
    Outbox {
        partition: i32,
        #[source]
        source: proto::prost::DecodeError,
    },
}

impl bus::Failure for BatchError {
    fn is_transient(&self) -> bool {
        match self {
            BatchError::Bus(e) => e.is_transient(),
            BatchError::Store(e) => e.is_transient(),
            // A corrupt outbox fails every batch of the partition: nothing a retry fixes, but
            // quarantining records would not fix it either — it needs an operator, so it holds
            // readiness back instead of losing the vectors.
            BatchError::Outbox { .. } => true,
        }
    }
}

enum Input {
    Txn(Transaction),
    Label(Label),
    Profile(UserProfile),
}

/// Bound of the broker calls that compare Redis with the group's offsets.
const GROUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The topics the speed layer consumes, in the order their offsets are read.
pub(crate) const INPUT_TOPICS: [&str; 3] = [topics::TRANSACTIONS, topics::LABELS, topics::PROFILES];

/// The wire envelope of a vector (the only place it is built).
pub(crate) fn envelope(t: &Transaction, values: Vec<f64>, computed_at_ms: i64) -> FeatureVector {
    FeatureVector {
        transaction_id: t.transaction_id.clone(),
        user_id: t.user_id.clone(),
        feature_set_version: features::FEATURE_SET_VERSION.into(),
        schema_hash: features::schema_hash().into(),
        values,
        event_time: Some(proto::time::from_unix_ms(t.event_time_ms)),
        computed_at: Some(proto::time::from_unix_ms(computed_at_ms)),
        merchant_id: t.merchant_id.clone(),
    }
}

impl SpeedLayer {
    pub(crate) fn new(
        cfg: &Config,
        store: OnlineStore,
        producer: Producer,
        metrics: Metrics,
    ) -> Result<Self, BusError> {
        let s = &cfg.feature_service;
        Ok(SpeedLayer {
            consumer: Consumer::new(&cfg.kafka, &s.speed_group, &INPUT_TOPICS)?,
            retry: cfg.kafka.retry,
            store,
            producer,
            metrics,
            group: s.speed_group.clone(),
            partitions: cfg.kafka.partitions,
            batch_max: s.speed_batch_max,
            linger: Duration::from_millis(s.speed_linger_ms),
            skew_ms: s.max_future_skew_ms,
            ttls: s.ttls(),
            stored_by_me: std::sync::Mutex::default(),
            seeded: std::sync::Mutex::default(),
        })
    }

    pub(crate) async fn run(
        self,
        health: service_runtime::admin::Component,
        loops: &bus::LoopMetrics,
        stop: CancellationToken,
    ) {
        let this = &self;
        bus::BatchLoop {
            stage: "speed-layer",
            consumer: &self.consumer,
            max: self.batch_max,
            linger: self.linger,
            policy: self.retry,
            quarantine: &self.producer,
            health,
            metrics: loops.stage("speed-layer"),
        }
        .run(&stop, move |batch| {
            Box::pin(async move {
                let timer = this.metrics.batch_seconds.start_timer();
                let result = Box::pin(this.process(&batch)).await;
                timer.observe_duration();
                result
            })
        })
        .await;
    }

    async fn quarantine(&self, d: &Delivery, field: &str, reason: &str) -> Result<(), BusError> {
        tracing::warn!(topic = %d.topic, partition = d.partition, offset = d.offset, field, %reason, "quarantined");
        self.producer
            .quarantine_delivery(d, "speed-layer", field, reason, now_ms())
            .await
    }

    /// Publishes what an earlier batch committed but did not finish publishing, for the
    /// transactions partitions this instance is assigned, then clears those outboxes.
    async fn flush_outboxes(&self) -> Result<(), BatchError> {
        let assigned = self.consumer.assigned(topics::TRANSACTIONS)?;
        let pending = self.store.outboxes(&self.group, &assigned).await?;
        if pending.is_empty() {
            return Ok(());
        }
        let mut vectors = Vec::new();
        for (partition, bytes) in &pending {
            let mut buf = bytes.as_slice();
            while !buf.is_empty() {
                let v = <FeatureVector as proto::prost::Message>::decode_length_delimited(&mut buf)
                    .map_err(|source| BatchError::Outbox {
                        partition: *partition,
                        source,
                    })?;
                vectors.push(v);
            }
        }
        tracing::info!(
            count = vectors.len(),
            "publishing vectors a failed batch committed"
        );
        self.producer
            .send_all(
                topics::FEATURES,
                vectors.iter().map(|v| (v.user_id.as_str(), v)),
            )
            .await?;
        let partitions: Vec<i32> = pending.iter().map(|(p, _)| *p).collect();
        self.store.clear_outboxes(&self.group, &partitions).await?;
        Ok(())
    }

    /// Applies one batch. Idempotent: safe to call again with the same batch after a failure.
    async fn process(&self, batch: &[Delivery]) -> Result<(), BatchError> {
        self.flush_outboxes().await?;
        let mut stored: HashMap<&str, BTreeMap<i32, i64>> = HashMap::new();
        for topic in INPUT_TOPICS {
            let next = self
                .store
                .next_offsets(&self.group, topic, self.partitions)
                .await?;
            stored.insert(topic, next);
        }
        let rewound = self.rewind_lost(&stored)?;
        if rewound.is_empty() {
            return Box::pin(self.apply(batch, &stored)).await;
        }
        // The rewound partitions' records are delivered again from the stored offsets.
        let rest: Vec<Delivery> = batch
            .iter()
            .filter(|d| !rewound.contains(&(d.topic.as_str(), d.partition)))
            .cloned()
            .collect();
        Box::pin(self.apply(&rest, &stored)).await
    }

    /// Redis went backwards: the next offsets it holds are below those stored there before
    /// (a crash that lost its last writes, a failover to a replica that lagged, a restored
    /// backup), so the state of the records between is gone while the consumer has moved
    /// past them. What was stored before is known two ways: what this instance committed, and
    /// — for partitions it was just assigned, so for a loss while no instance ran or while
    /// another held them — what the consumer group committed to the broker, which never runs
    /// ahead of Redis ([`SpeedLayer::seed_from_group`]). Each such partition is sought back to
    /// Redis's offset (to the start of the topic when Redis lost them all), so those records
    /// are applied again and the state is exact once more. Returns the partitions rewound.
    fn rewind_lost<'t>(
        &self,
        stored: &HashMap<&'t str, BTreeMap<i32, i64>>,
    ) -> Result<HashSet<(&'t str, i32)>, BatchError> {
        let mut rewound = HashSet::new();
        let mut mine = self
            .stored_by_me
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.seed_from_group(&mut mine)?;
        for (&topic, next) in stored {
            // Only partitions this instance holds now can be sought (and are its to repair).
            for partition in self.consumer.assigned(topic)? {
                let Some(&committed) = mine.get(&(topic.to_owned(), partition)) else {
                    continue;
                };
                let in_redis = next.get(&partition).copied().unwrap_or(0);
                if in_redis >= committed {
                    continue;
                }
                tracing::warn!(
                    topic,
                    partition,
                    in_redis,
                    committed,
                    "redis lost offsets stored before: re-reading the partition from its offset"
                );
                let first = self
                    .consumer
                    .first_offset(topic, partition, GROUP_TIMEOUT)?;
                if in_redis < first {
                    // The records between are gone from the topic too: what is re-read is
                    // all that can be, and the rest needs the batch layer.
                    tracing::error!(
                        topic,
                        partition,
                        in_redis,
                        first,
                        "records lost from redis are past the topic's retention: rebuild the online store with vigil-materialize"
                    );
                    self.metrics.past_retention.inc();
                }
                self.consumer.rewind(topic, partition, in_redis)?;
                self.metrics.rewinds.inc();
                mine.insert((topic.to_owned(), partition), in_redis);
                rewound.insert((topic, partition));
            }
        }
        Ok(rewound)
    }

    /// For partitions assigned since the last batch, takes the consumer group's committed
    /// offsets as stored before (the group commits only after Redis did, so it never runs
    /// ahead of what Redis held). Read once per assignment: a partition revoked and assigned
    /// again within one batch's time is not read again.
    fn seed_from_group(&self, mine: &mut HashMap<(String, i32), i64>) -> Result<(), BatchError> {
        let mut seeded = self
            .seeded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for topic in INPUT_TOPICS {
            let assigned = self.consumer.assigned(topic)?;
            seeded.retain(|(t, p)| t != topic || assigned.contains(p));
            let new: Vec<i32> = assigned
                .into_iter()
                .filter(|p| !seeded.contains(&(topic.to_owned(), *p)))
                .collect();
            if new.is_empty() {
                continue;
            }
            // A blocking broker round trip, once per assignment.
            let group = self.consumer.group_offsets(topic, &new, GROUP_TIMEOUT)?;
            for (partition, offset) in group {
                let e = mine.entry((topic.to_owned(), partition)).or_insert(offset);
                *e = (*e).max(offset);
            }
            seeded.extend(new.into_iter().map(|p| (topic.to_owned(), p)));
        }
        Ok(())
    }

    async fn apply(
        &self,
        batch: &[Delivery],
        stored: &HashMap<&str, BTreeMap<i32, i64>>,
    ) -> Result<(), BatchError> {
        let now = now_ms();
        let mut inputs = Vec::with_capacity(batch.len());
        let mut spans: HashMap<String, tracing::Span> = HashMap::new();
        for d in batch {
            if stored.get(d.topic.as_str()).is_some_and(|n| d.is_below(n)) {
                self.metrics
                    .skipped
                    .with_label_values(&[SKIP_ALREADY_APPLIED])
                    .inc();
                continue;
            }
            if d.topic == topics::PROFILES {
                match decode_profile(d, now, self.skew_ms) {
                    Ok(p) => inputs.push((Input::Profile(p), d.partition)),
                    Err((field, reason)) => {
                        self.metrics
                            .profiles
                            .with_label_values(&[PROFILE_INVALID])
                            .inc();
                        self.quarantine(d, field, &reason).await?;
                    }
                }
            } else if d.topic == topics::TRANSACTIONS {
                match decode_transaction(d, now, self.skew_ms) {
                    Ok(t) => {
                        // The record's span (child of ingest's): its vector is published in it.
                        spans.insert(t.transaction_id.clone(), d.span("speed-layer"));
                        inputs.push((Input::Txn(t), d.partition));
                    }
                    Err((field, reason)) => {
                        self.metrics
                            .skipped
                            .with_label_values(&[SKIP_QUARANTINED])
                            .inc();
                        self.quarantine(d, field, &reason).await?;
                    }
                }
            } else {
                match decode_label(d, now, self.skew_ms) {
                    Ok(l) => inputs.push((Input::Label(l), d.partition)),
                    Err((field, reason)) => {
                        self.metrics
                            .labels
                            .with_label_values(&[LABEL_INVALID])
                            .inc();
                        self.quarantine(d, field, &reason).await?;
                    }
                }
            }
        }

        // Which merchant each label is about: its own field (ingest fills it), else a
        // transaction of this batch, else the index ingest keeps.
        let in_batch: HashMap<&str, &str> = inputs
            .iter()
            .filter_map(|(i, _)| match i {
                Input::Txn(t) => Some((t.transaction_id.as_str(), t.merchant_id.as_str())),
                Input::Label(_) | Input::Profile(_) => None,
            })
            .collect();
        let lookup: Vec<&str> = inputs
            .iter()
            .filter_map(|(i, _)| match i {
                Input::Label(l)
                    if l.merchant_id.is_empty()
                        && !in_batch.contains_key(l.transaction_id.as_str()) =>
                {
                    Some(l.transaction_id.as_str())
                }
                _ => None,
            })
            .collect::<HashSet<&str>>()
            .into_iter()
            .collect();
        let found = self.store.merchants_of(&lookup).await?;
        let indexed: HashMap<&str, String> = lookup
            .iter()
            .zip(found)
            .filter_map(|(t, m)| m.map(|m| (*t, m)))
            .collect();
        let merchant_of = |l: &Label| -> Option<String> {
            if !l.merchant_id.is_empty() {
                return Some(l.merchant_id.clone());
            }
            let id = l.transaction_id.as_str();
            in_batch
                .get(id)
                .map(|m| (*m).to_owned())
                .or_else(|| indexed.get(id).cloned())
        };

        // Load the batch's states: user states of its transactions' users, profiles of every
        // user it names, merchants of its transactions and resolved labels.
        let mut users: Vec<&str> = Vec::new();
        let mut profiled: Vec<&str> = Vec::new();
        let mut merchants: Vec<String> = Vec::new();
        for (i, _) in &inputs {
            match i {
                Input::Txn(t) => {
                    users.push(&t.user_id);
                    profiled.push(&t.user_id);
                    merchants.push(t.merchant_id.clone());
                }
                Input::Label(l) => merchants.extend(merchant_of(l)),
                Input::Profile(p) => profiled.push(&p.user_id),
            }
        }
        for v in [&mut users, &mut profiled] {
            v.sort_unstable();
            v.dedup();
        }
        merchants.sort_unstable();
        merchants.dedup();
        let merchant_refs: Vec<&str> = merchants.iter().map(String::as_str).collect();
        // The batch's working set: the engine's own in-memory `States`.
        // The three reads go out together (one connection, pipelined), not one after another.
        let (user_states, profile_states, merchant_states) = tokio::try_join!(
            self.store.get_users(&users),
            self.store.get_profiles(&profiled),
            self.store.get_merchants(&merchant_refs)
        )?;
        let mut work = MemoryStates::default();
        for (u, s) in users.iter().zip(user_states) {
            work.users.insert((*u).to_owned(), s.unwrap_or_default());
        }
        for (u, h) in profiled.iter().zip(profile_states) {
            if !h.is_empty() {
                work.profiles.insert((*u).to_owned(), h);
            }
        }
        for (m, s) in merchant_refs.iter().zip(merchant_states) {
            work.merchants.insert((*m).to_owned(), s);
        }

        // Run the engine in batch order.
        let mut vectors = Vec::new();
        let mut deltas: HashMap<String, BTreeMap<CounterKey, i64>> = HashMap::new();
        let mut latest: HashMap<String, i64> = HashMap::new();
        let mut changed_users: HashSet<&str> = HashSet::new();
        let mut changed_profiles: HashSet<&str> = HashSet::new();
        let mut merge = |deltas: &mut HashMap<String, BTreeMap<CounterKey, i64>>,
                         m: &str,
                         d: &MerchantDelta,
                         at: i64| {
            let entry = deltas.entry(m.to_owned()).or_default();
            for (k, by) in &d.0 {
                *entry.entry(*k).or_insert(0) += by;
            }
            let l = latest.entry(m.to_owned()).or_insert(at);
            *l = (*l).max(at);
        };
        let mut outbox: BTreeMap<i32, Vec<u8>> = BTreeMap::new();
        for (i, partition) in &inputs {
            match i {
                Input::Txn(t) => match features::on_transaction(&mut work, t) {
                    Applied::New {
                        values,
                        merchant_delta,
                    } => {
                        merge(
                            &mut deltas,
                            &t.merchant_id,
                            &merchant_delta,
                            t.event_time_ms,
                        );
                        changed_users.insert(&t.user_id);
                        let v = envelope(t, values, now);
                        outbox
                            .entry(*partition)
                            .or_default()
                            .extend(proto::prost::Message::encode_length_delimited_to_vec(&v));
                        vectors.push(v);
                    }
                    Applied::Duplicate => self
                        .metrics
                        .skipped
                        .with_label_values(&[SKIP_DUPLICATE_ID])
                        .inc(),
                },
                Input::Label(l) => match merchant_of(l) {
                    None => self
                        .metrics
                        .labels
                        .with_label_values(&[LABEL_UNRESOLVED])
                        .inc(),
                    Some(m) => {
                        let d = features::on_label(&mut work, &m, l);
                        let outcome = if d.is_empty() {
                            LABEL_NOT_FRAUD
                        } else {
                            LABEL_COUNTED
                        };
                        merge(&mut deltas, &m, &d, l.reported_at_ms);
                        self.metrics.labels.with_label_values(&[outcome]).inc();
                    }
                },
                Input::Profile(p) => {
                    let outcome = if features::on_profile(&mut work, p) {
                        changed_profiles.insert(&p.user_id);
                        PROFILE_FOLDED
                    } else {
                        PROFILE_UNCHANGED
                    };
                    self.metrics.profiles.with_label_values(&[outcome]).inc();
                }
            }
        }

        let deltas: Vec<(String, MerchantDelta)> = deltas
            .into_iter()
            .map(|(m, d)| (m, MerchantDelta(d.into_iter().collect())))
            .collect();
        let stale: Vec<(&str, Vec<CounterKey>)> = deltas
            .iter()
            .filter_map(|(m, _)| {
                let at = *latest.get(m)?;
                let s = work.merchants.get(m)?.stale(at);
                Some((m.as_str(), s))
            })
            .collect();
        let offsets: Vec<OffsetMove> = INPUT_TOPICS
            .iter()
            .flat_map(|topic| next_offsets(batch, topic, &stored[topic]))
            .collect();
        let published: Vec<i32> = outbox.keys().copied().collect();
        let commit = Commit {
            outbox: outbox.into_iter().collect(),
            users: work
                .users
                .iter()
                .filter(|(u, _)| changed_users.contains(u.as_str()))
                .map(|(u, s)| (u.as_str(), s))
                .collect(),
            merchant_deltas: deltas.iter().map(|(m, d)| (m.as_str(), d)).collect(),
            merchant_stale: stale,
            profiles: work
                .profiles
                .iter()
                .filter(|(u, _)| changed_profiles.contains(u.as_str()))
                .map(|(u, h)| (u.as_str(), h))
                .collect(),
            active_users: changed_users.iter().copied().collect(),
            offsets,
        };
        // Commit everything atomically (the vectors into the outbox), then publish.
        self.store.commit(&self.group, &commit, self.ttls).await?;
        {
            let mut mine = self
                .stored_by_me
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for OffsetMove { next: o, .. } in &commit.offsets {
                mine.insert((o.topic.clone(), o.partition), o.offset);
            }
        }
        self.metrics.applied.inc_by(vectors.len() as u64);
        let none = tracing::Span::none();
        self.producer
            .send_all_traced(
                topics::FEATURES,
                vectors.iter().map(|v| {
                    let span = spans.get(&v.transaction_id).unwrap_or(&none);
                    (v.user_id.as_str(), v, span)
                }),
            )
            .await?;
        self.store.clear_outboxes(&self.group, &published).await?;
        Ok(())
    }
}

/// The next offsets to store for `topic`: past the batch's last record of each partition,
/// where that moves them forward.
fn next_offsets(batch: &[Delivery], topic: &str, stored: &BTreeMap<i32, i64>) -> Vec<OffsetMove> {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for d in batch.iter().filter(|d| d.topic == topic) {
        let e = next.entry(d.partition).or_insert(d.offset + 1);
        *e = (*e).max(d.offset + 1);
    }
    next.into_iter()
        .filter(|(p, o)| stored.get(p).is_none_or(|n| o > n))
        .map(|(partition, offset)| OffsetMove {
            next: NextOffset {
                topic: topic.into(),
                partition,
                offset,
            },
            from: stored.get(&partition).copied(),
        })
        .collect()
}

/// Decodes and validates a transaction (event-time rule included); on failure, the field
/// and the reason.
pub(crate) fn decode_transaction(
    d: &Delivery,
    now_ms: i64,
    skew_ms: i64,
) -> Result<Transaction, (&'static str, String)> {
    let wire: proto::v1::Transaction = d
        .decode("transaction")
        .map_err(|e| ("payload", e.to_string()))?;
    let t = transaction_from_proto(&wire).map_err(|e| (e.field, e.reason))?;
    domain::check_not_future("event_time", t.event_time_ms, now_ms, skew_ms)
        .map_err(|e| (e.field, e.reason))?;
    Ok(t)
}

/// Decodes and validates a label (a `reported_at` in the future is refused).
pub(crate) fn decode_label(
    d: &Delivery,
    now_ms: i64,
    skew_ms: i64,
) -> Result<Label, (&'static str, String)> {
    let wire: proto::v1::Label = d.decode("label").map_err(|e| ("payload", e.to_string()))?;
    let l = label_from_proto(&wire).map_err(|e| (e.field, e.reason))?;
    domain::check_not_future("reported_at", l.reported_at_ms, now_ms, skew_ms)
        .map_err(|e| (e.field, e.reason))?;
    Ok(l)
}

/// Decodes and validates a profile version (a `valid_from` in the future is refused).
pub(crate) fn decode_profile(
    d: &Delivery,
    now_ms: i64,
    skew_ms: i64,
) -> Result<UserProfile, (&'static str, String)> {
    let wire: proto::v1::UserProfile = d
        .decode("profile")
        .map_err(|e| ("payload", e.to_string()))?;
    let p = profile_from_proto(&wire).map_err(|e| (e.field, e.reason))?;
    domain::check_not_future("valid_from", p.valid_from_ms, now_ms, skew_ms)
        .map_err(|e| (e.field, e.reason))?;
    Ok(p)
}
