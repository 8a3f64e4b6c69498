//! One function per PNG, all drawn with `plotters`' bitmap backend.
//!
//! Every function receives the whole [`ReportInput`] and the font family registered by
//! `font`, and names that family explicitly for every piece of text.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::ReportError;
use crate::format::format_sig;
use crate::input::{Curve, FeatureImportance, ReportInput, ScoreHistogram};
use crate::{PlotKind, ReportOptions};

type DrawResult = Result<(), Box<dyn Error>>;

/// Size and font shared by all plots of a report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Canvas {
    pub(crate) size: (u32, u32),
    pub(crate) family: &'static str,
}

impl Canvas {
    fn font(&self, size: f64) -> TextStyle<'static> {
        (self.family, size).into_font().color(&BLACK)
    }
    fn caption(&self) -> TextStyle<'static> {
        self.font(26.0)
    }
    fn labels(&self) -> TextStyle<'static> {
        self.font(15.0)
    }
    fn axis_desc(&self) -> TextStyle<'static> {
        self.font(18.0)
    }
}

/// Tableau 10: distinguishable and readable on white.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
const FRAUD: RGBColor = RGBColor(214, 39, 40);
const LEGIT: RGBColor = RGBColor(31, 119, 180);
const GRID: RGBColor = RGBColor(232, 232, 232);
const REFERENCE: RGBColor = RGBColor(110, 110, 110);

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Draws `kind` to `path`. Returns `false` (and writes nothing) when the input has no data
/// for this plot.
pub(crate) fn draw(
    kind: PlotKind,
    path: &Path,
    canvas: &Canvas,
    input: &ReportInput,
    opts: &ReportOptions,
) -> Result<bool, ReportError> {
    let result = match kind {
        PlotKind::Roc if has_points(&input.roc) => roc(path, canvas, &input.roc),
        PlotKind::PrecisionRecall if has_points(&input.pr) => {
            pr(path, canvas, &input.pr, input.pr_baseline())
        }
        PlotKind::Calibration if input.calibration.iter().any(|s| !s.points.is_empty()) => {
            calibration(path, canvas, input)
        }
        PlotKind::ScoreDistribution => match &input.score_histogram {
            Some(h) if h.fraud.iter().chain(&h.legit).any(|&c| c > 0) => {
                score_distribution(path, canvas, h)
            }
            _ => return Ok(false),
        },
        PlotKind::FeatureImportance
            if input
                .feature_importance
                .iter()
                .any(|f| f.importance.is_finite()) =>
        {
            feature_importance(path, canvas, input, opts.top_features.max(1))
        }
        _ => return Ok(false),
    };
    result.map(|()| true).map_err(|e| ReportError::Plot {
        file: kind.file_name(),
        message: e.to_string(),
    })
}

fn has_points(curves: &[Curve]) -> bool {
    curves.iter().any(|c| c.points.iter().any(|p| finite(*p)))
}

fn finite((x, y): (f64, f64)) -> bool {
    x.is_finite() && y.is_finite()
}

/// Short tick label: `0.05`, `0.1`, `0.3` (no floating-point noise).
fn tick(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    format!("{r}")
}

fn log_tick(v: f64) -> String {
    if v >= 0.01 {
        tick(v)
    } else {
        format!("{v:.0e}")
    }
}

enum Baseline {
    Diagonal,
    Horizontal(f64),
}

fn roc(path: &Path, canvas: &Canvas, curves: &[Curve]) -> DrawResult {
    curve_plot(
        path,
        canvas,
        PlotKind::Roc.title(),
        ("False-positive rate", "True-positive rate (recall)"),
        curves,
        Some(Baseline::Diagonal),
        SeriesLabelPosition::LowerRight,
    )
}

fn pr(path: &Path, canvas: &Canvas, curves: &[Curve], prevalence: Option<f64>) -> DrawResult {
    curve_plot(
        path,
        canvas,
        PlotKind::PrecisionRecall.title(),
        ("Recall", "Precision"),
        curves,
        prevalence.map(Baseline::Horizontal),
        SeriesLabelPosition::UpperRight,
    )
}

