//! `vigil-materialize`: bootstraps the online store (Redis) from the lake, with the next
//! offsets the speed layer continues from. Reads the feature-service's own configuration
//! (`--config` / `VIGIL_CONFIG` and `VIGIL_*` variables); prints a JSON report.

use clap::Parser;
use feature_service::materialize::{Handover, materialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "vigil-materialize", about)]
struct Args {
    /// The feature-service's TOML config (environment variables override it).
    #[arg(long, env = "VIGIL_CONFIG")]
    config: Option<PathBuf>,
    /// Where the speed layer continues: after the lake's last offsets (`lake`, the lake was
    /// written from the topics) or at the topics' current end (`topic-end`, the lake holds
    /// an imported history and the topics nothing it lacks).
    #[arg(long, value_enum, default_value = "lake")]
    handover: Handover,
    /// Overwrite the state of a speed group that already ran (stop it first).
    #[arg(long)]
    force: bool,
    /// The lake to rebuild from (default: the config's `lake.path`).
    #[arg(long)]
    lake: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut env: HashMap<String, String> = std::env::vars().collect();
    // The `server` section is required by the service's config but unused here.
    for key in ["VIGIL_SERVER__GRPC_ADDR", "VIGIL_SERVER__ADMIN_ADDR"] {
        env.entry(key.into())
            .or_insert_with(|| "127.0.0.1:0".into());
    }
    if let Some(lake) = &args.lake {
        env.insert("VIGIL_LAKE__PATH".into(), lake.display().to_string());
    }
    let cfg: feature_service::Config =
        match service_runtime::config::load(args.config.as_deref(), &env) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("vigil-materialize: {e}");
                return ExitCode::from(2);
            }
        };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil-materialize: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(materialize(&cfg, args.handover, args.force)) {
        Ok(report) => match serde_json::to_string_pretty(&report) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vigil-materialize: report: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("vigil-materialize: {e}");
            ExitCode::FAILURE
        }
    }
}
