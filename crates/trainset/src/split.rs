//! Time-respecting splits: train / validation / test windows and forward-chaining
//! cross-validation folds, with a gap for the label delay. Never random.
//!
//! Why a gap: the label of a transaction at time `t` is known only at `t + label_delay`.
//! A model trained at the end of its training window cannot have seen the labels of the
//! transactions just before it, and is then used on later transactions. Evaluating it on
//! rows right after its last training row would evaluate a model that could not exist.
//! So every later window starts at least `gap_ms` after the last event of the window
//! before it; rows falling in between are dropped (and counted).
//!
//! All functions take the times of a set sorted ascending (as [`crate::TrainingSet`]
//! keeps them) and return ranges of row indices.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// How to split a set into train, validation and test windows.
///
/// The fractions are fractions of **rows**, not of time span: the two cuts are placed at
/// rows `round(n × train_fraction)` and `round(n × (train_fraction + validation_fraction))`,
/// so windows hold the intended share of the data even when traffic is uneven in time.
/// The test window gets the rest. The gaps are then taken from the start of the
/// validation and test windows, which end up smaller than their nominal fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// Share of rows before the first cut, in `(0, 1)`.
    pub train_fraction: f64,
    /// Share of rows between the two cuts, in `(0, 1)`; the two fractions sum to less than 1.
    pub validation_fraction: f64,
    /// Minimum time between the last event of a window and the first of the next one,
    /// normally the label delay. Not negative.
    pub gap_ms: i64,
}

/// One of the three windows of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The window a model is fit on.
    Train,
    /// The window for early stopping, calibration and model selection.
    Validation,
    /// The held-out window, touched once for the final report.
    Test,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Window::Train => "train",
            Window::Validation => "validation",
            Window::Test => "test",
        })
    }
}

/// The part of a cross-validation fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldPart {
    /// The rows a fold's model is fit on.
    Fit,
    /// The rows it is evaluated on.
    Evaluate,
}

impl fmt::Display for FoldPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FoldPart::Fit => "fit",
            FoldPart::Evaluate => "evaluate",
        })
    }
}

/// Why a split could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// The spec or arguments are out of range.
    #[error("invalid split: {0}")]
    Invalid(String),
    /// The times are not sorted ascending.
    #[error(
        "times are not sorted: row {row} is at {time_ms} ms, before the previous row at {previous_ms} ms"
    )]
    NotSorted {
        /// The first row out of order.
        row: usize,
        /// Its time.
        time_ms: i64,
        /// The previous row's time.
        previous_ms: i64,
    },
    /// A window would hold no rows.
    #[error("the {window} window would be empty: {reason}")]
    EmptyWindow {
        /// The window.
        window: Window,
        /// Why, with the numbers.
        reason: String,
    },
    /// A cross-validation fold would have an empty part.
    #[error("cross-validation fold {fold} would have an empty {part} window: {reason}")]
    EmptyFold {
        /// The fold, 0-based.
        fold: usize,
        /// The empty part.
        part: FoldPart,
        /// Why, with the numbers.
        reason: String,
    },
}

/// The time extent and size of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// Time of the window's first event, unix ms.
    pub start_ms: i64,
    /// Time of the window's last event (inclusive), unix ms.
    pub end_ms: i64,
    /// Rows in the window.
    pub rows: usize,
}

/// The summary of a split, for reports and model manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitWindows {
    /// The training window.
    pub train: WindowSummary,
    /// The validation window.
    pub validation: WindowSummary,
    /// The test window.
    pub test: WindowSummary,
    /// The gap applied between windows, ms.
    pub gap_ms: i64,
    /// Rows dropped because they fell in a gap.
    pub gap_rows: usize,
}

/// A train / validation / test split: three ordered, disjoint, non-empty row ranges with
/// at least `gap_ms` between the last event of one window and the first of the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splits {
    train: Range<usize>,
    validation: Range<usize>,
    test: Range<usize>,
    windows: SplitWindows,
}

impl Splits {
    /// The training rows.
    pub fn train(&self) -> Range<usize> {
        self.train.clone()
    }

    /// The validation rows.
    pub fn validation(&self) -> Range<usize> {
        self.validation.clone()
    }

    /// The test rows.
    pub fn test(&self) -> Range<usize> {
        self.test.clone()
    }

    /// The rows dropped because they fell in a gap.
    pub fn gap_rows(&self) -> usize {
        self.windows.gap_rows
    }

    /// The summary of each window (times and row counts).
    pub fn windows(&self) -> &SplitWindows {
        &self.windows
    }
}

/// One forward-chaining cross-validation fold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// The rows to fit on: from the start of the training window.
    pub fit: Range<usize>,
    /// The rows to evaluate on: after `fit`, at least the gap later.
    pub evaluate: Range<usize>,
}

fn check_sorted(times_ms: &[i64]) -> Result<(), SplitError> {
    match times_ms.windows(2).position(|w| w[1] < w[0]) {
        None => Ok(()),
        Some(i) => Err(SplitError::NotSorted {
            row: i + 1,
            time_ms: times_ms[i + 1],
            previous_ms: times_ms[i],
        }),
    }
}

fn check_gap(gap_ms: i64) -> Result<(), SplitError> {
    if gap_ms < 0 {
        return Err(SplitError::Invalid(format!(
            "gap_ms is {gap_ms}, must not be negative"
        )));
    }
    Ok(())
}

/// The first row at or after `from` (and before `to`) whose time is at least `gap_ms`
/// after the time of row `from - 1`; `to` if there is none. `from` must be > 0.
fn after_gap(times_ms: &[i64], from: usize, to: usize, gap_ms: i64) -> usize {
    let earliest = times_ms[from - 1].saturating_add(gap_ms);
    from + times_ms[from..to].partition_point(|&t| t < earliest)
}

