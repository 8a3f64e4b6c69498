//! Training runs as a service, with no transport in it: [`Runs::start`] starts a job in a
//! tracked task and returns its run id at once; [`Runs::get`] reports progress and the result.
//!
//! [`Runs`] fails with a [`RunError`] and never chooses a status code; the gRPC adapter
//! ([`crate::grpc`]) maps it to a `tonic::Status` in one place.

use crate::service::TrainerSettings;
use learn::pipeline::TrainConfig;
use proto::v1::{Run, RunStatus, TrainRequest, TrainResponse};
use registry::{Registry, RegistryError};
use service_runtime::clock::now_ms;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::task::TaskTracker;

/// Why a run could not be started or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// `promote_to` is not a valid alias name (refused before training, not after).
    #[error("invalid field `trigger`: at most 1000 characters")]
    Trigger,
    #[error("invalid field `promote_to`: {0}")]
    InvalidAlias(#[source] RegistryError),
    /// No run has this id (in this process: the table is not persisted).
    #[error("no run {run_id}")]
    NotFound { run_id: String },
    /// A thread panicked holding the run table.
    #[error("run table poisoned")]
    Poisoned,
}

/// The runs of this process, and what new ones start with.
pub(crate) struct Runs {
    lake: PathBuf,
    settings: TrainerSettings,
    registry: Registry,
    runs: Arc<Mutex<HashMap<String, Run>>>,
    tasks: TaskTracker,
}

impl Runs {
    pub(crate) fn new(
        lake: PathBuf,
        settings: TrainerSettings,
        registry: Registry,
        tasks: TaskTracker,
    ) -> Self {
        Runs {
            lake,
            settings,
            registry,
            runs: Arc::default(),
            tasks,
        }
    }

    fn table(&self) -> Result<MutexGuard<'_, HashMap<String, Run>>, RunError> {
        self.runs.lock().map_err(|_| RunError::Poisoned)
    }

    /// Starts a training run over the lake (promoting to the request's alias, or the
    /// configured one) and answers its id; the run is tracked, so shutdown waits for it.
    pub(crate) fn start(&self, req: TrainRequest) -> Result<TrainResponse, RunError> {
        let run_id = uuid::Uuid::new_v4().to_string();
        let promote_to = if req.promote_to.is_empty() {
            self.settings.promote_to.clone()
        } else {
            // Refused now, not after a training run that could never register under it.
            registry::check_name(&req.promote_to).map_err(RunError::InvalidAlias)?;
            req.promote_to
        };
        if req.trigger.chars().count() > 1_000 {
            return Err(RunError::Trigger);
        }
        let trigger = req.trigger;
        let started = Run {
            run_id: run_id.clone(),
            status: RunStatus::Running as i32,
            started_at: Some(proto::time::from_unix_ms(now_ms())),
            ..Default::default()
        };
        self.table()?.insert(run_id.clone(), started);
        let (runs, registry, lake) = (self.runs.clone(), self.registry.clone(), self.lake.clone());
        let config = TrainConfig {
            model_id: self.settings.model_id.clone(),
            ..self.settings.training.clone()
        };
        let (work_dir, delay) = (
            self.settings.work_dir.join(&run_id),
            self.settings.label_delay_ms,
        );
        let id = run_id.clone();
        self.tasks.spawn(async move {
            let registration = crate::Registration {
                promote_to: Some(promote_to),
                trigger: (!trigger.is_empty()).then_some(trigger),
            };
            let result = crate::train_from_lake(&lake, &work_dir, &registry, &config, delay, &registration, now_ms()).await;
            let Ok(mut runs) = runs.lock() else { return };
            let Some(run) = runs.get_mut(&id) else { return };
            run.finished_at = Some(proto::time::from_unix_ms(now_ms()));
            match result {
                Ok(outcome) => {
                    tracing::info!(run_id = %id, version = %outcome.model.version, "training run succeeded");
                    run.status = RunStatus::Succeeded as i32;
                    run.model_version = outcome.model.version;
                    run.metrics = outcome.metrics.into_iter().collect();
                }
                Err(error) => {
                    tracing::error!(run_id = %id, %error, "training run failed");
                    run.status = RunStatus::Failed as i32;
                    run.error = error.to_string();
                }
            }
        });
        Ok(TrainResponse { run_id })
    }

    /// A run's progress, or its result once finished.
    pub(crate) fn get(&self, run_id: &str) -> Result<Run, RunError> {
        self.table()?
            .get(run_id)
            .cloned()
            .ok_or_else(|| RunError::NotFound {
                run_id: service_runtime::truncated(run_id, 64),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(dir: &std::path::Path) -> Runs {
        Runs::new(
            dir.join("lake"),
            TrainerSettings::default(),
            Registry::open(dir.join("registry")).unwrap(),
            TaskTracker::new(),
        )
    }

    #[test]
    fn an_invalid_alias_is_refused_before_any_run_starts() {
        let dir = tempfile::tempdir().unwrap();
        let runs = runs(dir.path());
        let request = TrainRequest {
            promote_to: "..".into(),
            ..Default::default()
        };
        let e = runs.start(request).unwrap_err();
        assert!(matches!(e, RunError::InvalidAlias(_)), "{e:?}");
        assert!(runs.table().unwrap().is_empty());
        assert!(runs.tasks.is_empty());
    }

    #[test]
    fn an_unknown_run_is_not_found_named_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let e = runs(dir.path()).get(&"r".repeat(100)).unwrap_err();
        let RunError::NotFound { run_id } = e else {
            panic!("{e:?}")
        };
        assert_eq!(run_id, format!("{}…", "r".repeat(64)));
    }
}
