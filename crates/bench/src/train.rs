//! `vigil-bench train`: Vigil's training against the Python LightGBM reference.
//!
//! One training set, one time split (train 0.6 / validation 0.2 / test the rest, separated by
//! the set's label delay), categoricals encoded on the training window. Vigil fits its GBDT
//! (`learn::gbdt::train`, default parameters) and the logistic baseline; the same three
//! matrices, the same fraud-row weight and the exact same LightGBM parameters go to
//! `scripts/bench/lightgbm_reference.py`, which fits with Python LightGBM and returns its
//! test-window raw scores. Every metric — both engines' — is computed here with
//! `model::metrics`, so the two sides are measured by one implementation.
//!
//! Training time on both sides is Dataset construction + boosting (with early stopping),
//! excluding reading and writing files.

use crate::export::{self, HEADER_FILE, write_text};
use crate::scorer::unix_time_s;
use anyhow::{Context, bail, ensure};
use clap::Args;
use learn::Matrix;
use learn::gbdt::{self, GbdtParams};
use model::metrics;
use serde::Serialize;
use serde_json::json;
use std::ops::Range;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// The training set's manifest (`…/trainset.json`).
    #[arg(long)]
    trainset: PathBuf,
    /// Python interpreter with `lightgbm==4.7.0` and `numpy`.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The reference script.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/bench/lightgbm_reference.py"))]
    script: PathBuf,
    /// Output directory: exchanged files, models, `train.json`, `train.md`.
    #[arg(long, default_value = "bench-results/train")]
    out: PathBuf,
    #[arg(long, default_value_t = 0.6)]
    train_fraction: f64,
    #[arg(long, default_value_t = 0.2)]
    validation_fraction: f64,
    /// Iterations of the logistic-regression baseline.
    #[arg(long, default_value_t = 100)]
    lr_iterations: u64,
    /// Fail when |Vigil ROC-AUC − Python ROC-AUC| on the test window exceeds this.
    #[arg(long, default_value_t = 0.003)]
    max_auc_delta: f64,
    /// Fail when Vigil's GBDT training time / Python's exceeds this.
    #[arg(long, default_value_t = 1.5)]
    max_time_ratio: f64,
    /// Train both engines this many times (alternating); the median time is reported and
    /// checked, the minimum shown too.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeats: u32,
    /// Keep the exported matrices (deleted after the run by default).
    #[arg(long)]
    keep_matrices: bool,
}

/// The test-window metrics of one model.
#[derive(Debug, Clone, Serialize)]
struct TestMetrics {
    roc_auc: Option<f64>,
    average_precision: Option<f64>,
    recall_at_1pct_fpr: Option<f64>,
    recall_at_0_1pct_fpr: Option<f64>,
}

impl TestMetrics {
    fn of(scores: &[f64], labels: &[bool]) -> TestMetrics {
        TestMetrics {
            roc_auc: metrics::roc_auc(scores, labels),
            average_precision: metrics::average_precision(scores, labels),
            recall_at_1pct_fpr: metrics::recall_at_fpr(scores, labels, 0.01).map(|p| p.recall),
            recall_at_0_1pct_fpr: metrics::recall_at_fpr(scores, labels, 0.001).map(|p| p.recall),
        }
    }
}

#[derive(Debug, Serialize)]
struct ModelRow {
    model: &'static str,
    engine: String,
    trees: Option<usize>,
    train_seconds: f64,
    test: TestMetrics,
}

/// What the Python script reports (`python_result.json`).
#[derive(Debug, serde::Deserialize, Serialize)]
struct PythonResult {
    lightgbm_version: String,
    numpy_version: String,
    python_version: String,
    train_seconds: f64,
    best_iteration: usize,
    trees_trained: usize,
    best_validation_score: Option<f64>,
    test_rows: usize,
    raw_scores_file: String,
    model_file: String,
}

