//! The trainer: turns the lake (or any conforming training set) into a registered model.
//!
//! [`dataset`] builds a point-in-time training set as of a cut-off with `feature-builder`
//! (the `features` engine over the lake) and writes it as a generic training set (Parquet +
//! `trainset.json`);
//! [`train`] runs `learn::pipeline` on a set, writes the artifact and its report into the
//! registry and applies the promotion gate. The same job runs from the CLI
//! (`vigil-trainer build-set`, `vigil-trainer train`) and from the `TrainerService.Train` RPC:
//! [`runs`] is that service's core, with no transport in it (start a run, read a run, failing
//! with a `RunError`), [`grpc`] the `TrainerService` adapter holding the one mapping from
//! `RunError` to `tonic::Status`, and [`service`] the configuration and `run`.

pub mod dataset;
mod grpc;
mod reporting;
mod runs;
mod service;
pub mod train;

pub use service::{Config, run};
pub use train::{Outcome, TrainError, train_set};

use learn::pipeline::TrainConfig;
use registry::Registry;
use std::path::Path;

/// Default gap between windows: the median fraud-report delay of Vigil's data (3 days).
pub const DEFAULT_LABEL_DELAY_MS: i64 = 3 * 86_400_000;

/// What a run's version is registered with: the alias to move when the gate passes, and why
/// the run happened (recorded in the manifest as `params.trigger`).
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub promote_to: Option<String>,
    pub trigger: Option<String>,
}

/// Reads the lake, writes a training set as of `now_ms` under `work_dir` (labels reported
/// after `now_ms` are not read; unlabelled transactions older than the label delay count as
/// legit), trains and registers.
pub async fn train_from_lake(
    lake_path: &Path,
    work_dir: &Path,
    registry: &Registry,
    config: &TrainConfig,
    label_delay_ms: i64,
    registration: &Registration,
    now_ms: i64,
) -> Result<Outcome, TrainError> {
    let as_of = dataset::AsOf {
        cutoff_ms: now_ms,
        assume_legit_after_ms: label_delay_ms,
    };
    let manifest = dataset::build_set_from_lake(lake_path, work_dir, as_of, label_delay_ms).await?;
    let (
        registry,
        config,
        Registration {
            promote_to,
            trigger,
        },
    ) = (registry.clone(), config.clone(), registration.clone());
    tokio::task::spawn_blocking(move || {
        train_set(
            &manifest,
            &registry,
            &config,
            promote_to.as_deref(),
            trigger.as_deref(),
            now_ms,
        )
    })
    .await
    .map_err(|e| TrainError::Task(format!("training task: {e}")))?
}
