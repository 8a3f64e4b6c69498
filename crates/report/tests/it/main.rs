//! Integration tests: write whole reports into temporary directories and inspect the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use report::{
    CalibrationPoint, CalibrationSeries, Curve, DataSummary, FeatureImportance, ModelCard,
    ModelColumn, ModelRole, PlotKind, ReportError, ReportInput, ReportOptions, ScoreHistogram,
    SplitSummary, ThresholdPolicy, write_report,
};

/// Deterministic uniform numbers in [0, 1) (no `rand` needed for a fixture).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 20 000 legitimate and 200 fraud scores; `skill` in (0, 1] separates the classes.
fn scores(seed: u64, skill: f64) -> Vec<(f64, bool)> {
    let mut rng = Lcg(seed);
    let mut out = Vec::new();
    for i in 0..20_200 {
        let fraud = i % 101 == 0;
        let u = rng.next();
        let s = if fraud {
            1.0 - (1.0 - u).powf(1.0 + 3.0 * skill)
        } else {
            u.powf(1.0 + 6.0 * skill)
        };
        out.push((s, fraud));
    }
    out
}

type Points = Vec<(f64, f64)>;

/// ROC and PR points by sweeping the threshold over the sorted scores.
fn roc_pr(scores: &[(f64, bool)]) -> (Points, Points) {
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = sorted.iter().filter(|s| s.1).count() as f64;
    let neg = sorted.len() as f64 - pos;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut roc = vec![(0.0, 0.0)];
    let mut pr = vec![(0.0, 1.0)];
    for (i, (_, fraud)) in sorted.iter().enumerate() {
        if *fraud {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        if i % 50 == 0 || i == sorted.len() - 1 {
            roc.push((fp / neg, tp / pos));
            pr.push((tp / pos, tp / (tp + fp)));
        }
    }
    (roc, pr)
}

fn calibration_points(scores: &[(f64, bool)], power: f64) -> Vec<CalibrationPoint> {
    let mut bins = vec![(0.0, 0u64, 0u64); 10];
    for &(s, fraud) in scores {
        let p = s.powf(power);
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += 1;
        bins[b].2 += u64::from(fraud);
    }
    bins.into_iter()
        .filter(|b| b.1 > 0)
        .map(|(sum, n, f)| CalibrationPoint {
            mean_predicted: sum / n as f64,
            fraction_positive: f as f64 / n as f64,
            count: n,
        })
        .collect()
}

fn metrics(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn sample_input() -> ReportInput {
    let candidate = scores(1, 0.9);
    let baseline = scores(2, 0.6);
    let production = scores(3, 0.75);
    let mut roc = Vec::new();
    let mut pr = Vec::new();
    for (label, s) in [
        ("candidate (gbdt)", &candidate),
        ("baseline (logistic)", &baseline),
        ("production v3", &production),
    ] {
        let (r, p) = roc_pr(s);
        roc.push(Curve {
            label: label.into(),
            points: r,
        });
        pr.push(Curve {
            label: label.into(),
            points: p,
        });
    }
    ReportInput {
        title: "Vigil fraud model — training run 2026-11-23".into(),
        model_id: "fraud-gbdt".into(),
        version: "v4".into(),
        created_at: "2026-11-23T11:52:00Z".into(),
        data: DataSummary {
            source: "lake: transactions (datagen seed 42)".into(),
            window_start: "2026-06-01".into(),
            window_end: "2026-10-24".into(),
            splits: vec![
                SplitSummary {
                    name: "train".into(),
                    start: "2026-06-01".into(),
                    end: "2026-08-31".into(),
                    rows: 900_000,
                    fraud: 9_000,
                },
                SplitSummary {
                    name: "validation".into(),
                    start: "2026-09-01".into(),
                    end: "2026-09-30".into(),
                    rows: 300_000,
                    fraud: 2_900,
                },
                SplitSummary {
                    name: "test".into(),
                    start: "2026-10-01".into(),
                    end: "2026-10-24".into(),
                    rows: 20_200,
                    fraud: 200,
                },
            ],
            label_delay: "30 days; rows younger than 30 days before window end excluded".into(),
        },
        models: vec![
            ModelColumn {
                name: "candidate (gbdt)".into(),
                role: ModelRole::Candidate,
                metrics: metrics(&[
                    ("roc_auc", 0.91234),
                    ("average_precision", 0.4567),
                    ("recall_at_1pct_fpr", 0.3333),
                    ("brier", 0.0123),
                    ("log_loss", 0.0456),
                    ("ece", 0.0031),
                ]),
            },
            ModelColumn {
                name: "baseline (logistic)".into(),
                role: ModelRole::Baseline,
                metrics: metrics(&[
                    ("roc_auc", 0.88),
                    ("average_precision", 0.31),
                    ("brier", 0.0151),
                    ("log_loss", 0.061),
                    ("ece", 0.0052),
                ]),
            },
            ModelColumn {
                name: "production v3".into(),
                role: ModelRole::Production,
                metrics: metrics(&[
                    ("roc_auc", 0.9),
                    ("average_precision", 0.42),
                    ("recall_at_1pct_fpr", 0.30),
                    ("brier", 0.0145),
                    ("log_loss", 0.05),
                    ("ece", 0.0029),
                ]),
            },
        ],
        roc,
        pr,
        prevalence: None,
        calibration: vec![
            CalibrationSeries {
                label: "before calibration".into(),
                points: calibration_points(&candidate, 0.5),
            },
            CalibrationSeries {
                label: "after calibration (isotonic)".into(),
                points: calibration_points(&candidate, 2.0),
            },
        ],
        score_histogram: Some(ScoreHistogram::from_scores(candidate.iter().copied(), 50)),
        feature_importance: (0..30)
            .map(|i| FeatureImportance {
                feature: format!("feature_{i:02}_amount_vs_card_mean_1h"),
                importance: 100.0 / (i as f64 + 1.0),
            })
            .collect(),
        importance_kind: "total gain".into(),
        thresholds: vec![
            ThresholdPolicy {
                decision: "review".into(),
                threshold: 0.4213,
                policy: "1% FPR on validation".into(),
            },
            ThresholdPolicy {
                decision: "decline".into(),
                threshold: 0.91,
                policy: "precision ≥ 90% on validation | capped at 0.1% of traffic".into(),
            },
        ],
        params: [("learning_rate", "0.05"), ("max_depth", "6"), ("seed", "42")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        card: ModelCard {
            owner: "fraud-ml team".into(),
            model_type: "gradient-boosted trees, isotonic calibration".into(),
            intended_use: "Real-time scoring of card-not-present transactions.".into(),
            out_of_scope_uses: vec!["Credit decisions".into()],
            limitations: vec!["Trained on synthetic data only.".into()],
            ethical_considerations: "No protected attributes are used as features.".into(),
        },
        warnings: vec![
            "feature `merchant_chargeback_rate_30d` correlates 0.97 with the label: possible leakage"
                .into(),
            "promotion gate `ece <= 0.003` failed".into(),
        ],
    }
}

fn opts() -> ReportOptions {
    ReportOptions::default()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks the PNG signature, walks every chunk to the final IEND and returns the IHDR size.
fn png_dimensions(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let (width, height) = (be(&bytes[16..20]), be(&bytes[20..24]));
    let mut at = 8;
    let mut last = [0u8; 4];
    while at < bytes.len() {
        let len = be(&bytes[at..at + 4]) as usize;
        last.copy_from_slice(&bytes[at + 4..at + 8]);
        at += 12 + len;
    }
    assert_eq!(at, bytes.len(), "chunks end exactly at the end of the file");
    assert_eq!(&last, b"IEND", "last chunk is IEND");
    (width, height)
}

/// Size of an all-white PNG of the same dimensions, written by the same encoder.
fn blank_png_len(dir: &Path, size: (u32, u32)) -> u64 {
    let path = dir.join("blank.png");
    let root = BitMapBackend::new(&path, size).into_drawing_area();
    root.fill(&WHITE).expect("fill");
    root.present().expect("present");
    drop(root);
    std::fs::metadata(&path).expect("blank png").len()
}

#[test]
fn writes_every_plot_as_a_non_blank_png() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("run-1");
    let opts = opts();
    let files = write_report(&dir, &sample_input(), &opts).expect("report");

    assert_eq!(files.plots.len(), PlotKind::ALL.len());
    let blank = blank_png_len(tmp.path(), opts.plot_size);
    for kind in PlotKind::ALL {
        let path = files.plot(kind).expect("plot drawn");
        assert_eq!(path, dir.join(kind.file_name()));
        let bytes = std::fs::read(path).expect("png exists");
        assert_eq!(png_dimensions(&bytes), opts.plot_size, "{kind:?}");
        assert!(
            bytes.len() as u64 > 2 * blank,
            "{kind:?} looks blank: {} bytes vs {blank} for an empty canvas",
            bytes.len()
        );
    }
    assert!(files.report_md.is_file());
    assert!(files.model_card_md.is_file());
}

#[test]
fn markdown_has_metrics_with_deltas_warnings_and_plot_links() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let files = write_report(tmp.path(), &sample_input(), &opts()).expect("report");
    let md = read(&files.report_md);

    assert!(md.starts_with("# Vigil fraud model — training run 2026-11-23\n"));
    assert!(md.contains(
        "| metric | candidate (gbdt) | baseline (logistic) | production v3 | Δ vs production v3 |"
    ));
    for row in [
        "| `roc_auc` ↑ | 0.9123 | 0.8800 | 0.9000 | +0.01234 (better) |",
        "| `average_precision` ↑ | 0.4567 | 0.3100 | 0.4200 | +0.03670 (better) |",
        "| `recall_at_1pct_fpr` ↑ | 0.3333 | — | 0.3000 | +0.03330 (better) |",
        "| `brier` ↓ | 0.01230 | 0.01510 | 0.01450 | -0.002200 (better) |",
        "| `log_loss` ↓ | 0.04560 | 0.06100 | 0.05000 | -0.004400 (better) |",
        "| `ece` ↓ | 0.003100 | 0.005200 | 0.002900 | +0.0002000 (worse) |",
    ] {
        assert!(md.contains(row), "missing row {row}\n{md}");
    }
    // Rows follow the metric order: ranking metrics, then losses.
    assert!(md.find("`roc_auc`") < md.find("`brier`"));

    // Warnings come before the metrics, as a GitHub alert.
    let warnings = md.find("## ⚠️ Warnings").expect("warnings section");
    assert!(warnings < md.find("## Metrics").expect("metrics"));
    assert!(md.contains("> [!WARNING]"));
    assert!(md.contains("> - promotion gate `ece <= 0.003` failed"));

    for kind in PlotKind::ALL {
        assert!(
            md.contains(&format!("![{}]({})", kind.title(), kind.file_name())),
            "no link to {}",
            kind.file_name()
        );
    }
    // Thresholds (pipes escaped), splits with fraud rate, parameters, embedded card.
    assert!(md.contains("| review | 0.4213 | 1% FPR on validation |"));
    assert!(md.contains("precision ≥ 90% on validation \\| capped at 0.1% of traffic"));
    assert!(md.contains("| test | 2026-10-01 | 2026-10-24 | 20200 | 200 | 0.9901 % |"));
    assert!(md.contains("| `max_depth` | `6` |"));
    assert!(md.contains("### Intended use"));
    assert!(md.contains("_Dashed line: no-skill precision = fraud rate 0.9901 %._"));

    let card = read(&files.model_card_md);
    assert!(card.starts_with("# Model card: `fraud-gbdt` version `v4`"));
    for needle in [
        "## Intended use\n\nReal-time scoring of card-not-present transactions.",
        "- **Window:** 2026-06-01 → 2026-10-24",
        "| `roc_auc` ↑ | 0.9123 | 0.8800 | 0.9000 |\n",
        "## Limitations\n\n- Trained on synthetic data only.",
        "No protected attributes are used as features.",
        "## Open warnings from training",
    ] {
        assert!(card.contains(needle), "model card lacks {needle:?}\n{card}");
    }
}

#[test]
fn no_warnings_and_no_production_model_means_no_warning_section_and_no_delta() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut input = sample_input();
    input.warnings.clear();
    input.models.truncate(2);
    let files = write_report(tmp.path(), &input, &opts()).expect("report");
    let md = read(&files.report_md);
    assert!(!md.contains("Warnings\n"), "{md}");
    assert!(!md.contains("[!WARNING]"));
    assert!(!md.contains("Δ vs"));
    assert!(md.contains("| `roc_auc` ↑ | 0.9123 | 0.8800 |\n"));
    assert!(md.contains("No production model to compare with."));
}

#[test]
fn plots_without_data_are_skipped_and_explained() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut input = sample_input();
    input.calibration.clear();
    input.score_histogram = None;
    let files = write_report(tmp.path(), &input, &opts()).expect("report");
    assert!(files.plot(PlotKind::Calibration).is_none());
    assert!(files.plot(PlotKind::ScoreDistribution).is_none());
    assert!(!tmp.path().join("calibration.png").exists());
    assert!(files.plot(PlotKind::Roc).is_some());
    let md = read(&files.report_md);
    assert!(!md.contains("(calibration.png)"));
    assert!(md.contains(
        "### Calibration (reliability diagram)\n\n_Not available: no data was supplied for this plot._"
    ));
}

