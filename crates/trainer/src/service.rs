//! The trainer as a gRPC service: `Train` starts a job in a tracked task and returns its run
//! id at once; `GetRun` reports progress and the result.

use learn::pipeline::TrainConfig;
use proto::v1::trainer_service_server::{TrainerService, TrainerServiceServer};
use proto::v1::{GetRunRequest, Run, RunStatus, TrainRequest, TrainResponse};
use registry::Registry;
use serde::Deserialize;
use service_runtime::clock::now_ms;
use service_runtime::telemetry::TelemetryConfig;
use service_runtime::{ConfigError, Context, ServerConfig, ServiceConfig};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};

/// The trainer's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub lake: PathSection,
    pub registry: PathSection,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub trainer: TrainerSettings,
}

/// A section holding one directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSection {
    pub path: PathBuf,
}

/// The `trainer` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainerSettings {
    pub model_id: String,
    /// Alias moved by a successful run unless the request names another.
    pub promote_to: String,
    /// Where training sets are built from the lake before each run.
    pub work_dir: std::path::PathBuf,
    /// Gap left between train, validation and test windows (≥ the label delay).
    pub label_delay_ms: i64,
    /// The protocol: split, GBDT parameters, calibration, decision policy
    /// (`[trainer.training.policy] block_max_fpr = 0.001`, …).
    pub training: TrainConfig,
}

impl Default for TrainerSettings {
    fn default() -> Self {
        TrainerSettings {
            model_id: "vigil-fraud".into(),
            promote_to: registry::stages::PRODUCTION.into(),
            work_dir: "run/trainer-work".into(),
            label_delay_ms: crate::DEFAULT_LABEL_DELAY_MS,
            training: TrainConfig::default(),
        }
    }
}

impl ServiceConfig for Config {
    const SECTIONS: &'static [&'static str] =
        &["server", "lake", "registry", "telemetry", "trainer"];
    fn server(&self) -> &ServerConfig {
        &self.server
    }
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn validate(&self) -> Result<(), ConfigError> {
        if self.trainer.model_id.is_empty() {
            return Err(ConfigError::invalid(
                "trainer.model_id",
                "must not be empty",
            ));
        }
        Ok(())
    }
}

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Serve(#[from] service_runtime::grpc::ServeError),
}

struct Api {
    cfg: Config,
    registry: Registry,
    runs: Arc<Mutex<HashMap<String, Run>>>,
    tasks: TaskTracker,
}

#[tonic::async_trait]
impl TrainerService for Api {
    async fn train(
        &self,
        request: Request<TrainRequest>,
    ) -> Result<Response<TrainResponse>, Status> {
        let req = request.into_inner();
        let run_id = uuid::Uuid::new_v4().to_string();
        let promote_to = if req.promote_to.is_empty() {
            self.cfg.trainer.promote_to.clone()
        } else {
            // Refused now, not after a training run that could never register under it.
            registry::check_name(&req.promote_to).map_err(|e| {
                Status::invalid_argument(format!("invalid field `promote_to`: {e}"))
            })?;
            req.promote_to
        };
        let started = Run {
            run_id: run_id.clone(),
            status: RunStatus::Running as i32,
            started_at: Some(proto::time::from_unix_ms(now_ms())),
            ..Default::default()
        };
        self.runs
            .lock()
            .map_err(|_| Status::internal("run table poisoned"))?
            .insert(run_id.clone(), started);
        let (runs, registry, lake) = (
            self.runs.clone(),
            self.registry.clone(),
            self.cfg.lake.path.clone(),
        );
        let config = TrainConfig {
            model_id: self.cfg.trainer.model_id.clone(),
            ..self.cfg.trainer.training.clone()
        };
        let (work_dir, delay) = (
            self.cfg.trainer.work_dir.join(&run_id),
            self.cfg.trainer.label_delay_ms,
        );
        let id = run_id.clone();
        self.tasks.spawn(async move {
            let result = crate::train_from_lake(&lake, &work_dir, &registry, &config, delay, Some(&promote_to), now_ms()).await;
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
        Ok(Response::new(TrainResponse { run_id }))
    }

    async fn get_run(&self, request: Request<GetRunRequest>) -> Result<Response<Run>, Status> {
        let id = request.into_inner().run_id;
        let runs = self
            .runs
            .lock()
            .map_err(|_| Status::internal("run table poisoned"))?;
        runs.get(&id).cloned().map(Response::new).ok_or_else(|| {
            Status::not_found(format!("no run {}", service_runtime::truncated(&id, 64)))
        })
    }
}

/// Runs the trainer service until shutdown.
pub async fn run(cfg: Config, ctx: Context) -> Result<(), Error> {
    let registry = Registry::open(cfg.registry.path.clone())?;
    let api = Api {
        cfg: cfg.clone(),
        registry,
        runs: Arc::default(),
        tasks: ctx.shutdown.tasks.clone(),
    };
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(
        TrainerServiceServer::new(api).max_decoding_message_size(cfg.server.max_message_bytes),
    );
    service_runtime::grpc::serve_service(
        ctx.grpc,
        &cfg.server,
        routes,
        &["vigil.v1.TrainerService"],
        &ctx.readiness,
        true,
        ctx.shutdown.stop_intake.clone(),
    )
    .await?;
    Ok(())
}