pub(crate) fn run(args: &TrainArgs) -> anyhow::Result<bool> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let load_start = load_average();
    let started = Instant::now();
    let mut set = trainset::TrainingSet::load(&args.trainset)
        .with_context(|| format!("loading {}", args.trainset.display()))?;
    let spec = trainset::SplitSpec {
        train_fraction: args.train_fraction,
        validation_fraction: args.validation_fraction,
        gap_ms: set.label_delay_ms(),
    };
    let splits = trainset::time_split(set.times_ms(), &spec)?;
    let encodings = set.encode_categoricals(splits.train());
    let prepare_seconds = started.elapsed().as_secs_f64();
    let nf = set.n_features();
    let names: Vec<String> = set.feature_names().iter().map(|s| s.to_string()).collect();
    eprintln!(
        "{}: {} rows × {nf} features ({} categorical), {} positives; loaded + split + encoded in {prepare_seconds:.1} s",
        set.name(),
        set.len(),
        encodings.len(),
        set.positives()
    );
    let (values, labels) = (set.values(), set.labels());
    let window = |r: Range<usize>| Matrix {
        values: &values[r.start * nf..r.end * nf],
        labels: &labels[r],
        n_features: nf,
        feature_names: &names,
    };
    let (train, valid, test) = (
        window(splits.train()),
        window(splits.validation()),
        window(splits.test()),
    );

    // (a) Vigil's GBDT, default parameters.
    let params = GbdtParams::default();
    eprintln!("training Vigil's GBDT (learn::gbdt::train, default params)…");
    let gbdt_model = gbdt::train(&train, &valid, &params)?;
    let gbdt_seconds = gbdt_model.train_time.as_secs_f64();
    eprintln!("  {} trees in {gbdt_seconds:.2} s", gbdt_model.iterations);
    write_text(&args.out.join("vigil_model.txt"), &gbdt_model.text)?;
    let gbdt_test = gbdt_model.ensemble.raw_scores(test.values)?;

    // (b) The logistic baseline.
    eprintln!(
        "training the logistic baseline ({} iterations)…",
        args.lr_iterations
    );
    let lr_started = Instant::now();
    let lr = learn::logistic::train(&train, args.lr_iterations)?;
    let lr_seconds = lr_started.elapsed().as_secs_f64();
    let lr_test: Vec<f64> = test
        .values
        .chunks_exact(nf)
        .map(|r| lr.predict(r))
        .collect();
    eprintln!("  done in {lr_seconds:.2} s");

    // (c) The Python reference on the same matrices, weight and parameters.
    let windows = json!({
        "train": export::write_window(&args.out, "train", train.values, train.labels, nf)?,
        "validation": export::write_window(&args.out, "validation", valid.values, valid.labels, nf)?,
        "test": export::write_window(&args.out, "test", test.values, test.labels, nf)?,
    });
    let header = json!({
        "format": export::FORMAT,
        "n_features": nf,
        "feature_names": names,
        "positive_weight": gbdt_model.positive_weight,
        "params": params.lightgbm_params(true),
        "windows": windows,
    });
    let header_path = args.out.join(HEADER_FILE);
    write_text(&header_path, &serde_json::to_string_pretty(&header)?)?;
    let mut py = run_python(args, &header_path);
    let mut vigil_times = vec![gbdt_seconds];
    let mut python_times = Vec::new();
    if let Ok(p) = &py {
        python_times.push(p.train_seconds);
    }
    // Further rounds alternate the two engines, so a change of machine load hits both.
    for round in 1..args.repeats {
        if py.is_err() {
            break;
        }
        eprintln!("round {}/{}: Vigil…", round + 1, args.repeats);
        let again = gbdt::train(&train, &valid, &params)?;
        ensure!(
            again.text == gbdt_model.text,
            "Vigil's GBDT is not deterministic: round {} gave another model",
            round + 1
        );
        vigil_times.push(again.train_time.as_secs_f64());
        eprintln!("  {:.2} s", again.train_time.as_secs_f64());
        py = run_python(args, &header_path);
        if let Ok(p) = &py {
            python_times.push(p.train_seconds);
        }
    }
    if !args.keep_matrices {
        for name in ["train", "validation", "test"] {
            for ext in ["x.f64", "y.u8"] {
                let _ = std::fs::remove_file(args.out.join(format!("{name}.{ext}")));
            }
        }
    }
    let py = py?;
    let gbdt_seconds = median_f64(&vigil_times);
    let python_seconds = median_f64(&python_times);
    let py_test = export::read_f64(&args.out.join(&py.raw_scores_file))?;
    ensure!(
        py_test.len() == test.rows(),
        "Python returned {} test scores for {} test rows",
        py_test.len(),
        test.rows()
    );
    let identical_trees = same_trees(
        &gbdt_model.text,
        &std::fs::read_to_string(args.out.join(&py.model_file)).unwrap_or_default(),
    );
    let raw_diff = crate::stats::max_abs_diff(&gbdt_test, &py_test);

    // (d) Metrics, all from model::metrics.
    let rows = [
        ModelRow {
            model: "GBDT",
            engine: "Vigil (Rust, lightgbm3 C API)".into(),
            trees: Some(gbdt_model.iterations),
            train_seconds: gbdt_seconds,
            test: TestMetrics::of(&gbdt_test, test.labels),
        },
        ModelRow {
            model: "GBDT",
            engine: format!("Python LightGBM {}", py.lightgbm_version),
            trees: Some(py.best_iteration),
            train_seconds: python_seconds,
            test: TestMetrics::of(&py_test, test.labels),
        },
        ModelRow {
            model: "Logistic regression",
            engine: "Vigil (Rust, linfa)".into(),
            trees: None,
            train_seconds: lr_seconds,
            test: TestMetrics::of(&lr_test, test.labels),
        },
    ];
    let auc_delta = match (rows[0].test.roc_auc, rows[1].test.roc_auc) {
        (Some(v), Some(p)) => v - p,
        _ => f64::NAN,
    };
    let time_ratio = gbdt_seconds / python_seconds;
    let mut failures = Vec::new();
    // NaN (a metric undefined) fails both checks.
    let auc_ok = auc_delta.abs() <= args.max_auc_delta;
    let time_ok = time_ratio <= args.max_time_ratio;
    if !auc_ok {
        failures.push(format!(
            "|ΔAUC| = {:.4} exceeds {} (Vigil {:?}, Python {:?})",
            auc_delta.abs(),
            args.max_auc_delta,
            rows[0].test.roc_auc,
            rows[1].test.roc_auc
        ));
    }
    if !time_ok {
        failures.push(format!(
            "training time ratio Vigil / Python = {time_ratio:.2} exceeds {} ({gbdt_seconds:.2} s vs {:.2} s)",
            args.max_time_ratio, python_seconds
        ));
    }

    let mut markdown = render(
        args,
        &set,
        splits.windows(),
        &rows,
        auc_delta,
        time_ratio,
        identical_trees,
        raw_diff,
        gbdt_model.positive_weight,
        &failures,
    );
    let secs = |v: &[f64]| {
        v.iter()
            .map(|t| format!("{t:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    markdown.push_str(&format!(
        "GBDT training seconds per round (median reported): Vigil [{}], Python [{}]; \
         ratio of the minima {:.3}. Load average (1/5/15 min) at start: {load_start}; at end: {}.\n",
        secs(&vigil_times),
        secs(&python_times),
        min_f64(&vigil_times) / min_f64(&python_times),
        load_average()
    ));
    println!("{markdown}");
    write_text(&args.out.join("train.md"), &markdown)?;
    let report = json!({
        "bench": "train",
        "unix_time_s": unix_time_s(),
        "available_parallelism": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "trainset": { "manifest": args.trainset, "name": set.name(), "rows": set.len(),
                      "features": nf, "categorical": encodings.len(), "positives": set.positives() },
        "split": splits.windows(),
        "prepare_seconds": prepare_seconds,
        "positive_weight": gbdt_model.positive_weight,
        "lightgbm_params": params.lightgbm_params(true),
        "models": rows,
        "python": py,
        "train_seconds_per_round": { "vigil": vigil_times, "python": python_times },
        "time_ratio_of_minima": min_f64(&vigil_times) / min_f64(&python_times),
        "load_average": { "start": load_start, "end": load_average() },
        "auc_delta_vigil_minus_python": auc_delta,
        "time_ratio_vigil_over_python": time_ratio,
        "identical_trees": identical_trees,
        "max_abs_raw_score_diff_vigil_vs_python": raw_diff,
        "targets": { "max_auc_delta": args.max_auc_delta, "max_time_ratio": args.max_time_ratio },
        "failures": failures,
        "passed": failures.is_empty(),
    });
    write_text(
        &args.out.join("train.json"),
        &serde_json::to_string_pretty(&report)?,
    )?;
    for failure in &failures {
        eprintln!("vigil-bench train: FAILED: {failure}");
    }
    Ok(failures.is_empty())
}

