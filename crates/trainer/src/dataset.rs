//! Point-in-time training sets from the lake: a thin wrapper over `feature-builder`, which
//! drives the same `features` engine the speed layer runs, as of a cut-off time.

pub use feature_builder::{AsOf, Summary};

/// Lake → point-in-time vectors as of `as_of` → a training set in `dir` (replaced if
/// present). Returns the manifest path.
pub async fn build_set_from_lake(
    lake_path: &std::path::Path,
    dir: &std::path::Path,
    as_of: AsOf,
    label_delay_ms: i64,
) -> Result<std::path::PathBuf, crate::TrainError> {
    let task = |e: String| crate::TrainError::Task(e);
    if dir.exists() {
        let d = dir.to_owned();
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&d))
            .await
            .map_err(|e| task(format!("clearing {}: {e}", dir.display())))?
            .map_err(|e| task(format!("clearing {}: {e}", dir.display())))?;
    }
    let (path, s) = feature_builder::build_training_set(lake_path, dir, as_of, label_delay_ms)
        .await
        .map_err(|e| task(format!("building the training set: {e}")))?;
    tracing::info!(
        rows = s.rows,
        positives = s.positives,
        assumed_legit = s.assumed_legit,
        immature = s.immature,
        duplicates = s.duplicates,
        labels = s.labels,
        fraud_reports = s.fraud_reports,
        orphan_labels = s.orphan_labels,
        cutoff_ms = as_of.cutoff_ms,
        path = %path.display(),
        "training set written"
    );
    Ok(path)
}
