//! `vigil-trainer`: the trainer service, or `vigil-trainer train …` to run one job and exit.
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs one training job: lake → model → registry.
#[derive(Debug, Parser)]
#[command(name = "vigil-trainer train")]
struct TrainArgs {
    /// Lake root directory.
    #[arg(long, env = "VIGIL_LAKE__PATH")]
    lake: PathBuf,
    /// Registry root directory.
    #[arg(long, env = "VIGIL_REGISTRY__PATH")]
    registry: PathBuf,
    /// Alias to move when the promotion gate passes (omit to only register).
    #[arg(long)]
    promote: Option<String>,
    #[arg(long, default_value = "vigil-fraud")]
    model_id: String,
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() != Some("train") {
        return service_runtime::launch("trainer", trainer::run);
    }
    let args = TrainArgs::parse_from(std::env::args().skip(1));
    let _ = tracing_subscriber_init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil-trainer: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let registry = match registry::Registry::open(&args.registry) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("vigil-trainer: {e}");
                return ExitCode::FAILURE;
            }
        };
        let opts = trainer::train::TrainOptions {
            model_id: args.model_id,
            ..Default::default()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        match trainer::train_from_lake(&args.lake, &registry, &opts, args.promote.as_deref(), now)
            .await
        {
            Ok(outcome) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&outcome).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vigil-trainer: training failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn tracing_subscriber_init()
-> Result<service_runtime::telemetry::TelemetryHandle, service_runtime::telemetry::TelemetryError> {
    let cfg = service_runtime::telemetry::TelemetryConfig {
        log_format: service_runtime::telemetry::LogFormat::Pretty,
        ..Default::default()
    };
    service_runtime::telemetry::init("trainer", &cfg)
}
