//! Point-in-time training sets, built by replaying the lake through the `features` crate —
//! the same code the speed layer runs — so offline vectors equal online ones.

use domain::{Label, Transaction};
use features::UserState;
use std::collections::HashMap;

/// One labelled example.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub transaction_id: String,
    pub user_id: String,
    pub event_time_ms: i64,
    pub values: Vec<f64>,
    pub label: bool,
}

/// Labelled rows in event-time order.
#[derive(Debug, Clone, Default)]
pub struct TrainingSet {
    pub rows: Vec<Row>,
    /// Transactions without a label (not used for training).
    pub unlabelled: usize,
}

/// Replays `transactions` (must be in event-time order, as [`lake::LakeReader::transactions`]
/// returns them) through per-user state; each vector is computed before the event is folded
/// in, exactly as online. Rows keep only transactions that have a label.
pub fn build(transactions: &[Transaction], labels: &[Label]) -> TrainingSet {
    let by_id: HashMap<&str, bool> = labels
        .iter()
        .map(|l| (l.transaction_id.as_str(), l.is_fraud))
        .collect();
    let mut states: HashMap<&str, UserState> = HashMap::new();
    let mut set = TrainingSet::default();
    for t in transactions {
        let state = states.entry(t.user_id.as_str()).or_default();
        let values = state.vector(t);
        if state.fold(t) == features::Fold::Duplicate {
            continue;
        }
        match by_id.get(t.transaction_id.as_str()) {
            Some(&label) => set.rows.push(Row {
                transaction_id: t.transaction_id.clone(),
                user_id: t.user_id.clone(),
                event_time_ms: t.event_time_ms,
                values,
                label,
            }),
            None => set.unlabelled += 1,
        }
    }
    set
}

/// Writes `set` as a generic training set in `dir` (Parquet + `trainset.json`) with Vigil's
/// feature names; returns the manifest path.
pub fn write_set(
    set: &TrainingSet,
    dir: &std::path::Path,
    label_delay_ms: i64,
) -> Result<std::path::PathBuf, trainset::TrainsetError> {
    let spec = trainset::NumericSetSpec {
        name: format!("vigil-{}", features::FEATURE_SET_VERSION),
        entity_column: "user_id".into(),
        time_column: "event_time_ms".into(),
        label_column: "is_fraud".into(),
        label_delay_ms,
        feature_names: features::FEATURES
            .iter()
            .map(|f| f.name.to_owned())
            .collect(),
    };
    let rows = set.rows.iter().map(|r| trainset::RowRef {
        entity: &r.user_id,
        time_ms: r.event_time_ms,
        label: r.label,
        features: &r.values,
    });
    Ok(trainset::write_numeric(dir, &spec, rows)?.manifest_path)
}

/// Lake → point-in-time vectors → a training set in `dir` (replaced if present).
pub async fn build_set_from_lake(
    lake_path: &std::path::Path,
    dir: &std::path::Path,
    label_delay_ms: i64,
) -> Result<std::path::PathBuf, crate::TrainError> {
    let task = |e: String| crate::TrainError::Task(e);
    let reader = lake::LakeReader::open(lake_path)
        .await
        .map_err(|e| task(e.to_string()))?;
    let transactions = reader
        .transactions()
        .await
        .map_err(|e| task(e.to_string()))?;
    let labels = reader.labels().await.map_err(|e| task(e.to_string()))?;
    tracing::info!(
        transactions = transactions.len(),
        labels = labels.len(),
        "lake read; computing point-in-time features"
    );
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let set = build(&transactions, &labels);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| task(format!("clearing {}: {e}", dir.display())))?;
        }
        let path = write_set(&set, &dir, label_delay_ms)?;
        tracing::info!(rows = set.rows.len(), unlabelled = set.unlabelled, path = %path.display(), "training set written");
        Ok(path)
    })
    .await
    .map_err(|e| task(format!("dataset task: {e}")))?
}
