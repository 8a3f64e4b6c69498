//! `vigil-bench scorer`: Vigil's flat tree scorer against LightGBM's own C API on one model.
//!
//! A model of exactly `--trees` trees (early stopping off) is trained on seeded synthetic
//! rows; the measurements use other rows of the same generator (held out). Both engines
//! score the same rows in the same order; LightGBM's outputs are the reference for parity.

use crate::export::write_text;
use crate::stats::{self, Latency, max_abs_diff};
use crate::synthetic;
use anyhow::{Context, bail, ensure};
use clap::Args;
use learn::Matrix;
use learn::gbdt::{self, GbdtParams};
use lightgbm3::Booster;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// Largest |Vigil − LightGBM| raw-score difference the bench accepts.
const PARITY_TOLERANCE: f64 = 1e-6;
/// Issue 3's single-row latency target for 500 trees of 31 leaves.
const SINGLE_ROW_P99_TARGET_US: f64 = 10.0;

#[derive(Debug, Args)]
pub(crate) struct ScorerArgs {
    /// Boosting iterations (= trees; early stopping is off).
    #[arg(long, default_value_t = 500)]
    trees: u32,
    /// Maximum leaves per tree.
    #[arg(long, default_value_t = 31)]
    leaves: u32,
    #[arg(long, default_value_t = 20)]
    features: usize,
    /// Held-out rows: the batch, and the rows the single-row calls cycle through.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Training rows (validation gets a quarter as many).
    #[arg(long, default_value_t = 50_000)]
    train_rows: usize,
    /// Seed of the data and of LightGBM.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timed single-row calls per engine.
    #[arg(long, default_value_t = 50_000)]
    calls: usize,
    /// Untimed single-row calls per engine before timing.
    #[arg(long, default_value_t = 5_000)]
    warmup: usize,
    /// Timed batch runs per engine (after one untimed run); the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the benchmarked model (LightGBM text format) here.
    #[arg(long)]
    model_out: Option<PathBuf>,
    /// Write the Markdown tables here too (they are always printed).
    #[arg(long)]
    markdown: Option<PathBuf>,
}

struct Throughput {
    engine: &'static str,
    threads: String,
    times: Vec<Duration>,
    rows: usize,
}

impl Throughput {
    fn rows_per_s(&self) -> f64 {
        self.rows as f64 / stats::median(&self.times).as_secs_f64()
    }
}

