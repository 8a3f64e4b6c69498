//! `vigil-trainer`: the trainer service, or one job from the command line:
//! `vigil-trainer build-set …` (lake → training set) and `vigil-trainer train …`.
use clap::{Args, Parser, Subcommand};
use learn::pipeline::{Policy, TrainConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "vigil-trainer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lake → point-in-time feature vectors → a generic training set (Parquet + trainset.json).
    BuildSet {
        #[arg(long, env = "VIGIL_LAKE__PATH")]
        lake: PathBuf,
        /// Output directory (replaced if present).
        #[arg(long)]
        out: PathBuf,
        /// Label delay recorded in the set (the gap the trainer leaves between windows).
        #[arg(long, default_value_t = 3.0)]
        label_delay_days: f64,
        /// Cut-off (RFC 3339, default now): no transaction after it and no label reported
        /// after it is read.
        #[arg(long)]
        as_of: Option<String>,
        /// Unlabelled transactions this much older than the cut-off are legit (default: the
        /// label delay); younger unlabelled ones are left out.
        #[arg(long)]
        assume_legit_after_days: Option<f64>,
    },
    /// Prints the feature table (Markdown) generated from the feature definitions.
    Features,
    /// Trains on a training set (or on the lake), registers the model and its report.
    Train(TrainArgs),
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// A training set's `trainset.json` (any conforming Parquet set).
    #[arg(long, conflicts_with = "lake", required_unless_present = "lake")]
    trainset: Option<PathBuf>,
    /// Or the lake: a training set is built first (into `--work-dir`).
    #[arg(long, env = "VIGIL_LAKE__PATH")]
    lake: Option<PathBuf>,
    #[arg(long, default_value = "run/trainer-work")]
    work_dir: PathBuf,
    #[arg(long, default_value_t = 3.0)]
    label_delay_days: f64,
    /// Registry root directory.
    #[arg(long, env = "VIGIL_REGISTRY__PATH")]
    registry: PathBuf,
    /// Alias to move when the promotion gate passes (omit to only register).
    #[arg(long)]
    promote: Option<String>,
    /// Why this run (recorded in the manifest as `params.trigger`: lineage).
    #[arg(long)]
    trigger: Option<String>,
    #[arg(long, default_value = "vigil-fraud")]
    model_id: String,
    /// BLOCK where the validation false-positive rate stays at or under this.
    #[arg(long, default_value_t = Policy::default().block_max_fpr)]
    block_max_fpr: f64,
    /// REVIEW at most this share of validation transactions.
    #[arg(long, default_value_t = Policy::default().review_alert_budget)]
    review_alert_budget: f64,
    /// Forward-chaining CV folds inside the training window (0 = skip).
    #[arg(long, default_value_t = TrainConfig::default().cv_folds)]
    cv_folds: usize,
}

/// mimalloc instead of glibc's malloc: a point-in-time build decodes every lake row into a
/// `Transaction` (seven small strings) twice, on several threads, and glibc's allocator
/// spent a fifth of the build in its slow paths (`malloc_consolidate`, `unlink_chunk`) —
/// measured in docs/benchmarks.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let first = std::env::args().nth(1);
    if !matches!(
        first.as_deref(),
        Some("train" | "build-set" | "features" | "help" | "--help" | "-h")
    ) {
        return service_runtime::launch("trainer", trainer::run);
    }
    let cli = Cli::parse();
    if matches!(cli.command, Command::Features) {
        print!("{}", features::schema::markdown_table());
        return ExitCode::SUCCESS;
    }
    let _telemetry = tracing_subscriber_init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil-trainer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let days = |d: f64| (d * 86_400_000.0) as i64;
    let result: Result<String, String> = runtime.block_on(async {
        match cli.command {
            Command::Features => Ok(String::new()),
            Command::BuildSet {
                lake,
                out,
                label_delay_days,
                as_of,
                assume_legit_after_days,
            } => {
                let cutoff_ms = match as_of {
                    None => service_runtime::clock::now_ms(),
                    Some(s) => chrono::DateTime::parse_from_rfc3339(&s)
                        .map_err(|e| format!("--as-of {s:?}: {e}"))?
                        .timestamp_millis(),
                };
                let as_of = trainer::dataset::AsOf {
                    cutoff_ms,
                    assume_legit_after_ms: days(
                        assume_legit_after_days.unwrap_or(label_delay_days),
                    ),
                };
                trainer::dataset::build_set_from_lake(&lake, &out, as_of, days(label_delay_days))
                    .await
                    .map(|p| p.display().to_string())
                    .map_err(|e| e.to_string())
            }
            Command::Train(args) => {
                let registry =
                    registry::Registry::open(&args.registry).map_err(|e| e.to_string())?;
                let config = TrainConfig {
                    model_id: args.model_id,
                    cv_folds: args.cv_folds,
                    policy: Policy {
                        block_max_fpr: args.block_max_fpr,
                        review_alert_budget: args.review_alert_budget,
                    },
                    ..TrainConfig::default()
                };
                let now = service_runtime::clock::now_ms();
                let outcome = match (args.trainset, args.lake) {
                    (Some(set), _) => {
                        let (promote, trigger) = (args.promote.clone(), args.trigger.clone());
                        tokio::task::spawn_blocking(move || {
                            trainer::train_set(
                                &set,
                                &registry,
                                &config,
                                promote.as_deref(),
                                trigger.as_deref(),
                                now,
                            )
                        })
                        .await
                        .map_err(|e| e.to_string())?
                    }
                    (None, Some(lake)) => {
                        trainer::train_from_lake(
                            &lake,
                            &args.work_dir,
                            &registry,
                            &config,
                            days(args.label_delay_days),
                            &trainer::Registration {
                                promote_to: args.promote.clone(),
                                trigger: args.trigger.clone(),
                            },
                            now,
                        )
                        .await
                    }
                    (None, None) => return Err("give --trainset or --lake".into()),
                };
                let outcome = outcome.map_err(|e| format!("training failed: {e}"))?;
                serde_json::to_string_pretty(&outcome)
                    .map_err(|e| format!("writing the training outcome as JSON: {e}"))
            }
        }
    });
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil-trainer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tracing_subscriber_init()
-> Result<service_runtime::telemetry::TelemetryHandle, service_runtime::telemetry::TelemetryError> {
    let mut cfg = service_runtime::telemetry::TelemetryConfig {
        log_format: service_runtime::telemetry::LogFormat::Pretty,
        ..Default::default()
    };
    // Progress of the long steps goes to stderr at `info`; the CLI loads no config file, so
    // the services' variable for the filter is read directly.
    if let Ok(filter) = std::env::var("VIGIL_TELEMETRY__LOG_FILTER") {
        cfg.log_filter = filter;
    }
    service_runtime::telemetry::init("trainer", &cfg)
}