fn curve_plot(
    path: &Path,
    canvas: &Canvas,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    curves: &[Curve],
    baseline: Option<Baseline>,
    legend: SeriesLabelPosition,
) -> DrawResult {
    let root = BitMapBackend::new(path, canvas.size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, canvas.caption())
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(75)
        .build_cartesian_2d(0f64..1f64, 0f64..1.001f64)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(canvas.labels())
        .axis_desc_style(canvas.axis_desc())
        .light_line_style(GRID)
        .max_light_lines(1)
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()?;

    let reference = REFERENCE.stroke_width(2);
    match baseline {
        Some(Baseline::Diagonal) => {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 0.0), (1.0, 1.0)],
                    8,
                    6,
                    reference,
                ))?
                .label("chance")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], reference));
        }
        Some(Baseline::Horizontal(p)) => {
            chart
                .draw_series(DashedLineSeries::new([(0.0, p), (1.0, p)], 8, 6, reference))?
                .label(format!(
                    "no skill (fraud rate {} %)",
                    format_sig(p * 100.0, 3)
                ))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], reference));
        }
        None => {}
    }
    for (i, curve) in curves.iter().enumerate() {
        let style = color(i).stroke_width(3);
        let points: Vec<(f64, f64)> = curve
            .points
            .iter()
            .copied()
            .filter(|p| finite(*p))
            .map(|(x, y)| (x.clamp(0.0, 1.0), y.clamp(0.0, 1.0)))
            .collect();
        chart
            .draw_series(LineSeries::new(points, style))?
            .label(curve.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
    }
    chart
        .configure_series_labels()
        .position(legend)
        .margin(15)
        .label_font(canvas.labels())
        .background_style(WHITE.mix(0.9))
        .border_style(REFERENCE)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Smallest "nice" upper bound ≥ `v` (fraud scores are small, so the reliability diagram
/// zooms in instead of always spanning `[0, 1]`).
fn nice_upper(v: f64) -> f64 {
    const NICE: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];
    NICE.into_iter().find(|n| *n >= v).unwrap_or(1.0)
}

fn calibration(path: &Path, canvas: &Canvas, input: &ReportInput) -> DrawResult {
    let valid = |p: &&crate::input::CalibrationPoint| {
        p.mean_predicted.is_finite() && p.fraction_positive.is_finite()
    };
    let max_value = input
        .calibration
        .iter()
        .flat_map(|s| s.points.iter().filter(valid))
        .map(|p| p.mean_predicted.max(p.fraction_positive))
        .fold(0.0f64, f64::max);
    let hi = nice_upper(max_value * 1.05);
    let max_count = input
        .calibration
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.count))
        .max()
        .unwrap_or(0)
        .max(1) as f64;

    let root = BitMapBackend::new(path, canvas.size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(PlotKind::Calibration.title(), canvas.caption())
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..hi, 0f64..hi)?;
    chart
        .configure_mesh()
        .x_desc("Mean predicted probability")
        .y_desc("Observed fraud rate")
        .label_style(canvas.labels())
        .axis_desc_style(canvas.axis_desc())
        .light_line_style(GRID)
        .max_light_lines(1)
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()?;
    let reference = REFERENCE.stroke_width(2);
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (hi, hi)],
            8,
            6,
            reference,
        ))?
        .label("perfectly calibrated")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], reference));

    for (i, series) in input.calibration.iter().enumerate() {
        let c = color(i);
        let points: Vec<_> = series
            .points
            .iter()
            .filter(valid)
            .map(|p| {
                let xy = (p.mean_predicted.min(hi), p.fraction_positive.min(hi));
                // Area ∝ count: radius ∝ √count, 3–10 px.
                let radius = 3.0 + 7.0 * (p.count as f64 / max_count).sqrt();
                (xy, radius.round() as i32)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(xy, _)| *xy),
                c.stroke_width(2),
            ))?
            .label(series.label.as_str())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new([(0, 0), (24, 0)], c.stroke_width(2))
                    + Circle::new((12, 0), 5, c.filled())
            });
        chart.draw_series(
            points
                .iter()
                .map(|(xy, r)| Circle::new(*xy, *r, c.mix(0.75).filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .margin(15)
        .label_font(canvas.labels())
        .background_style(WHITE.mix(0.9))
        .border_style(REFERENCE)
        .draw()?;
    root.present()?;
    Ok(())
}

fn score_distribution(path: &Path, canvas: &Canvas, h: &ScoreHistogram) -> DrawResult {
    let fraction = |counts: &[u64]| -> (u64, Vec<f64>) {
        let total: u64 = counts.iter().sum();
        let fr = counts
            .iter()
            .map(|&c| {
                if total == 0 {
                    0.0
                } else {
                    c as f64 / total as f64
                }
            })
            .collect();
        (total, fr)
    };
    let (n_fraud, fraud) = fraction(&h.fraud);
    let (n_legit, legit) = fraction(&h.legit);
    let positive = fraud.iter().chain(&legit).copied().filter(|f| *f > 0.0);
    let min = positive.clone().fold(1.0f64, f64::min);
    let max = positive.fold(0.0f64, f64::max);
    // One decade of head-room below the smallest bar, so it is visible.
    let lo = 10f64.powf((min.log10() - 0.5).floor()).max(1e-9);
    let hi = (max * 2.0).min(1.0).max(lo * 10.0);
    let x0 = h.bin_edges[0];
    let x1 = h.bin_edges[h.bin_edges.len() - 1];

    let root = BitMapBackend::new(path, canvas.size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(PlotKind::ScoreDistribution.title(), canvas.caption())
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(85)
        .build_cartesian_2d(x0..x1, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("Model score")
        .y_desc("Fraction of class (log scale)")
        .label_style(canvas.labels())
        .axis_desc_style(canvas.axis_desc())
        .light_line_style(GRID)
        .max_light_lines(1)
        .x_labels(11)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| log_tick(*v))
        .draw()?;

    for (label, n, fractions, c) in [
        ("legitimate", n_legit, &legit, LEGIT),
        ("fraud", n_fraud, &fraud, FRAUD),
    ] {
        chart.draw_series(
            h.bin_edges
                .windows(2)
                .zip(fractions.iter())
                .filter(|(_, f)| **f > 0.0)
                .map(|(e, f)| Rectangle::new([(e[0], lo), (e[1], *f)], c.mix(0.3).filled())),
        )?;
        // Step outline so overlapping classes stay distinguishable.
        let steps: Vec<(f64, f64)> = h
            .bin_edges
            .windows(2)
            .zip(fractions.iter())
            .flat_map(|(e, f)| {
                let y = f.max(lo);
                [(e[0], y), (e[1], y)]
            })
            .collect();
        chart
            .draw_series(LineSeries::new(steps, c.stroke_width(2)))?
            .label(format!("{label} (n = {n})"))
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 24, y + 6)], c.mix(0.3).filled())
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperMiddle)
        .margin(15)
        .label_font(canvas.labels())
        .background_style(WHITE.mix(0.9))
        .border_style(REFERENCE)
        .draw()?;
    root.present()?;
    Ok(())
}