#[test]
fn missing_font_is_a_clear_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("report");
    let font = PathBuf::from("/nonexistent/fonts/DejaVuSans.ttf");
    let opts = ReportOptions {
        font_path: font.clone(),
        ..opts()
    };
    let err = write_report(&dir, &sample_input(), &opts).expect_err("no font");
    assert!(matches!(&err, ReportError::FontMissing { path } if *path == font));
    let message = err.to_string();
    assert!(
        message.contains("/nonexistent/fonts/DejaVuSans.ttf"),
        "{message}"
    );
    assert!(message.contains("fonts-dejavu-core"), "{message}");
    assert!(!dir.exists());
}

#[test]
fn a_file_that_is_not_a_font_is_rejected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fake = tmp.path().join("fake.ttf");
    std::fs::write(&fake, "this is not a TrueType font, just some text").expect("write");
    let opts = ReportOptions {
        font_path: fake.clone(),
        ..opts()
    };
    let err = write_report(&tmp.path().join("r"), &sample_input(), &opts).expect_err("bad font");
    assert!(
        matches!(&err, ReportError::InvalidFont { path } if *path == fake),
        "{err}"
    );
}

#[test]
fn inconsistent_histogram_is_rejected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut input = sample_input();
    input.score_histogram = Some(ScoreHistogram {
        bin_edges: vec![0.0, 0.5, 1.0],
        fraud: vec![1, 2, 3],
        legit: vec![4, 5, 6],
    });
    let err = write_report(tmp.path(), &input, &opts()).expect_err("invalid");
    assert!(matches!(err, ReportError::InvalidInput(_)), "{err}");
}

#[test]
fn histogram_from_scores_bins_by_class() {
    let h = ScoreHistogram::from_scores(
        [
            (0.0, false),
            (0.24, false),
            (0.25, true),
            (1.0, true),
            (1.7, true),
            (f64::NAN, false),
        ],
        4,
    );
    assert_eq!(h.bin_edges, [0.0, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!(h.legit, [2, 0, 0, 0]);
    assert_eq!(h.fraud, [0, 1, 0, 2]);
}