fn summary(times_ms: &[i64], rows: &Range<usize>) -> WindowSummary {
    WindowSummary {
        start_ms: times_ms[rows.start],
        end_ms: times_ms[rows.end - 1],
        rows: rows.len(),
    }
}

/// Splits sorted times into train, validation and test windows (see [`SplitSpec`]).
///
/// Guarantees: `train.end <= validation.start`, `validation.end <= test.start`,
/// `test.end == times_ms.len()`, `train.start == 0`; every validation time is at least
/// `times_ms[train.end - 1] + gap_ms` and every test time at least
/// `times_ms[validation.end - 1] + gap_ms`; no window is empty.
pub fn time_split(times_ms: &[i64], spec: &SplitSpec) -> Result<Splits, SplitError> {
    let SplitSpec {
        train_fraction: tf,
        validation_fraction: vf,
        gap_ms,
    } = *spec;
    let in_unit = |x: f64| x.is_finite() && x > 0.0 && x < 1.0;
    if !in_unit(tf) || !in_unit(vf) || tf + vf >= 1.0 {
        return Err(SplitError::Invalid(format!(
            "train_fraction {tf} and validation_fraction {vf} must each be in (0, 1) and sum to less than 1"
        )));
    }
    check_gap(gap_ms)?;
    check_sorted(times_ms)?;
    let n = times_ms.len();
    // Rounded, not floored: 0.6 + 0.3 is 0.8999999999999999 in f64, and 100 rows × that
    // should still cut at row 90.
    let cut = |fraction: f64| ((n as f64 * fraction).round() as usize).min(n);
    let (train_end, validation_cut) = (cut(tf), cut(tf + vf));
    let too_few = |window: Window, share: &str, rows: usize| SplitError::EmptyWindow {
        window,
        reason: format!("{share} of {n} rows rounds to {rows} rows"),
    };
    if train_end == 0 {
        return Err(too_few(Window::Train, &format!("train_fraction {tf}"), 0));
    }
    if validation_cut == train_end {
        let share = format!("validation_fraction {vf}");
        return Err(too_few(Window::Validation, &share, 0));
    }
    if validation_cut == n {
        let share = format!("the test share {}", 1.0 - tf - vf);
        return Err(too_few(Window::Test, &share, 0));
    }
    let validation_start = after_gap(times_ms, train_end, validation_cut, gap_ms);
    if validation_start == validation_cut {
        return Err(SplitError::EmptyWindow {
            window: Window::Validation,
            reason: format!(
                "its {} nominal rows all fall within {gap_ms} ms after the last training event",
                validation_cut - train_end
            ),
        });
    }
    let test_start = after_gap(times_ms, validation_cut, n, gap_ms);
    if test_start == n {
        return Err(SplitError::EmptyWindow {
            window: Window::Test,
            reason: format!(
                "its {} nominal rows all fall within {gap_ms} ms after the last validation event",
                n - validation_cut
            ),
        });
    }
    let train = 0..train_end;
    let validation = validation_start..validation_cut;
    let test = test_start..n;
    let windows = SplitWindows {
        train: summary(times_ms, &train),
        validation: summary(times_ms, &validation),
        test: summary(times_ms, &test),
        gap_ms,
        gap_rows: (validation_start - train_end) + (test_start - validation_cut),
    };
    Ok(Splits {
        train,
        validation,
        test,
        windows,
    })
}

/// Forward-chaining (expanding-window) cross-validation inside `train`.
///
/// `train` is cut into `folds + 1` blocks of (nearly) equal row counts. Fold `k`
/// (0-based) fits on blocks `0..=k` and evaluates on block `k + 1`, minus the rows less
/// than `gap_ms` after the last fit event. So every fold's evaluate window lies strictly
/// after its fit window plus the gap, and fit windows grow fold by fold. Errors if a fold
/// would have an empty part (too few rows or too wide a gap), naming the fold.
pub fn time_series_cv(
    train: Range<usize>,
    times_ms: &[i64],
    folds: usize,
    gap_ms: i64,
) -> Result<Vec<Fold>, SplitError> {
    if folds == 0 {
        return Err(SplitError::Invalid("folds must be at least 1".into()));
    }
    if train.start > train.end || train.end > times_ms.len() {
        return Err(SplitError::Invalid(format!(
            "rows {train:?} are not within the {} times",
            times_ms.len()
        )));
    }
    check_gap(gap_ms)?;
    check_sorted(&times_ms[train.clone()])?;
    let blocks = folds + 1;
    let boundary = |k: usize| train.start + train.len() * k / blocks;
    (0..folds)
        .map(|k| {
            let (fit_end, evaluate_end) = (boundary(k + 1), boundary(k + 2));
            if fit_end == train.start {
                return Err(SplitError::EmptyFold {
                    fold: k,
                    part: FoldPart::Fit,
                    reason: format!("{} rows are too few for {folds} folds", train.len()),
                });
            }
            let evaluate_start = after_gap(times_ms, fit_end, evaluate_end, gap_ms);
            if evaluate_start == evaluate_end {
                return Err(SplitError::EmptyFold {
                    fold: k,
                    part: FoldPart::Evaluate,
                    reason: format!(
                        "its {} nominal rows all fall within {gap_ms} ms after the last fit event",
                        evaluate_end - fit_end
                    ),
                });
            }
            Ok(Fold {
                fit: train.start..fit_end,
                evaluate: evaluate_start..evaluate_end,
            })
        })
        .collect()
}
