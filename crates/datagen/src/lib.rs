//! Synthetic, labelled card transactions for Vigil: a deterministic generator, file outputs
//! and a gRPC replayer (the `vigil-datagen` binary).
//!
//! Why it exists: a fraud system cannot be trained, tested or demonstrated without traffic
//! whose ground truth is known. Real data is unavailable and sensitive, so this crate plays a
//! small world instead — users with habits, merchants, legitimate spending with daily and
//! weekly rhythms, three fraud patterns with the signals the features look for (new devices,
//! foreign countries, bursts, unusual amounts) — and the delivery faults ingest must survive
//! (duplicates, late events, invalid records). Everything is a pure function of
//! [`GenConfig`], including the seed, so a failing test or a model metric can be reproduced
//! byte for byte.
//!
//! How the modules fit:
//! - [`config`]: what to generate ([`GenConfig`]); `world` (private): countries, categories,
//!   users and merchants; [`generate()`]: traffic, fraud episodes, labels and faults,
//!   producing a [`Dataset`]. No I/O in these.
//! - [`json`]: the JSON-lines record shapes (the proto messages with proto3-JSON-like field
//!   names), which can also carry records that fail validation.
//! - [`output`]: writes a dataset as JSONL, Parquet (via `lake`) and/or a lake directory.
//! - [`replay`]: streams transactions to ingest's `SubmitBatch` at a target rate, then labels.
//! - [`cli`]: the clap configuration of the binary; `main.rs` only dispatches.
//!
//! Design choices worth knowing:
//! - All amounts are EUR (the issuer's billing currency); foreign spending is converted.
//! - Every legitimate transaction is labelled by default (`is_fraud = false`, reported
//!   [`LEGIT_CONFIRMATION_MS`] = 35 days after the event, when the chargeback window closes);
//!   `legit_label_rate` samples fewer. Fraud labels arrive after a log-normal delay (median
//!   3 days, clamped to 1 hour..30 days), one report per episode.
//! - Corrupt records cannot be domain values, so they live only in [`Dataset::corrupt`] as
//!   wire messages and appear only in the JSONL file and the replay stream, never in Parquet
//!   or the lake. Duplicates appear in the JSONL/replay stream only; Parquet and the lake get
//!   the distinct transactions in emission order (what ingest would have published).

pub mod cli;
pub mod config;
pub mod csv;
mod generate;
pub mod json;
pub mod output;
pub mod replay;
mod world;

pub use config::{DEFAULT_START_MS, GenConfig, parse_start};
pub use generate::{
    CorruptTransaction, Dataset, DatasetStats, FRAUD_DELAY_MAX_MS, FRAUD_DELAY_MEDIAN_MS,
    FRAUD_DELAY_MIN_MS, FraudPattern, LEGIT_CONFIRMATION_MS, WireRecord, generate,
};

/// Why a dataset could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A distribution or table could not be built: a bug, not bad input.
    #[error("internal error: {0}")]
    Internal(String),
}
