//! Training reports: a directory with `report.md`, `model_card.md` and PNG plots.
//!
//! Every training run ends with a human-readable record of what was trained, on which data,
//! how it compares with the model in production and why it may (not) be promoted. This crate
//! turns plain data ([`ReportInput`]) into that record; it knows nothing about models,
//! features or the registry, so the trainer (or a notebook-like tool, or a test) decides what
//! to put in and this crate only lays it out.
//!
//! Modules:
//! - [`input`]: the plain-data input types, documented field by field;
//! - `font`: loads the TTF used for plot text and registers it with `plotters`;
//! - `plot`: one function per PNG (ROC, PR, calibration, score distribution, importance);
//! - `markdown`: `report.md` and the model card;
//! - `format`: number formatting shared by the Markdown tables.
//!
//! Plots are drawn with `plotters`' bitmap backend and its pure-Rust `ab_glyph` text
//! renderer, so no fontconfig/freetype is needed; the font file is read at runtime from
//! [`ReportOptions::font_path`] (by default DejaVu Sans from the Debian package
//! `fonts-dejavu-core`).
//!
//! Rendering is CPU-bound and synchronous (a few hundred milliseconds for all plots): call
//! [`write_report`] from a blocking thread (`tokio::task::spawn_blocking`) in async code.
//!
//! Architecture invariant: this crate depends on no other Vigil crate.

mod error;
mod font;
mod format;
pub mod input;
mod markdown;
mod plot;

use std::path::{Path, PathBuf};

pub use crate::error::ReportError;
pub use crate::format::{MetricDirection, format_delta, format_sig, metric_direction};
pub use crate::input::{
    CalibrationPoint, CalibrationSeries, Curve, DataSummary, FeatureImportance, ModelCard,
    ModelColumn, ModelRole, ReportInput, ScoreHistogram, SplitSummary, ThresholdPolicy,
};

/// Font used for plot text when [`ReportOptions::font_path`] is not changed.
pub const DEFAULT_FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Debian package that provides [`DEFAULT_FONT_PATH`].
pub const DEFAULT_FONT_PACKAGE: &str = "fonts-dejavu-core";

/// How the report is rendered (as opposed to what it says, which is [`ReportInput`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// TrueType/OpenType font used for all plot text. Read once per process and path.
    pub font_path: PathBuf,
    /// Width and height in pixels of every PNG.
    pub plot_size: (u32, u32),
    /// How many features the importance plot shows (largest first).
    pub top_features: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            font_path: PathBuf::from(DEFAULT_FONT_PATH),
            plot_size: (960, 640),
            top_features: 20,
        }
    }
}

/// The plots a report can contain; each one is a PNG with a fixed file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlotKind {
    /// ROC curves with the chance diagonal: `roc.png`.
    Roc,
    /// Precision–recall curves with the prevalence baseline: `pr.png`.
    PrecisionRecall,
    /// Reliability diagram with the y = x line: `calibration.png`.
    Calibration,
    /// Score histogram by class, log y-axis: `score_distribution.png`.
    ScoreDistribution,
    /// Horizontal bars of the top features: `feature_importance.png`.
    FeatureImportance,
}

impl PlotKind {
    /// All plot kinds, in the order they appear in `report.md`.
    pub const ALL: [PlotKind; 5] = [
        PlotKind::Roc,
        PlotKind::PrecisionRecall,
        PlotKind::Calibration,
        PlotKind::ScoreDistribution,
        PlotKind::FeatureImportance,
    ];

    /// File name of the PNG inside the report directory.
    pub fn file_name(self) -> &'static str {
        match self {
            PlotKind::Roc => "roc.png",
            PlotKind::PrecisionRecall => "pr.png",
            PlotKind::Calibration => "calibration.png",
            PlotKind::ScoreDistribution => "score_distribution.png",
            PlotKind::FeatureImportance => "feature_importance.png",
        }
    }

    /// Human title, used as plot caption and Markdown image alt text.
    pub fn title(self) -> &'static str {
        match self {
            PlotKind::Roc => "ROC curve",
            PlotKind::PrecisionRecall => "Precision–recall curve",
            PlotKind::Calibration => "Calibration (reliability diagram)",
            PlotKind::ScoreDistribution => "Score distribution by class",
            PlotKind::FeatureImportance => "Feature importance",
        }
    }
}

/// One PNG written by [`write_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotFile {
    /// Which plot this is.
    pub kind: PlotKind,
    /// Full path of the PNG.
    pub path: PathBuf,
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// `<dir>/report.md`.
    pub report_md: PathBuf,
    /// `<dir>/model_card.md`.
    pub model_card_md: PathBuf,
    /// The PNGs, in [`PlotKind::ALL`] order. A plot whose input is empty (no curves, no
    /// calibration series, no histogram, no importances) is not drawn and not listed; the
    /// Markdown says so instead.
    pub plots: Vec<PlotFile>,
}

impl ReportFiles {
    /// Path of the given plot, if it was drawn.
    pub fn plot(&self, kind: PlotKind) -> Option<&Path> {
        self.plots
            .iter()
            .find(|p| p.kind == kind)
            .map(|p| p.path.as_path())
    }
}

/// Writes `report.md`, `model_card.md` and the PNG plots into `dir` (created if missing;
/// existing files with the same names are overwritten).
///
/// The font is loaded first, so a missing font fails before anything is written.
pub fn write_report(
    dir: &Path,
    input: &ReportInput,
    opts: &ReportOptions,
) -> Result<ReportFiles, ReportError> {
    input.validate()?;
    if opts.plot_size.0 < 200 || opts.plot_size.1 < 150 {
        return Err(ReportError::InvalidInput(format!(
            "plot size {}x{} is too small (minimum 200x150)",
            opts.plot_size.0, opts.plot_size.1
        )));
    }
    let family = font::load(&opts.font_path)?;
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;

    let canvas = plot::Canvas {
        size: opts.plot_size,
        family,
    };
    let mut plots = Vec::new();
    for kind in PlotKind::ALL {
        let path = dir.join(kind.file_name());
        if plot::draw(kind, &path, &canvas, input, opts)? {
            plots.push(PlotFile { kind, path });
        }
    }

    let drawn: Vec<PlotKind> = plots.iter().map(|p| p.kind).collect();
    let report_md = dir.join("report.md");
    write_file(&report_md, &markdown::report(input, &drawn))?;
    let model_card_md = dir.join("model_card.md");
    write_file(&model_card_md, &markdown::model_card_file(input))?;

    Ok(ReportFiles {
        report_md,
        model_card_md,
        plots,
    })
}

fn write_file(path: &Path, contents: &str) -> Result<(), ReportError> {
    std::fs::write(path, contents).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}
