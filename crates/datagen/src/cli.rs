//! Command line of `vigil-datagen` (clap derive). Every option has a default and can also be
//! set through a `VIGIL_DATAGEN_*` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::GenerateError;
use crate::config::{GenConfig, parse_start};
use crate::output::Format;
use crate::replay::ReplayConfig;

/// Synthetic transactions, fraud patterns and labels for Vigil.
#[derive(Debug, Parser)]
#[command(name = "vigil-datagen", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Writes a dataset to files (JSONL, Parquet) and/or a lake directory.
    Generate(GenerateCmd),
    /// Streams a dataset to ingest over gRPC at a target rate, then its labels.
    Replay(ReplayCmd),
}

/// What to generate (shared by both subcommands).
#[derive(Debug, Clone, Args)]
pub struct GenArgs {
    /// Seed: the same seed and options give byte-identical output.
    #[arg(long, env = "VIGIL_DATAGEN_SEED", default_value_t = 42)]
    pub seed: u64,
    #[arg(long, env = "VIGIL_DATAGEN_USERS", default_value_t = 1_000)]
    pub users: u32,
    /// At least 10 (one per merchant category).
    #[arg(long, env = "VIGIL_DATAGEN_MERCHANTS", default_value_t = 500)]
    pub merchants: u32,
    /// Distinct valid transactions to generate [default: drawn from the users' rates
    /// (about 1.8 per user per day) over --days].
    #[arg(long, env = "VIGIL_DATAGEN_TRANSACTIONS")]
    pub transactions: Option<u64>,
    /// Length of the simulated period, in days.
    #[arg(long, env = "VIGIL_DATAGEN_DAYS", default_value_t = 30)]
    pub days: u32,
    /// Start of the period: RFC 3339, unix milliseconds, or `now` (not reproducible).
    #[arg(
        long,
        env = "VIGIL_DATAGEN_START",
        default_value = "2026-01-05T00:00:00Z"
    )]
    pub start: String,
    /// Share of the distinct valid transactions that are fraudulent.
    #[arg(long, env = "VIGIL_DATAGEN_FRAUD_RATE", default_value_t = 0.01)]
    pub fraud_rate: f64,
    /// Share of legitimate transactions that get an `is_fraud = false` label.
    #[arg(long, env = "VIGIL_DATAGEN_LEGIT_LABEL_RATE", default_value_t = 1.0)]
    pub legit_label_rate: f64,
    /// Probability that a transaction is re-emitted identically (same id).
    #[arg(long, env = "VIGIL_DATAGEN_DUPLICATE_RATE", default_value_t = 0.0)]
    pub duplicate_rate: f64,
    /// Probability that a transaction is emitted 1–12 hours late (out of order).
    #[arg(long, env = "VIGIL_DATAGEN_LATE_RATE", default_value_t = 0.0)]
    pub late_rate: f64,
    /// Records failing validation, as a share of valid transactions (JSONL and replay only).
    #[arg(long, env = "VIGIL_DATAGEN_CORRUPT_RATE", default_value_t = 0.0)]
    pub corrupt_rate: f64,
    /// History / live boundary (RFC 3339 or unix milliseconds): `generate` keeps what
    /// happened before it (transactions by event time, labels by `reported_at`, profile
    /// versions by `valid_from`), `replay` sends the transactions from it on. The same options
    /// on both give one world and one stream, cut in two.
    #[arg(long, env = "VIGIL_DATAGEN_SPLIT_AT")]
    pub split_at: Option<String>,
}

impl GenArgs {
    /// The generator config; `now_ms` is used only for `--start now`.
    pub fn to_config(&self, now_ms: i64) -> Result<GenConfig, GenerateError> {
        let config = GenConfig {
            seed: self.seed,
            users: self.users,
            merchants: self.merchants,
            transactions: self.transactions,
            days: self.days,
            start_ms: parse_start(&self.start, now_ms)?,
            fraud_rate: self.fraud_rate,
            legit_label_rate: self.legit_label_rate,
            duplicate_rate: self.duplicate_rate,
            late_rate: self.late_rate,
            corrupt_rate: self.corrupt_rate,
        };
        config.validate()?;
        Ok(config)
    }

    /// `--split-at` in unix milliseconds, if given.
    pub fn split_at_ms(&self, now_ms: i64) -> Result<Option<i64>, GenerateError> {
        self.split_at
            .as_deref()
            .map(|v| parse_start(v, now_ms))
            .transpose()
    }
}

