//! The offline point-in-time builder: the `features` engine driven over the lake, **as of a
//! cut-off time**, so that a training set (or a bootstrap of the online store) sees exactly
//! what the platform knew then.
//!
//! Two streamed passes over the lake's transactions, each **per Kafka partition in
//! parallel**, user by user, each user's transactions in `kafka_offset` order — its arrival
//! order, the order the speed layer folded them in. The topic is keyed by user, so a
//! partition's users are its own and their states never meet another partition's; a user's
//! vectors depend only on its own arrival order and on merchant states, which are
//! commutative counters: per-partition partial merchant states are simply added up
//! ([`MerchantState::merge`]) and the order *across* users does not matter. Folding one
//! user's whole history at a time keeps its state in cache instead of fetching a cold state
//! from memory for every event. DataFusion scans, filters and sorts each partition; the
//! engine runs on one blocking thread per partition being worked on (as many at once as
//! there are cores), fed batch by batch, so the lake is never loaded whole. A user whose
//! records are in two partitions (a topic repartitioned under it) is refused with its name.
//!
//! 0. **Profiles**: every profile version valid by the cut-off, folded in arrival order into
//!    its user's history ([`features::on_profile`]); a transaction reads the version valid at
//!    its event time, as online.
//! 1. **State pass** ([`states_as_of`]): every transaction folded in with
//!    [`features::fold_transaction`] (de-duplication included; no vector), and every fraud label
//!    reported by the cut-off counted for its transaction's merchant at its `reported_at`.
//!    The result is the online state as of the cut-off — what `vigil-materialize` writes to
//!    Redis.
//! 2. **Vector pass** ([`build`]): user states again from empty, merchant states frozen at
//!    the pass-1 result ([`features::on_transaction_read_merchant`]). Merchant features read
//!    only closed tiles before the event's own, so the later increments the frozen state
//!    holds are invisible to them; a fraud report reported after an event sits in a tile at
//!    or after the event's and can never reach its vector.
//!
//! Labels: a row's label is the latest label reported by the cut-off; a transaction with no
//! label by then is legit once it is older than `assume_legit_after_ms` (fraud is reported by
//! then or never), and otherwise *immature* and left out. No label reported after the
//! cut-off is ever read, so a model built at time T cannot learn from the future.

use datafusion::physical_plan::SendableRecordBatchStream;
use domain::Transaction;
use features::{Applied, MemoryStates, MerchantState, ProfileHistory, StateMap, UserState};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Lake(#[from] lake::LakeError),
    #[error("lake query: {0}")]
    Query(#[source] Box<datafusion::error::DataFusionError>),
    #[error(transparent)]
    Trainset(#[from] trainset::TrainsetError),
    #[error("builder worker failed: {0}")]
    Worker(String),
    #[error("invalid build parameters: {0}")]
    Invalid(String),
}

/// The point in time a build is made as of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    /// Only transactions with event time and labels with `reported_at` at or before this.
    pub cutoff_ms: i64,
    /// A transaction this much older than the cut-off without a label is legit.
    pub assume_legit_after_ms: i64,
}

/// One labelled row.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub transaction: &'a Transaction,
    pub values: &'a [f64],
    pub is_fraud: bool,
}

/// Counts of a build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Transaction records read (duplicates included).
    pub transactions: u64,
    /// Records the engine recognised as a repeat of an earlier transaction id.
    pub duplicates: u64,
    /// Label records reported by the cut-off.
    pub labels: u64,
    /// Fraud reports counted for a merchant.
    pub fraud_reports: u64,
    /// Labels whose transaction is not in the lake (by the cut-off).
    pub orphan_labels: u64,
    /// Profile versions valid by the cut-off.
    pub profiles: u64,
    /// Rows emitted (labelled or assumed legit).
    pub rows: u64,
    pub positives: u64,
    /// Rows labelled legit because no label arrived by `assume_legit_after_ms`.
    pub assumed_legit: u64,
    /// Unlabelled transactions too recent to assume anything: left out.
    pub immature: u64,
}

impl Summary {
    /// Adds the per-transaction counts of one partition's pass.
    fn add_partition(&mut self, p: &Summary) {
        self.transactions += p.transactions;
        self.duplicates += p.duplicates;
        self.fraud_reports += p.fraud_reports;
        self.rows += p.rows;
        self.positives += p.positives;
        self.assumed_legit += p.assumed_legit;
        self.immature += p.immature;
    }
}

/// What a label map holds per transaction id: the latest label's verdict and every fraud
/// report's `reported_at`. `used` is set by the first partition worker that folds the
/// transaction in, so its fraud reports count once.
#[derive(Debug, Default)]
struct Known {
    /// `((reported_at, partition, offset), is_fraud)` of the latest label: ties in
    /// `reported_at` go to the record consumed last.
    latest: Option<((i64, i32, i64), bool)>,
    fraud_reports: Vec<i64>,
    used: AtomicBool,
}

