//! `vigil-bench drift`: a drift report of many columns (30 × 100 k against 100 k in
//! `scripts/bench-drift.sh`) with the `drift` crate, timed, and compared column by column
//! with Evidently's DataDriftTable on the same data (which `drift_reference.py bench` wrote
//! and timed in the same run).

use crate::stats::{median, repeated};
use anyhow::{Context, bail};
use clap::Args;
use drift::{ColumnSpec, Kind, Policy, Reference};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub(crate) struct DriftArgs {
    /// Directory written by `drift_reference.py bench`: columns.json, ref_*.f64, cur_*.f64,
    /// evidently.json.
    #[arg(long)]
    data: PathBuf,
    /// Timed report runs (after one untimed).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// The report-time target, in milliseconds (the Evidently-policy report must meet it).
    #[arg(long, default_value_t = 100.0)]
    target_ms: f64,
    /// Where the JSON results go.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct Column {
    name: String,
    kind: String,
}

#[derive(Debug, Deserialize)]
struct EvidentlyColumn {
    test: String,
    score: f64,
    drifted: bool,
}

#[derive(Debug, Deserialize)]
struct EvidentlyRun {
    seconds: Vec<f64>,
    columns: BTreeMap<String, EvidentlyColumn>,
}

fn read_f64s(path: &Path) -> anyhow::Result<Vec<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() % 8 != 0 {
        bail!(
            "{}: {} bytes is not a whole number of f64",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

fn evidently_name(t: drift::StatTest) -> &'static str {
    use drift::StatTest::*;
    match t {
        Ks => "K-S p_value",
        ChiSquare => "chi-square p_value",
        Z => "Z-test p_value",
        WassersteinNormed => "Wasserstein distance (normed)",
        JensenShannon => "Jensen-Shannon distance",
        PsiPooledBins => "PSI",
        ChiSquareHomogeneity => "(Vigil) chi-square homogeneity",
        WassersteinRobust => "(Vigil) Wasserstein / robust scale",
        PsiReferenceDeciles => "(Vigil) PSI on reference deciles",
    }
}

pub(crate) fn run(args: &DriftArgs) -> anyhow::Result<bool> {
    let columns: Vec<Column> = serde_json::from_slice(
        &std::fs::read(args.data.join("columns.json")).context("reading columns.json")?,
    )?;
    let evidently: EvidentlyRun = serde_json::from_slice(
        &std::fs::read(args.data.join("evidently.json")).context("reading evidently.json")?,
    )?;
    let specs: Vec<ColumnSpec> = columns
        .iter()
        .map(|c| ColumnSpec {
            name: c.name.clone(),
            kind: if c.kind == "num" {
                Kind::Numeric
            } else {
                Kind::Categorical
            },
        })
        .collect();
    let mut reference_values = Vec::new();
    let mut current = Vec::new();
    for c in &columns {
        reference_values.push(read_f64s(&args.data.join(format!("ref_{}.f64", c.name)))?);
        current.push(read_f64s(&args.data.join(format!("cur_{}.f64", c.name)))?);
    }
    let rows = current.first().map_or(0, Vec::len);
    let (reference, prepare) = repeated(args.repeats, || {
        Ok(Reference::new(specs.clone(), &reference_values))
    })?;
    let share = drift::policy::DEFAULT_DATASET_SHARE;
    let (evidently_report, evidently_policy_times) = repeated(args.repeats, || {
        Ok(reference.report(&current, Policy::Evidently, share))
    })?;
    let (vigil_report, vigil_policy_times) = repeated(args.repeats, || {
        Ok(reference.report(&current, Policy::Vigil, share))
    })?;

    // Column-by-column parity with Evidently.
    let mut mismatches = Vec::new();
    for (name, verdict) in &evidently_report.columns {
        let verdict = verdict
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let Some(e) = evidently.columns.get(name) else {
            bail!("evidently.json has no column {name}");
        };
        let rel = if verdict.test.is_hypothesis_test() {
            1e-6
        } else {
            1e-9
        };
        let close = ((verdict.score - e.score) / e.score.abs().max(1e-300)).abs() <= rel
            || (verdict.score - e.score).abs() < 1e-15;
        if evidently_name(verdict.test) != e.test || !close || verdict.drifted != e.drifted {
            mismatches.push(format!(
                "{name}: Vigil {} {} {} / Evidently {} {} {}",
                evidently_name(verdict.test),
                verdict.score,
                verdict.drifted,
                e.test,
                e.score,
                e.drifted
            ));
        }
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let best = |t: &[std::time::Duration]| t.iter().min().copied().unwrap_or_default();
    let evidently_best = evidently
        .seconds
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        * 1e3;
    let report_ms = ms(median(&evidently_policy_times));
    let vigil_ms = ms(median(&vigil_policy_times));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    println!(
        "## Drift report: {} columns × {rows} rows against {rows} reference rows\n",
        columns.len()
    );
    println!("| Step | median ms | best ms |");
    println!("|---|---:|---:|");
    println!(
        "| Prepare the reference (sort, count missing; once per model) | {:.1} | {:.1} |",
        ms(median(&prepare)),
        ms(best(&prepare))
    );
    println!(
        "| Report, Evidently policy ({threads} threads) | {report_ms:.1} | {:.1} |",
        ms(best(&evidently_policy_times))
    );
    println!(
        "| Report, Vigil policy ({threads} threads) | {vigil_ms:.1} | {:.1} |",
        ms(best(&vigil_policy_times))
    );
    println!("| Evidently 0.7 DataDriftTable, same data (Python) | — | {evidently_best:.1} |");
    println!();
    println!(
        "Evidently / Vigil (Evidently policy): {:.1}×. Columns drifted: Evidently policy {} of {} (Evidently itself {}), Vigil policy {}.",
        evidently_best / report_ms,
        evidently_report.dataset.drifted_columns,
        columns.len(),
        evidently.columns.values().filter(|c| c.drifted).count(),
        vigil_report.dataset.drifted_columns,
    );
    println!(
        "Parity with Evidently (test, score, verdict per column): {} mismatches.",
        mismatches.len()
    );
    for m in &mismatches {
        println!("- {m}");
    }
    if let Some(out) = &args.out {
        let json = serde_json::json!({
            "columns": columns.len(),
            "rows": rows,
            "threads": threads,
            "prepare_ms_median": ms(median(&prepare)),
            "report_evidently_policy_ms_median": report_ms,
            "report_vigil_policy_ms_median": vigil_ms,
            "evidently_ms_best": evidently_best,
            "ratio_evidently_over_vigil": evidently_best / report_ms,
            "mismatches": mismatches,
            "target_ms": args.target_ms,
        });
        std::fs::write(out, serde_json::to_vec_pretty(&json)?)?;
    }
    let ok = mismatches.is_empty() && report_ms <= args.target_ms;
    if report_ms > args.target_ms {
        println!(
            "\nTarget missed: {report_ms:.1} ms > {} ms.",
            args.target_ms
        );
    }
    Ok(ok)
}