/// Runs the reference script on the exported header and reads its result file.
fn run_python(args: &TrainArgs, header_path: &std::path::Path) -> anyhow::Result<PythonResult> {
    eprintln!(
        "running {} {} --input {}…",
        args.python,
        args.script.display(),
        header_path.display()
    );
    let result = args.out.join("python_result.json");
    // A stale file from an earlier run must not pass for this one.
    let _ = std::fs::remove_file(&result);
    let status = Command::new(&args.python)
        .arg(&args.script)
        .arg("--input")
        .arg(header_path)
        .status()
        .with_context(|| format!("starting {}", args.python))?;
    if !status.success() {
        bail!("the Python reference failed ({status})");
    }
    let text = std::fs::read_to_string(&result).context("reading python_result.json")?;
    serde_json::from_str(&text).context("parsing python_result.json")
}

fn min_f64(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn median_f64(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN)
}

/// The 1, 5 and 15-minute load averages (`/proc/loadavg`), to judge how busy the machine was.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Whether two LightGBM text models hold the same trees (the `Tree=` blocks, byte for byte).
fn same_trees(a: &str, b: &str) -> bool {
    fn trees(text: &str) -> Option<&str> {
        let start = text.find("\nTree=")?;
        let end = text.find("end of trees")?;
        text.get(start..end)
    }
    matches!((trees(a), trees(b)), (Some(x), Some(y)) if x == y)
}