#[derive(Debug, Args)]
pub struct GenerateCmd {
    #[command(flatten)]
    pub gen_args: GenArgs,
    /// Output directory (created if missing).
    #[arg(long, env = "VIGIL_DATAGEN_OUT")]
    pub out: PathBuf,
    #[arg(long, value_enum, env = "VIGIL_DATAGEN_FORMAT", default_value = "all")]
    pub format: Format,
    /// Lake directory for `--format lake|all` [default: OUT/lake]; must hold no data yet.
    #[arg(long, env = "VIGIL_DATAGEN_LAKE_DIR")]
    pub lake_dir: Option<PathBuf>,
    /// Kafka partitions the lake's records are laid out in, keyed by user as the topics are
    /// (the dev stack's topics have 6); the offline builder works on them in parallel.
    #[arg(long, env = "VIGIL_DATAGEN_LAKE_PARTITIONS", default_value_t = 6)]
    pub lake_partitions: i32,
}

#[derive(Debug, Args)]
pub struct ReplayCmd {
    #[command(flatten)]
    pub gen_args: GenArgs,
    /// Ingest gRPC endpoint.
    #[arg(
        long,
        env = "VIGIL_DATAGEN_INGEST",
        default_value = "http://127.0.0.1:50051"
    )]
    pub ingest: String,
    /// Target transactions per second.
    #[arg(long, env = "VIGIL_DATAGEN_RATE", default_value_t = 100.0)]
    pub rate: f64,
    /// Send at most this many records.
    #[arg(long, env = "VIGIL_DATAGEN_LIMIT")]
    pub limit: Option<usize>,
    /// Largest SubmitBatch request (smaller at low rates, to send ~20 times a second).
    #[arg(long, env = "VIGIL_DATAGEN_BATCH", default_value_t = 100)]
    pub batch: usize,
    /// Send every label of the sent transactions, not only those reported by the last
    /// replayed event time.
    #[arg(long, env = "VIGIL_DATAGEN_ALL_LABELS")]
    pub all_labels: bool,
    /// Replay this transactions file instead of generating: JSON lines, or CSV with a header
    /// when its name ends in `.csv` (the generation options are then ignored).
    #[arg(long, env = "VIGIL_DATAGEN_FROM")]
    pub from: Option<PathBuf>,
    /// Labels for --from [default: labels.jsonl (labels.csv for a CSV --from) next to it,
    /// when present].
    #[arg(long, env = "VIGIL_DATAGEN_LABELS", requires = "from")]
    pub labels: Option<PathBuf>,
    /// Connection attempts before giving up (back-off doubling up to 2 s).
    #[arg(long, env = "VIGIL_DATAGEN_CONNECT_ATTEMPTS", default_value_t = 30)]
    pub connect_attempts: u32,
    /// Timeout of one connection attempt, in seconds.
    #[arg(long, env = "VIGIL_DATAGEN_CONNECT_TIMEOUT_SECS", default_value_t = 5)]
    pub connect_timeout_secs: u64,
    /// TLS (an `https://` endpoint) and the bearer token, for a secured ingest.
    #[command(flatten, next_help_heading = "Security")]
    pub security: service_runtime::security::ClientSecurity,
}

impl ReplayCmd {
    pub fn replay_config(&self) -> ReplayConfig {
        ReplayConfig {
            rate: self.rate,
            batch: self.batch,
            all_labels: self.all_labels,
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    /// The labels file to use with `--from`.
    pub fn labels_path(&self) -> Option<PathBuf> {
        if self.labels.is_some() {
            return self.labels.clone();
        }
        let from = self.from.as_ref()?;
        let name = if crate::output::is_csv(from) {
            "labels.csv"
        } else {
            "labels.jsonl"
        };
        let sibling = from.with_file_name(name);
        sibling.exists().then_some(sibling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_the_default_config() {
        let cli = Cli::try_parse_from(["vigil-datagen", "generate", "--out", "x"]).expect("parses");
        let Command::Generate(cmd) = cli.command else {
            panic!("not generate");
        };
        assert_eq!(cmd.format, Format::All);
        assert_eq!(
            cmd.gen_args.to_config(0).expect("valid"),
            GenConfig::default()
        );
    }

    #[test]
    fn parses_replay_options() {
        let cli = Cli::try_parse_from([
            "vigil-datagen",
            "replay",
            "--ingest",
            "http://ingest:50051",
            "--rate",
            "500",
            "--limit",
            "1000",
            "--all-labels",
            "--seed",
            "7",
        ])
        .expect("parses");
        let Command::Replay(cmd) = cli.command else {
            panic!("not replay");
        };
        assert_eq!(cmd.limit, Some(1000));
        assert!(cmd.replay_config().all_labels);
        assert_eq!(cmd.gen_args.seed, 7);
        assert!(Cli::try_parse_from(["vigil-datagen", "replay", "--labels", "l.jsonl"]).is_err());
    }
}