pub(crate) fn run(args: &ScorerArgs) -> anyhow::Result<bool> {
    ensure!(
        args.features >= synthetic::MIN_FEATURES,
        "--features must be at least {}",
        synthetic::MIN_FEATURES
    );
    ensure!(args.rows > 0 && args.calls > 0 && args.repeats > 0);
    let load_start = crate::train::load_average();
    let nf = args.features;
    let names = synthetic::feature_names(nf);
    let (tx, ty) = synthetic::rows(args.train_rows, nf, args.seed);
    let (vx, vy) = synthetic::rows(args.train_rows / 4, nf, args.seed + 1);
    let (rows, _) = synthetic::rows(args.rows, nf, args.seed + 2);

    let params = GbdtParams {
        max_iterations: args.trees,
        num_leaves: args.leaves,
        early_stopping_rounds: 0,
        seed: args.seed,
        ..GbdtParams::default()
    };
    eprintln!(
        "training {} trees of ≤ {} leaves on {} rows × {nf} features…",
        args.trees, args.leaves, args.train_rows
    );
    let matrix = |values, labels| Matrix {
        values,
        labels,
        n_features: nf,
        feature_names: &names,
    };
    let model = gbdt::train(&matrix(&tx, &ty), &matrix(&vx, &vy), &params)?;
    let ensemble = &model.ensemble;
    let summary = ensemble.summary();
    let leaves_per_tree = summary.leaves as f64 / summary.trees.max(1) as f64;
    eprintln!(
        "model: {} trees, {} leaves ({leaves_per_tree:.2} per tree), max depth {}, trained in {:.1} s",
        summary.trees,
        summary.leaves,
        summary.max_depth,
        model.train_time.as_secs_f64()
    );
    if summary.trees != args.trees as usize {
        bail!(
            "the model has {} trees, not the {} asked for",
            summary.trees,
            args.trees
        );
    }

    if let Some(path) = &args.model_out {
        write_text(path, &model.text)?;
    }
    let booster = Booster::from_string(&model.text).context("loading the model into LightGBM")?;
    let mut fast = Booster::from_string(&model.text).context("loading the model into LightGBM")?;
    fast.single_row_fast_init::<f64>(None)
        .context("LightGBM single_row_fast_init")?;
    let n_features = nf as i32;

    // Batch throughput; the last run's scores also serve the parity check.
    eprintln!(
        "batch throughput ({} rows, {} runs each)…",
        args.rows, args.repeats
    );
    let (lgb_batch, lgb_default_times) = stats::repeated(args.repeats, || {
        Ok(booster.raw_scores(&rows, n_features, true)?)
    })?;
    let (lgb_batch_1t, lgb_1t_times) = stats::repeated(args.repeats, || {
        Ok(booster.raw_scores_with_params(&rows, n_features, true, "num_threads=1")?)
    })?;
    let (vigil_batch, vigil_times) =
        stats::repeated(args.repeats, || Ok(ensemble.raw_scores(&rows)?))?;
    let default_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (vigil_batch_mt, vigil_mt_times) = stats::repeated(args.repeats, || {
        Ok(ensemble.raw_scores_threads(&rows, default_threads)?)
    })?;
    let throughput = [
        Throughput {
            engine: "Vigil `TreeEnsemble::raw_scores`",
            threads: "1".into(),
            times: vigil_times,
            rows: args.rows,
        },
        Throughput {
            engine: "Vigil `TreeEnsemble::raw_scores_threads`",
            threads: format!("{default_threads} (scoped threads)"),
            times: vigil_mt_times,
            rows: args.rows,
        },
        Throughput {
            engine: "LightGBM `raw_scores` (`LGBM_BoosterPredictForMat`)",
            threads: "1 (`num_threads=1`)".into(),
            times: lgb_1t_times,
            rows: args.rows,
        },
        Throughput {
            engine: "LightGBM `raw_scores` (`LGBM_BoosterPredictForMat`)",
            threads: format!("default (OpenMP, {default_threads} CPUs)"),
            times: lgb_default_times,
            rows: args.rows,
        },
    ];

    // Single-row latency, one engine after the other over the same rows.
    eprintln!(
        "single-row latency ({} warm-up + {} timed calls each)…",
        args.warmup, args.calls
    );
    let overhead = stats::timer_overhead(args.calls);
    let (vigil_lat, vigil_single) = stats::per_call(&rows, nf, args.warmup, args.calls, |row| {
        Ok(ensemble.raw_score(row)?)
    })?;
    let (walk_lat, walk_single) = stats::per_call(&rows, nf, args.warmup, args.calls, |row| {
        Ok(ensemble.raw_score_tree_by_tree(row)?)
    })?;
    // Reasons: TreeSHAP over every tree; the contributions sum to the raw score.
    let (shap_lat, shap_single) =
        stats::per_call(&rows, nf, args.warmup, args.calls / 10, |row| {
            Ok(ensemble.contributions(row)?.iter().sum())
        })?;
    let (lgb_shap_lat, lgb_shap_single) =
        stats::per_call(&rows, nf, args.warmup, args.calls / 10, |row| {
            Ok(booster.predict_contrib(row, n_features, true)?.iter().sum())
        })?;
    let (fast_lat, fast_single) = stats::per_call(&rows, nf, args.warmup, args.calls, |row| {
        Ok(fast.predict_single_row_fast::<f64>(row)?[0])
    })?;
    let (plain_lat, plain_single) = stats::per_call(&rows, nf, args.warmup, args.calls, |row| {
        Ok(booster.raw_scores(row, n_features, true)?[0])
    })?;
    let latency: [(&str, &str, &Latency); 6] = [
        (
            "Vigil `TreeEnsemble::raw_score` (lockstep walk)",
            "raw score",
            &vigil_lat,
        ),
        (
            "Vigil `raw_score_tree_by_tree` (one tree at a time)",
            "raw score",
            &walk_lat,
        ),
        (
            "LightGBM `predict_single_row_fast` (`…SingleRowFast`)",
            "probability¹",
            &fast_lat,
        ),
        (
            "Vigil `TreeEnsemble::contributions` (TreeSHAP reasons)²",
            "SHAP vector",
            &shap_lat,
        ),
        (
            "LightGBM `predict_contrib`, 1 row (TreeSHAP)²",
            "SHAP vector",
            &lgb_shap_lat,
        ),
        (
            "LightGBM `raw_scores`, 1 row (`…ForMatSingleRow`)",
            "raw score",
            &plain_lat,
        ),
    ];

    // Parity: everything against LightGBM's batch raw scores.
    let reference_for_calls: Vec<f64> = (0..args.calls).map(|i| lgb_batch[i % args.rows]).collect();
    let parity = [
        (
            "Vigil batch vs LightGBM batch (raw, all rows)",
            max_abs_diff(&vigil_batch, &lgb_batch),
        ),
        (
            "Vigil batch on all CPUs vs Vigil batch (raw, all rows)",
            max_abs_diff(&vigil_batch_mt, &vigil_batch),
        ),
        (
            "LightGBM batch num_threads=1 vs default (raw)",
            max_abs_diff(&lgb_batch_1t, &lgb_batch),
        ),
        (
            "Vigil single-row vs LightGBM batch (raw, timed calls)",
            max_abs_diff(&vigil_single, &reference_for_calls),
        ),
        (
            "Vigil tree-by-tree single-row vs LightGBM batch (raw, timed calls)",
            max_abs_diff(&walk_single, &reference_for_calls),
        ),
        (
            "Σ Vigil TreeSHAP vs LightGBM batch (raw, timed calls)",
            max_abs_diff(&shap_single, &reference_for_calls[..shap_single.len()]),
        ),
        (
            "Σ LightGBM predict_contrib vs LightGBM batch (raw, timed calls)",
            max_abs_diff(
                &lgb_shap_single,
                &reference_for_calls[..lgb_shap_single.len()],
            ),
        ),
        (
            "LightGBM 1-row raw_scores vs LightGBM batch (raw)",
            max_abs_diff(&plain_single, &reference_for_calls),
        ),
        (
            "LightGBM single_row_fast vs sigmoid(Vigil raw) (probability)",
            max_abs_diff(
                &fast_single,
                &vigil_single
                    .iter()
                    .map(|&r| ensemble.sigmoid(r))
                    .collect::<Vec<_>>(),
            ),
        ),
    ];
    let worst = parity.iter().map(|(_, d)| *d).fold(0.0, f64::max);
    let passed = worst < PARITY_TOLERANCE;

    let mut markdown = render(
        args,
        &summary,
        leaves_per_tree,
        &model.train_time,
        &latency,
        &overhead,
        &throughput,
        &parity,
        passed,
    );
    markdown.push_str(&format!(
        "\nLoad average (1/5/15 min) at start: {load_start}; at end: {}.\n",
        crate::train::load_average()
    ));
    println!("{markdown}");
    if let Some(path) = &args.markdown {
        write_text(path, &markdown)?;
    }
    if let Some(path) = &args.json {
        let value = json!({
            "bench": "scorer",
            "unix_time_s": unix_time_s(),
            "available_parallelism": default_threads,
            "load_average": { "start": load_start, "end": crate::train::load_average() },
            "config": {
                "trees": args.trees, "leaves": args.leaves, "features": nf, "rows": args.rows,
                "train_rows": args.train_rows, "seed": args.seed, "calls": args.calls,
                "warmup": args.warmup, "batch_repeats": args.repeats,
                "lightgbm_params": params.lightgbm_params(true),
            },
            "model": {
                "trees": summary.trees, "leaves": summary.leaves,
                "leaves_per_tree": leaves_per_tree, "max_depth": summary.max_depth,
                "train_seconds": model.train_time.as_secs_f64(),
            },
            "timer_overhead": overhead,
            "latency": latency.iter().map(|(engine, output, l)| json!({
                "engine": engine, "output": output, "stats": l,
            })).collect::<Vec<_>>(),
            "throughput": throughput.iter().map(|t| json!({
                "engine": t.engine, "threads": t.threads, "rows": t.rows,
                "median_rows_per_s": t.rows_per_s(),
                "run_seconds": t.times.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "parity": {
                "tolerance": PARITY_TOLERANCE,
                "max_abs_diff": parity.iter().map(|(what, d)| json!({"what": what, "max_abs_diff": d})).collect::<Vec<_>>(),
                "passed": passed,
            },
        });
        write_text(path, &serde_json::to_string_pretty(&value)?)?;
    }
    if !passed {
        eprintln!(
            "vigil-bench scorer: FAILED parity: max |diff| = {worst:e} ≥ {PARITY_TOLERANCE:e}"
        );
    }
    Ok(passed)
}

pub(crate) fn unix_time_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[allow(clippy::too_many_arguments)]
fn render(
    args: &ScorerArgs,
    summary: &model::trees::EnsembleSummary,
    leaves_per_tree: f64,
    train_time: &Duration,
    latency: &[(&str, &str, &Latency)],
    overhead: &Latency,
    throughput: &[Throughput],
    parity: &[(&str, f64)],
    passed: bool,
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Scorer benchmark\n\nModel: {} trees, {} leaves ({leaves_per_tree:.2} per tree, ≤ {} asked), \
         max depth {}, {} features; trained on {} synthetic rows in {:.1} s (seed {}). \
         Measured on {} held-out rows.\n",
        summary.trees,
        summary.leaves,
        args.leaves,
        summary.max_depth,
        summary.features,
        args.train_rows,
        train_time.as_secs_f64(),
        args.seed,
        args.rows,
    );
    let _ = writeln!(
        s,
        "### Single-row latency ({} timed calls per engine after {} warm-up calls; each call timed with `Instant`)\n",
        args.calls, args.warmup
    );
    let _ = writeln!(
        s,
        "| engine | output | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | mean µs |\n|---|---|---:|---:|---:|---:|---:|---:|"
    );
    for (engine, output, l) in latency {
        let _ = writeln!(
            s,
            "| {engine} | {output} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} |",
            l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.mean_us
        );
    }
    if let [(_, _, lockstep), (_, _, walk), ..] = latency {
        let _ = writeln!(
            s,
            "\nVigil single-row p99 {:.2} µs: target (< {SINGLE_ROW_P99_TARGET_US} µs) {}. \
             Lockstep against one tree at a time: {:.2}× faster at p50, {:.2}× at p99.",
            lockstep.p99_us,
            if lockstep.p99_us < SINGLE_ROW_P99_TARGET_US {
                "met"
            } else {
                "missed"
            },
            walk.p50_us / lockstep.p50_us,
            walk.p99_us / lockstep.p99_us,
        );
    }
    let _ = writeln!(
        s,
        "\nTimer overhead (empty call, same timing): p50 {:.3} µs, p99 {:.3} µs — included above, not subtracted.  \n\
         ¹ `LGBM_BoosterPredictForMatSingleRowFast` is initialised by lightgbm3 for normal \
         (probability) output; the sigmoid is one `exp` per row.  \n\
         ² timed on a tenth as many calls; what inference pays per request that asks for reasons.\n",
        overhead.p50_us, overhead.p99_us
    );
    let _ = writeln!(
        s,
        "### Batch throughput ({} rows; median of {} runs after one warm-up run)\n",
        args.rows, args.repeats
    );
    let _ = writeln!(
        s,
        "| engine | threads | rows/s | median s |\n|---|---|---:|---:|"
    );
    for t in throughput {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.4} |",
            t.engine,
            t.threads,
            t.rows_per_s(),
            stats::median(&t.times).as_secs_f64()
        );
    }
    let _ = writeln!(
        s,
        "\n### Parity (tolerance {PARITY_TOLERANCE:e}): {}\n",
        if passed { "PASS" } else { "FAIL" }
    );
    let _ = writeln!(s, "| comparison | max abs diff |\n|---|---:|");
    for (what, d) in parity {
        let _ = writeln!(s, "| {what} | {d:.3e} |");
    }
    s
}
