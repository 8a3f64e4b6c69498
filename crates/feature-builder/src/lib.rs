//! The offline point-in-time builder: the `features` engine driven over the lake, **as of a
//! cut-off time**, so that a training set (or a bootstrap of the online store) sees exactly
//! what the platform knew then.
//!
//! Two streamed passes over the lake's transactions, both in `(kafka_partition,
//! kafka_offset)` order — every user's arrival order, the order the speed layer folded them
//! in (DataFusion scans, filters and sorts; the engine runs on a blocking thread fed batch by
//! batch, so the lake is never loaded whole):
//!
//! 0. **Profiles**: every profile version valid by the cut-off, folded in arrival order into
//!    its user's history ([`features::on_profile`]); a transaction reads the version valid at
//!    its event time, as online.
//! 1. **State pass** ([`states_as_of`]): every transaction through
//!    [`features::on_transaction`] (de-duplication included), and every fraud label
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
use domain::{Label, Transaction};
use features::{Applied, MemoryStates, MerchantState, ProfileHistory, UserState};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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

/// What a label map holds per transaction id: the latest label's verdict and every fraud
/// report's `reported_at`.
#[derive(Debug, Default)]
struct Known {
    latest: Option<(i64, bool)>,
    fraud_reports: Vec<i64>,
    used: bool,
}

fn label_map(labels: Vec<Label>) -> HashMap<String, Known> {
    let mut map: HashMap<String, Known> = HashMap::new();
    for l in labels {
        let k = map.entry(l.transaction_id).or_default();
        if k.latest.is_none_or(|(at, _)| l.reported_at_ms >= at) {
            k.latest = Some((l.reported_at_ms, l.is_fraud));
        }
        if l.is_fraud {
            k.fraud_reports.push(l.reported_at_ms);
        }
    }
    map
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
    states: MemoryStates,
    known: HashMap<String, Known>,
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
    let labels = reader.labels_reported_by(as_of.cutoff_ms).await?;
    let profiles = reader.profiles_valid_by(as_of.cutoff_ms).await?;
    let summary = Summary {
        labels: labels.len() as u64,
        profiles: profiles.len() as u64,
        ..Summary::default()
    };
    let mut states = MemoryStates::default();
    for p in &profiles {
        features::on_profile(&mut states, p);
    }
    let pass = StatePass {
        states,
        known: label_map(labels),
        summary,
    };
    let stream = reader
        .transactions_in_arrival_order(as_of.cutoff_ms)
        .await?;
    let mut pass = drive(stream, pass, |p: &mut StatePass, t: &Transaction| {
        p.summary.transactions += 1;
        match features::on_transaction(&mut p.states, t) {
            Applied::Duplicate => p.summary.duplicates += 1,
            Applied::New { .. } => {
                if let Some(k) = p.known.get_mut(&t.transaction_id)
                    && !k.used
                {
                    k.used = true;
                    for &reported_at_ms in &k.fraud_reports {
                        let report = Label {
                            transaction_id: t.transaction_id.clone(),
                            user_id: t.user_id.clone(),
                            is_fraud: true,
                            reported_at_ms,
                            event_time_ms: t.event_time_ms,
                            merchant_id: t.merchant_id.clone(),
                        };
                        features::on_label(&mut p.states, &t.merchant_id, &report);
                        p.summary.fraud_reports += 1;
                    }
                }
            }
        }
        Ok(())
    })
    .await?;
    pass.summary.orphan_labels = pass.known.values().filter(|k| !k.used).count() as u64;
    Ok(pass)
}

/// Where the vector pass puts its rows.
pub trait RowSink: Send + 'static {
    fn push(&mut self, row: Row<'_>) -> Result<(), BuildError>;
}

struct VectorPass<K> {
    users: HashMap<String, UserState>,
    merchants: HashMap<String, MerchantState>,
    profiles: HashMap<String, ProfileHistory>,
    known: HashMap<String, Known>,
    as_of: AsOf,
    summary: Summary,
    sink: K,
}

/// Builds every labelled row as of `as_of` into `sink` (both passes); returns the sink and
/// the counts.
pub async fn build<K: RowSink>(
    reader: &lake::LakeReader,
    as_of: AsOf,
    sink: K,
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
    let vp = VectorPass {
        users: HashMap::with_capacity(pass.states.users.len()),
        merchants: pass.states.merchants,
        profiles: pass.states.profiles,
        known: pass.known,
        as_of,
        summary: pass.summary,
        sink,
    };
    let stream = reader
        .transactions_in_arrival_order(as_of.cutoff_ms)
        .await?;
    let vp = drive(stream, vp, |p: &mut VectorPass<K>, t: &Transaction| {
        let user = p.users.entry(t.user_id.clone()).or_default();
        let (no_merchant, no_profile) = (MerchantState::default(), ProfileHistory::default());
        let merchant = p.merchants.get(&t.merchant_id).unwrap_or(&no_merchant);
        let profile = p.profiles.get(&t.user_id).unwrap_or(&no_profile);
        let Applied::New { values, .. } =
            features::on_transaction_read_merchant(user, merchant, profile, t)
        else {
            return Ok(());
        };
        let label = match p.known.get(&t.transaction_id).and_then(|k| k.latest) {
            Some((_, is_fraud)) => Some(is_fraud),
            None if t.event_time_ms <= p.as_of.cutoff_ms - p.as_of.assume_legit_after_ms => {
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
    })
    .await?;
    Ok((vp.sink, vp.summary))
}

/// A [`RowSink`] writing a generic training set (see the `trainset` crate).
#[derive(Debug)]
pub struct TrainsetSink(pub trainset::TrainingSetWriter);

impl RowSink for TrainsetSink {
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
    let writer = trainset::TrainingSetWriter::create(dir, &trainset_spec(as_of, label_delay_ms))?;
    let (sink, summary) = build(&reader, as_of, TrainsetSink(writer)).await?;
    let written = tokio::task::spawn_blocking(move || sink.0.finish())
        .await
        .map_err(|e| BuildError::Worker(e.to_string()))??;
    Ok((written.manifest_path, summary))
}
