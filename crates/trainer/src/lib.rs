//! The trainer: turns the lake into a registered model.
//!
//! [`dataset`] builds a point-in-time training set by replaying lake transactions through the
//! `features` crate; [`train`] fits, evaluates and describes the model; [`train_from_lake`]
//! ties them to the lake and the registry (register the version, then move the alias if the
//! promotion gate passes). The same job runs from the CLI (`vigil-trainer train`) and from the
//! `TrainerService.Train` RPC.

pub mod dataset;
mod service;
pub mod train;

pub use service::{Config, run};

use registry::{ModelRef, Registry};
use std::collections::BTreeMap;
use std::path::Path;
use train::{TrainError, TrainOptions};

/// The result of a training job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub model: ModelRef,
    pub metrics: BTreeMap<String, f64>,
    /// The alias moved to the new version, if the gate passed.
    pub promoted_to: Option<String>,
    pub rows: u64,
}

/// Errors of a training job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Lake(#[from] lake::LakeError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
}

impl From<model::ModelError> for JobError {
    fn from(e: model::ModelError) -> Self {
        JobError::Registry(e.into())
    }
}

/// Promotion gate: the alias moves only when test ROC-AUC reaches this.
pub const MIN_TEST_AUC: f64 = 0.6;

/// Reads the lake, trains, registers; moves `promote_to` when the gate passes.
pub async fn train_from_lake(
    lake_path: &Path,
    registry: &Registry,
    opts: &TrainOptions,
    promote_to: Option<&str>,
    now_ms: i64,
) -> Result<Outcome, JobError> {
    let reader = lake::LakeReader::open(lake_path).await?;
    let transactions = reader.transactions().await?;
    let labels = reader.labels().await?;
    tracing::info!(
        transactions = transactions.len(),
        labels = labels.len(),
        "lake read"
    );
    let set = tokio::task::spawn_blocking(move || dataset::build(&transactions, &labels))
        .await
        .map_err(|e| TrainError::Fit(format!("dataset task: {e}")))?;
    let rows = set.rows.len() as u64;
    let mut trained = None;
    let model = registry.register(
        &opts.model_id,
        now_ms,
        |dir, version| -> Result<(), JobError> {
            let (manifest, m) = train::train(&set, opts, now_ms, version)?;
            let manifest = model::write_artifact(dir, manifest, &m)?;
            trained = Some(manifest.metrics);
            Ok(())
        },
    )?;
    let metrics = trained.unwrap_or_default();
    let auc = metrics.get("test_roc_auc").copied().unwrap_or(0.0);
    let promoted_to = match promote_to {
        Some(alias) if auc >= MIN_TEST_AUC => {
            registry.set_alias(alias, &model, now_ms)?;
            Some(alias.to_owned())
        }
        Some(alias) => {
            tracing::warn!(auc, alias, "promotion gate failed: alias not moved");
            None
        }
        None => None,
    };
    Ok(Outcome {
        model,
        metrics,
        promoted_to,
        rows,
    })
}