fn feature_importance(path: &Path, canvas: &Canvas, input: &ReportInput, top: usize) -> DrawResult {
    let mut items: Vec<&FeatureImportance> = input
        .feature_importance
        .iter()
        .filter(|f| f.importance.is_finite())
        .collect();
    items.sort_by(|a, b| b.importance.abs().total_cmp(&a.importance.abs()));
    items.truncate(top);
    let n = items.len();
    let names: Vec<String> = items.iter().map(|f| shorten(&f.feature, 40)).collect();
    let values: Vec<f64> = items.iter().map(|f| f.importance).collect();

    let root = BitMapBackend::new(path, canvas.size).into_drawing_area();
    root.fill(&WHITE)?;
    let label_style = canvas.labels();
    let mut label_width = 60u32;
    for name in &names {
        label_width = label_width.max(root.estimate_text_size(name, &label_style)?.0 + 20);
    }
    let label_width = label_width.min(canvas.size.0 * 45 / 100);

    let min = values.iter().copied().fold(0.0f64, f64::min);
    let max = values.iter().copied().fold(0.0f64, f64::max);
    let span = if max > min { max - min } else { 1.0 };
    // Room for the value printed at the end of each bar.
    let x_range = (min - if min < 0.0 { 0.15 * span } else { 0.0 })..(max + 0.15 * span);
    let x_desc = if input.importance_kind.is_empty() {
        "Importance".to_owned()
    } else {
        format!("Importance ({})", input.importance_kind)
    };
    // Row 0 is drawn at the bottom, so rank r goes to row n - 1 - r.
    let name_of = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(row) | SegmentValue::Exact(row) if *row < n => {
            names[n - 1 - row].clone()
        }
        _ => String::new(),
    };

    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} (top {n})", PlotKind::FeatureImportance.title()),
            canvas.caption(),
        )
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(label_width)
        // Integer ranges are inclusive in plotters: `0..n - 1` has n rows (n ≥ 1 here).
        .build_cartesian_2d(x_range, (0usize..n - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(x_desc)
        .label_style(label_style)
        .axis_desc_style(canvas.axis_desc())
        .light_line_style(GRID)
        .max_light_lines(1)
        .y_labels(n)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&name_of)
        .draw()?;

    let bar_gap = ((canvas.size.1 as usize / (n + 2)) / 6).clamp(1, 8) as u32;
    chart.draw_series(values.iter().enumerate().map(|(rank, &v)| {
        let row = n - 1 - rank;
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(row)),
                (v, SegmentValue::Exact(row + 1)),
            ],
            color(0).filled(),
        );
        bar.set_margin(bar_gap, bar_gap, 0, 0);
        bar
    }))?;
    let value_font = canvas.font(13.0);
    chart.draw_series(values.iter().enumerate().map(|(rank, &v)| {
        let row = n - 1 - rank;
        let (anchor, offset) = if v < 0.0 {
            (HPos::Right, -0.01 * span)
        } else {
            (HPos::Left, 0.01 * span)
        };
        Text::new(
            format_sig(v, 3),
            (v + offset, SegmentValue::CenterOf(row)),
            value_font.pos(Pos::new(anchor, VPos::Center)),
        )
    }))?;
    root.present()?;
    Ok(())
}

fn shorten(name: &str, max_chars: usize) -> String {
    if name.chars().count() <= max_chars {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(max_chars - 1).collect();
        s.push('…');
        s
    }
}
