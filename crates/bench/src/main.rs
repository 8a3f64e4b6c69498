//! `vigil-bench`: measurements behind Vigil's performance and quality claims.
//!
//! * `scorer` — Vigil's pure-Rust [`model::trees::TreeEnsemble`] against LightGBM's own C API
//!   predictions on the same model: single-row latency, batch throughput, and parity.
//! * `train` — Vigil's training pipeline (`learn::gbdt`, `learn::logistic`) against the Python
//!   LightGBM reference (`scripts/bench/lightgbm_reference.py`) on one training set, with the
//!   same windows, parameters and weights; every metric is computed by `model::metrics`.
//! * `features` — the `features` engine in memory: events/s, the per-event cost of a user
//!   with 50 000 transactions in an hour against ordinary ones, state bytes per user.
//! * `load` — gRPC load on `Score` against a running inference service, open or closed loop,
//!   with every answer's status counted (overload: shed vs admitted latency).
//! * `drift` — a drift report of 30 columns × 100 k rows with the `drift` crate against
//!   Evidently's DataDriftTable on the same data: time, ratio, and column-by-column parity.
//! * `synth-set` — writes a seeded synthetic training set (for trying `train` without a lake).
//!
//! Results are printed as Markdown and written as JSON; a command exits non-zero when its
//! check fails (scorer parity, or the training-quality / training-time targets).

mod drift;
mod export;
mod features;
mod load;
mod scorer;
mod stats;
mod synthetic;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "vigil-bench", version, about = "Vigil benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scoring latency / throughput / parity: TreeEnsemble vs LightGBM's C API.
    Scorer(scorer::ScorerArgs),
    /// Training quality and time: Vigil (Rust) vs Python LightGBM on a training set.
    Train(train::TrainArgs),
    /// Feature engine: events/s, a heavy user's cost per event, state bytes per user.
    Features(features::FeaturesArgs),
    /// gRPC load on `Score`, open or closed loop, counting every answer's status.
    Load(load::LoadArgs),
    /// Drift report time and parity against Evidently on the same data.
    Drift(drift::DriftArgs),
    /// Writes a seeded synthetic training set (numeric features) with `trainset`.
    SynthSet(synthetic::SynthSetArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Scorer(args) => scorer::run(&args),
        Command::Features(args) => features::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Load(args) => load::run(&args),
        Command::Drift(args) => drift::run(&args),
        Command::SynthSet(args) => synthetic::write_set(&args).map(|()| true),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("vigil-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}
