//! The trainer as a service: its configuration and `run`, which serves [`crate::runs::Runs`]
//! (`Train` starts a job in a tracked task and returns its run id at once; `GetRun` reports
//! progress and the result) through the gRPC adapter [`crate::grpc`].

use learn::pipeline::TrainConfig;
use proto::v1::trainer_service_server::TrainerServiceServer;
use registry::Registry;
use serde::Deserialize;
use service_runtime::telemetry::TelemetryConfig;
use service_runtime::{ConfigError, Context, ServerConfig, ServiceConfig};
use std::path::PathBuf;

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

/// Runs the trainer service until shutdown.
pub async fn run(cfg: Config, ctx: Context) -> Result<(), Error> {
    let registry = Registry::open(cfg.registry.path.clone())?;
    let runs = crate::runs::Runs::new(
        cfg.lake.path.clone(),
        cfg.trainer.clone(),
        registry,
        ctx.shutdown.tasks.clone(),
    );
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(
        TrainerServiceServer::new(crate::grpc::Grpc(runs))
            .max_decoding_message_size(cfg.server.max_message_bytes),
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