#[allow(clippy::too_many_arguments)]
fn render(
    args: &TrainArgs,
    set: &trainset::TrainingSet,
    windows: &trainset::SplitWindows,
    rows: &[ModelRow],
    auc_delta: f64,
    time_ratio: f64,
    identical_trees: bool,
    raw_diff: f64,
    positive_weight: f64,
    failures: &[String],
) -> String {
    use std::fmt::Write;
    let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.4}"));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Training benchmark: Vigil vs Python LightGBM\n\nSet `{}` ({}): {} rows × {} features, \
         {} positives. Time split {}/{}/rest with a gap of {} ms (label delay): train {} rows, \
         validation {} rows, test {} rows ({} rows dropped in gaps). Fraud-row weight {:.4}.\n",
        set.name(),
        args.trainset.display(),
        set.len(),
        set.n_features(),
        set.positives(),
        args.train_fraction,
        args.validation_fraction,
        windows.gap_ms,
        windows.train.rows,
        windows.validation.rows,
        windows.test.rows,
        windows.gap_rows,
        positive_weight,
    );
    let _ = writeln!(
        s,
        "| model | engine | trees | train s | test ROC-AUC | test AP | recall@1% FPR | recall@0.1% FPR |\n|---|---|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {} | {} | {} | {} |",
            r.model,
            r.engine,
            r.trees.map_or("—".into(), |t| t.to_string()),
            r.train_seconds,
            opt(r.test.roc_auc),
            opt(r.test.average_precision),
            opt(r.test.recall_at_1pct_fpr),
            opt(r.test.recall_at_0_1pct_fpr),
        );
    }
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    let _ = writeln!(
        s,
        "\n- ΔAUC (Vigil − Python) = {auc_delta:+.5} (target |Δ| ≤ {}): {}\n\
         - training time Vigil / Python = {time_ratio:.3} (target ≤ {}): {}\n\
         - identical trees: {}; max |raw score diff| on test = {raw_diff:.3e}\n\
         - train s = Dataset construction + boosting with early stopping (both sides); metrics by `model::metrics` on raw scores\n",
        args.max_auc_delta,
        verdict(auc_delta.abs() <= args.max_auc_delta),
        args.max_time_ratio,
        verdict(time_ratio <= args.max_time_ratio),
        if identical_trees { "yes" } else { "no" },
    );
    if !failures.is_empty() {
        let _ = writeln!(s, "**FAILED**: {}\n", failures.join("; "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::same_trees;

    #[test]
    fn same_trees_compares_only_tree_blocks() {
        let a = "tree\nversion=v4\nnum_class=1\n\nTree=0\nnum_leaves=2\n\nend of trees\n\nparameters:\n[seed: 1]\n";
        let b = "tree\nversion=v4\nother header\n\nTree=0\nnum_leaves=2\n\nend of trees\n\nparameters:\n[seed: 2]\n";
        let c = "tree\n\nTree=0\nnum_leaves=3\n\nend of trees\n";
        assert!(same_trees(a, b));
        assert!(!same_trees(a, c));
        assert!(!same_trees("", ""));
    }
}
