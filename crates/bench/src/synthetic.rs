//! Seeded synthetic rows (the generator of `learn`'s parity test, with a variable width) and
//! a training set written from them.

use anyhow::{Context, ensure};
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

/// The generator reads features 0–6, so it needs at least this many.
pub(crate) const MIN_FEATURES: usize = 7;

/// `rows` rows of `features` features (row-major) and their labels: interactions, zeros,
/// negative values and ~5 % missing values (NaN); label rate ≈ 3 %.
pub(crate) fn rows(rows: usize, features: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
    assert!(
        features >= MIN_FEATURES,
        "need at least {MIN_FEATURES} features"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(rows * features);
    let mut labels = Vec::with_capacity(rows);
    let mut row = vec![0.0; features];
    for _ in 0..rows {
        for (j, v) in row.iter_mut().enumerate() {
            *v = if rng.random::<f64>() < 0.05 {
                f64::NAN
            } else if j % 5 == 0 {
                f64::from(rng.random_range(0..4u8)) // small integer-valued, many zeros
            } else {
                rng.random::<f64>() * 4.0 - 2.0
            };
        }
        let x = |j: usize| if row[j].is_nan() { 0.0 } else { row[j] };
        let logit = -4.0 + 1.5 * x(1) + 1.2 * x(2) * x(3) + 0.8 * x(0) - (x(4) * 2.0).sin()
            + if row[6].is_nan() { 1.0 } else { 0.0 };
        labels.push(rng.random::<f64>() < 1.0 / (1.0 + (-logit).exp()));
        values.extend_from_slice(&row);
    }
    (values, labels)
}

pub(crate) fn feature_names(features: usize) -> Vec<String> {
    (0..features).map(|j| format!("f{j}")).collect()
}

#[derive(Debug, Args)]
pub(crate) struct SynthSetArgs {
    /// Directory to write the set into (`trainset.json` + `data/`).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 200_000)]
    rows: usize,
    #[arg(long, default_value_t = 20)]
    features: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Label delay recorded in the manifest (the split gap).
    #[arg(long, default_value_t = 3_600_000)]
    label_delay_ms: i64,
}

/// One row a second from 2026-01-05T00:00Z, entities `e0`…`e999`.
pub(crate) fn write_set(args: &SynthSetArgs) -> anyhow::Result<()> {
    ensure!(
        args.features >= MIN_FEATURES,
        "--features must be at least {MIN_FEATURES}"
    );
    let (values, labels) = rows(args.rows, args.features, args.seed);
    let spec = trainset::NumericSetSpec {
        id_column: None,
        labels_as_of_ms: None,
        name: format!(
            "synthetic-{}x{}-seed{}",
            args.rows, args.features, args.seed
        ),
        entity_column: "entity".into(),
        time_column: "event_time_ms".into(),
        label_column: "is_fraud".into(),
        label_delay_ms: args.label_delay_ms,
        feature_names: feature_names(args.features),
    };
    let entities: Vec<String> = (0..1000).map(|e| format!("e{e}")).collect();
    const START_MS: i64 = 1_767_571_200_000;
    let summary = trainset::write_numeric(
        &args.out,
        &spec,
        values
            .chunks_exact(args.features)
            .zip(&labels)
            .enumerate()
            .map(|(i, (features, &label))| trainset::RowRef {
                id: "",
                entity: &entities[i % entities.len()],
                time_ms: START_MS + i as i64 * 1000,
                label,
                features,
            }),
    )
    .with_context(|| format!("writing the set into {}", args.out.display()))?;
    println!(
        "wrote {} rows ({} positives) to {}",
        summary.rows,
        summary.positives,
        summary.manifest_path.display()
    );
    Ok(())
}