impl Known {
    fn verdict(&self) -> Option<bool> {
        self.latest.map(|(_, is_fraud)| is_fraud)
    }
}

fn label_map(labels: Vec<lake::batch::LabelVerdict>) -> StateMap<Known> {
    let mut map: StateMap<Known> = StateMap::default();
    map.reserve(labels.len());
    for l in labels {
        let k = map.entry(l.transaction_id).or_default();
        let at = (l.reported_at_ms, l.partition, l.offset);
        if k.latest.is_none_or(|(latest, _)| at >= latest) {
            k.latest = Some((at, l.is_fraud));
        }
        if l.is_fraud {
            k.fraud_reports.push(l.reported_at_ms);
        }
    }
    map
}

/// Partitions worked on at once: one engine thread each.
fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Runs `pass(partition, its transactions)` for every partition, as many at once as there
/// are cores; the results in partition order.
async fn per_partition<T, F, Fut>(
    reader: &lake::LakeReader,
    as_of: AsOf,
    partitions: &[i32],
    pass: F,
) -> Result<Vec<T>, BuildError>
where
    F: Fn(i32, SendableRecordBatchStream) -> Fut,
    Fut: std::future::Future<Output = Result<T, BuildError>>,
{
    futures::stream::iter(partitions.iter().copied())
        .map(|p| {
            let pass = &pass;
            async move {
                let stream = reader.partition_by_user(p, as_of.cutoff_ms).await?;
                pass(p, stream).await
            }
        })
        .buffered(parallelism())
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Runs `f(state, transaction)` on every transaction of `stream` on a blocking thread, batch
/// by batch (at most four batches in flight), and hands the state back.
async fn drive<S, F>(mut stream: SendableRecordBatchStream, state: S, f: F) -> Result<S, BuildError>
where
    S: Send + 'static,
    F: Fn(&mut S, &Transaction) -> Result<(), BuildError> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Transaction>>(4);
    let worker = tokio::task::spawn_blocking(move || -> Result<S, BuildError> {
        let mut state = state;
        while let Some(batch) = rx.blocking_recv() {
            for t in &batch {
                f(&mut state, t)?;
            }
        }
        Ok(state)
    });
    let mut read_error = None;
    while let Some(batch) = stream.next().await {
        let txns = match batch {
            Ok(batch) => lake::batch::transactions_from_batch(&batch).map_err(BuildError::from),
            Err(e) => Err(BuildError::Query(Box::new(e))),
        };
        match txns {
            Ok(txns) => {
                if tx.send(txns).await.is_err() {
                    // The worker stopped early: its error is the one to report.
                    break;
                }
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let state = worker
        .await
        .map_err(|e| BuildError::Worker(e.to_string()))??;
    match read_error {
        Some(e) => Err(e),
        None => Ok(state),
    }
}

struct StatePass {
    /// The partitions pass 1 read: pass 2 reads the same.
    partitions: Vec<i32>,
    states: MemoryStates,
    known: Arc<StateMap<Known>>,
    summary: Summary,
}

/// One partition's share of pass 1: its users' states, its partial merchant states.
#[derive(Default)]
struct PartitionStates {
    states: MemoryStates,
    summary: Summary,
}

/// The online state as of `as_of.cutoff_ms` (pass 1), with the build's counts so far.
pub async fn states_as_of(
    reader: &lake::LakeReader,
    as_of: AsOf,
) -> Result<(MemoryStates, Summary), BuildError> {
    let pass = state_pass(reader, as_of).await?;
    Ok((pass.states, pass.summary))
}

async fn state_pass(reader: &lake::LakeReader, as_of: AsOf) -> Result<StatePass, BuildError> {
    let started = std::time::Instant::now();
    let labels = reader.label_verdicts_reported_by(as_of.cutoff_ms).await?;
    let labels_seconds = started.elapsed().as_secs_f64();
    let profiles = reader.profiles_valid_by(as_of.cutoff_ms).await?;
    tracing::info!(
        labels_seconds,
        labels = labels.len(),
        profiles = profiles.len(),
        seconds = started.elapsed().as_secs_f64(),
        "labels and profiles read"
    );
    let mut summary = Summary {
        labels: labels.len() as u64,
        profiles: profiles.len() as u64,
        ..Summary::default()
    };
    let known = Arc::new(label_map(labels));
    let partitions = reader.transaction_partitions(as_of.cutoff_ms).await?;
    let parts = per_partition(reader, as_of, &partitions, |_, stream| {
        let known = Arc::clone(&known);
        drive(stream, PartitionStates::default(), move |p, t| {
            p.summary.transactions += 1;
            if !features::fold_transaction(&mut p.states, t) {
                p.summary.duplicates += 1;
                return Ok(());
            }
            if let Some(k) = known.get(&t.transaction_id)
                && !k.used.swap(true, Ordering::Relaxed)
            {
                for &reported_at_ms in &k.fraud_reports {
                    features::on_fraud_report(&mut p.states, &t.merchant_id, reported_at_ms);
                    p.summary.fraud_reports += 1;
                }
            }
            Ok(())
        })
    })
    .await?;

    let mut states = MemoryStates::default();
    for p in &profiles {
        features::on_profile(&mut states, p);
    }
    let mut partition_of: StateMap<i32> = StateMap::default();
    for (&partition, part) in partitions.iter().zip(parts) {
        summary.add_partition(&part.summary);
        for (user, state) in part.states.users {
            if let Some(&other) = partition_of.get(&user) {
                return Err(BuildError::Invalid(format!(
                    "user {user:?} has transactions in partitions {other} and {partition}; \
                     the builder needs each user's records in one partition (the topics are \
                     keyed by user)"
                )));
            }
            partition_of.insert(user.clone(), partition);
            states.users.insert(user, state);
        }
        for (id, m) in part.states.merchants {
            match states.merchants.get_mut(&id) {
                Some(merged) => merged.merge(m),
                None => {
                    states.merchants.insert(id, m);
                }
            }
        }
    }
    summary.orphan_labels = known
        .values()
        .filter(|k| !k.used.load(Ordering::Relaxed))
        .count() as u64;
    Ok(StatePass {
        partitions,
        states,
        known,
        summary,
    })
}

/// Where the vector pass puts its rows: one part per Kafka partition, filled in parallel,
/// handed back in partition order.
pub trait RowSink: Send + 'static {
    type Part: PartSink;
    /// A part for `partition`'s rows.
    fn part(&mut self, partition: i32) -> Result<Self::Part, BuildError>;
    /// Takes a filled part back (called in partition order, once every part is filled).
    fn absorb(&mut self, part: Self::Part) -> Result<(), BuildError>;
}

/// The rows of one partition, in its arrival order.
pub trait PartSink: Send + 'static {
    fn push(&mut self, row: Row<'_>) -> Result<(), BuildError>;
}

/// What every partition's vector pass reads: merchant states frozen at the pass-1 result,
/// the profile histories, the labels.
struct Frozen {
    merchants: StateMap<MerchantState>,
    profiles: StateMap<ProfileHistory>,
    known: Arc<StateMap<Known>>,
    as_of: AsOf,
}

struct VectorPass<P> {
    users: StateMap<UserState>,
    summary: Summary,
    sink: P,
}

/// Builds every labelled row as of `as_of` into `sink` (both passes); returns the sink and
/// the counts.
pub async fn build<K: RowSink>(
    reader: &lake::LakeReader,
    as_of: AsOf,
    mut sink: K,
) -> Result<(K, Summary), BuildError> {
    if as_of.assume_legit_after_ms < 0 {
        return Err(BuildError::Invalid(format!(
            "assume_legit_after_ms is {}, must not be negative",
            as_of.assume_legit_after_ms
        )));
    }
    let pass = state_pass(reader, as_of).await?;
    tracing::info!(
        transactions = pass.summary.transactions,
        merchants = pass.states.merchants.len(),
        users = pass.states.users.len(),
        "state pass done; computing point-in-time vectors"
    );
    let frozen = Arc::new(Frozen {
        merchants: pass.states.merchants,
        profiles: pass.states.profiles,
        known: pass.known,
        as_of,
    });
    let mut summary = pass.summary;
    let partitions = pass.partitions;
    let mut parts = HashMap::with_capacity(partitions.len());
    for &p in &partitions {
        parts.insert(p, sink.part(p)?);
    }
    let parts = std::sync::Mutex::new(parts);
    let done = per_partition(reader, as_of, &partitions, |p, stream| {
        let frozen = Arc::clone(&frozen);
        let part = parts
            .lock()
            .map_err(|_| BuildError::Worker("a worker panicked".into()))
            .and_then(|mut parts| {
                parts.remove(&p).ok_or_else(|| {
                    BuildError::Worker(format!("partition {p} appeared during the build"))
                })
            });
        async move {
            let pass = VectorPass {
                users: StateMap::default(),
                summary: Summary::default(),
                sink: part?,
            };
            drive(stream, pass, move |p, t| vector_row(&frozen, p, t)).await
        }
    })
    .await?;
    let mut filled = Vec::with_capacity(done.len());
    for pass in done {
        summary.add_partition(&pass.summary);
        filled.push(pass.sink);
    }
    // Absorbing may finish files (the training set's last row groups): off the async workers.
    let sink = tokio::task::spawn_blocking(move || -> Result<K, BuildError> {
        for part in filled {
            sink.absorb(part)?;
        }
        Ok(sink)
    })
    .await
    .map_err(|e| BuildError::Worker(e.to_string()))??;
    Ok((sink, summary))
}

/// Pass 2 for one transaction: its vector as of just before it, and its row if it has a
/// label by the cut-off (or is old enough to be assumed legit).
fn vector_row<P: PartSink>(
    f: &Frozen,
    p: &mut VectorPass<P>,
    t: &Transaction,
) -> Result<(), BuildError> {
    let user = match p.users.get_mut(&t.user_id) {
        Some(user) => user,
        None => p.users.entry(t.user_id.clone()).or_default(),
    };
    let (no_merchant, no_profile) = (MerchantState::default(), ProfileHistory::default());
    let merchant = f.merchants.get(&t.merchant_id).unwrap_or(&no_merchant);
    let profile = f.profiles.get(&t.user_id).unwrap_or(&no_profile);
    let Applied::New { values, .. } =
        features::on_transaction_read_merchant(user, merchant, profile, t)
    else {
        return Ok(());
    };
    let label = match f.known.get(&t.transaction_id).and_then(Known::verdict) {
        Some(is_fraud) => Some(is_fraud),
        None if t.event_time_ms <= f.as_of.cutoff_ms - f.as_of.assume_legit_after_ms => {
            p.summary.assumed_legit += 1;
            Some(false)
        }
        None => None,
    };
    match label {
        Some(is_fraud) => {
            p.summary.rows += 1;
            p.summary.positives += u64::from(is_fraud);
            p.sink.push(Row {
                transaction: t,
                values: &values,
                is_fraud,
            })
        }
        None => {
            p.summary.immature += 1;
            Ok(())
        }
    }
}

/// A [`RowSink`] writing a generic training set (see the `trainset` crate), one data file
/// per Kafka partition.
#[derive(Debug)]
pub struct TrainsetSink {
    set: trainset::SetWriter,
    parts: Vec<trainset::PartSummary>,
}

impl TrainsetSink {
    pub fn new(set: trainset::SetWriter) -> TrainsetSink {
        TrainsetSink {
            set,
            parts: Vec::new(),
        }
    }

    /// Writes the manifest over every part absorbed.
    pub fn finish(self) -> Result<trainset::WriteSummary, BuildError> {
        Ok(self.set.finish(self.parts)?)
    }
}

/// One partition's data file of a [`TrainsetSink`].
#[derive(Debug)]
pub struct TrainsetPart(trainset::PartWriter);

impl RowSink for TrainsetSink {
    type Part = TrainsetPart;

    fn part(&mut self, partition: i32) -> Result<TrainsetPart, BuildError> {
        let index = u32::try_from(partition).map_err(|_| {
            BuildError::Invalid(format!("the lake holds a negative partition {partition}"))
        })?;
        Ok(TrainsetPart(self.set.part(index)?))
    }

    fn absorb(&mut self, part: TrainsetPart) -> Result<(), BuildError> {
        self.parts.push(part.0.finish()?);
        Ok(())
    }
}

impl PartSink for TrainsetPart {
    fn push(&mut self, row: Row<'_>) -> Result<(), BuildError> {
        Ok(self.0.push(trainset::RowRef {
            id: &row.transaction.transaction_id,
            entity: &row.transaction.user_id,
            time_ms: row.transaction.event_time_ms,
            label: row.is_fraud,
            features: row.values,
        })?)
    }
}

/// The training-set spec of Vigil's own feature set, labels cut off at `as_of`.
pub fn trainset_spec(as_of: AsOf, label_delay_ms: i64) -> trainset::NumericSetSpec {
    trainset::NumericSetSpec {
        name: format!("vigil-{}", features::FEATURE_SET_VERSION),
        entity_column: "user_id".into(),
        time_column: "event_time_ms".into(),
        label_column: "is_fraud".into(),
        label_delay_ms,
        feature_names: features::FEATURES
            .iter()
            .map(|f| f.name.to_owned())
            .collect(),
        id_column: Some("transaction_id".into()),
        labels_as_of_ms: Some(as_of.cutoff_ms),
    }
}

/// Lake → point-in-time rows as of `as_of` → a training set in `dir` (which must not hold
/// one). Returns the manifest path and the counts.
pub async fn build_training_set(
    lake_path: &Path,
    dir: &Path,
    as_of: AsOf,
    label_delay_ms: i64,
) -> Result<(PathBuf, Summary), BuildError> {
    let reader = lake::LakeReader::open(lake_path).await?;
    let set = trainset::SetWriter::create(dir, &trainset_spec(as_of, label_delay_ms))?;
    let (sink, summary) = build(&reader, as_of, TrainsetSink::new(set)).await?;
    let written = tokio::task::spawn_blocking(move || sink.finish())
        .await
        .map_err(|e| BuildError::Worker(e.to_string()))??;
    Ok((written.manifest_path, summary))
}
