//! Integration tests of `datagen` (one test binary; see CONVENTIONS.md §13).

mod generate;
mod malformed;
mod output;
mod replay;

use datagen::GenConfig;

/// A small config with every fault turned on.
pub(crate) fn faulty(seed: u64) -> GenConfig {
    GenConfig {
        seed,
        users: 200,
        merchants: 100,
        transactions: Some(5_000),
        days: 14,
        fraud_rate: 0.02,
        duplicate_rate: 0.03,
        late_rate: 0.05,
        corrupt_rate: 0.02,
        ..GenConfig::default()
    }
}
