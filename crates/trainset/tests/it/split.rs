//! Splits: gaps respected, windows ordered and disjoint, errors named.

use trainset::{
    Fold, FoldPart, SplitError, SplitSpec, Window, WindowSummary, time_series_cv, time_split,
};

use crate::support::Lcg;

fn spec(train_fraction: f64, validation_fraction: f64, gap_ms: i64) -> SplitSpec {
    SplitSpec {
        train_fraction,
        validation_fraction,
        gap_ms,
    }
}

#[test]
fn one_event_per_ms_cuts_by_rows_and_drops_the_gaps() {
    let times: Vec<i64> = (0..1000).collect();
    let s = time_split(&times, &spec(0.7, 0.15, 10)).unwrap();
    // Last training event at 699 → validation from 709; last validation event at 849 → test
    // from 859.
    assert_eq!(s.train(), 0..700);
    assert_eq!(s.validation(), 709..850);
    assert_eq!(s.test(), 859..1000);
    assert_eq!(s.gap_rows(), 18);
    let w = s.windows();
    assert_eq!(
        w.train,
        WindowSummary {
            start_ms: 0,
            end_ms: 699,
            rows: 700
        }
    );
    assert_eq!(
        w.validation,
        WindowSummary {
            start_ms: 709,
            end_ms: 849,
            rows: 141
        }
    );
    assert_eq!(
        w.test,
        WindowSummary {
            start_ms: 859,
            end_ms: 999,
            rows: 141
        }
    );
    assert_eq!((w.gap_ms, w.gap_rows), (10, 18));
    let json = serde_json::to_value(w).unwrap();
    assert_eq!(json["validation"]["start_ms"], 709);
    assert_eq!(json["gap_rows"], 18);
}

#[test]
fn gap_zero_keeps_every_row() {
    let times = [5, 5, 5, 6, 7, 8, 9, 9, 10, 11];
    let s = time_split(&times, &spec(0.5, 0.2, 0)).unwrap();
    assert_eq!((s.train(), s.validation(), s.test()), (0..5, 5..7, 7..10));
    assert_eq!(s.gap_rows(), 0);
}

/// Checks every promise of `time_split` on arbitrary sorted times with duplicates.
#[test]
fn windows_are_ordered_disjoint_and_separated_by_the_gap() {
    let mut rng = Lcg(7);
    let mut checked = 0;
    for case in 0..300 {
        let n = 5 + rng.below(400) as usize;
        let mut t = rng.below(1_000) as i64 - 500;
        let times: Vec<i64> = (0..n)
            .map(|_| {
                t += [0, 0, 1, 3, 20][rng.below(5) as usize];
                t
            })
            .collect();
        let gap = [0, 1, 5, 30][case % 4];
        let tf = 0.3 + rng.below(40) as f64 / 100.0;
        let vf = 0.05 + rng.below(20) as f64 / 100.0;
        let Ok(s) = time_split(&times, &spec(tf, vf, gap)) else {
            continue;
        };
        checked += 1;
        let (train, validation, test) = (s.train(), s.validation(), s.test());
        assert_eq!(train.start, 0);
        assert!(!train.is_empty() && !validation.is_empty() && !test.is_empty());
        assert!(train.end <= validation.start && validation.end <= test.start);
        assert_eq!(test.end, n);
        let last_train = times[train.end - 1];
        let last_validation = times[validation.end - 1];
        assert!(
            times[validation.clone()]
                .iter()
                .all(|&t| t >= last_train + gap),
            "case {case}"
        );
        assert!(
            times[test.clone()]
                .iter()
                .all(|&t| t >= last_validation + gap),
            "case {case}"
        );
        // Only rows inside a gap are dropped.
        assert!(
            times[train.end..validation.start]
                .iter()
                .all(|&t| t < last_train + gap)
        );
        assert!(
            times[validation.end..test.start]
                .iter()
                .all(|&t| t < last_validation + gap)
        );
        assert_eq!(
            train.len() + validation.len() + test.len() + s.gap_rows(),
            n
        );
        // The cuts are at the row fractions.
        assert_eq!(train.end, (n as f64 * tf).round() as usize);
        assert_eq!(validation.end, (n as f64 * (tf + vf)).round() as usize);
    }
    assert!(checked > 200, "only {checked} cases split");
}

#[test]
fn names_the_window_that_would_be_empty() {
    let empty = |times: &[i64], s: SplitSpec| match time_split(times, &s) {
        Err(SplitError::EmptyWindow { window, .. }) => window,
        other => panic!("expected an empty window, got {other:?}"),
    };
    assert_eq!(empty(&[1], spec(0.3, 0.2, 0)), Window::Train);
    // 3 rows: train 0..2 (2.1 rounds to 2), validation cut at 2.25 → 2, nothing left.
    assert_eq!(empty(&[1, 2, 3], spec(0.7, 0.05, 0)), Window::Validation);
    // 4 rows: cuts at 2 and 3.6 → 4, no test row.
    let err = time_split(&[1, 2, 3, 4], &spec(0.5, 0.4, 0)).unwrap_err();
    assert!(
        matches!(
            err,
            SplitError::EmptyWindow {
                window: Window::Test,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("of 4 rows rounds to 0 rows"),
        "{err}"
    );
    // The gap after the training window swallows the whole validation window.
    let times: Vec<i64> = (0..100).collect();
    assert_eq!(empty(&times, spec(0.6, 0.2, 25)), Window::Validation);
    // …or the one after validation swallows the test window (0.6 + 0.3 still cuts at 90).
    let mut times: Vec<i64> = (0..90).collect();
    times.extend(100..110);
    let err = time_split(&times, &spec(0.6, 0.3, 30)).unwrap_err();
    assert_eq!(
        err,
        SplitError::EmptyWindow {
            window: Window::Test,
            reason: "its 10 nominal rows all fall within 30 ms after the last validation event"
                .into(),
        }
    );
    assert!(
        err.to_string()
            .starts_with("the test window would be empty: "),
        "{err}"
    );
}

#[test]
fn refuses_bad_specs_and_unsorted_times() {
    let times: Vec<i64> = (0..100).collect();
    for s in [
        spec(0.0, 0.2, 0),
        spec(0.8, 0.2, 0),
        spec(0.7, -0.1, 0),
        spec(f64::NAN, 0.1, 0),
        spec(0.7, 0.1, -1),
    ] {
        assert!(
            matches!(time_split(&times, &s), Err(SplitError::Invalid(_))),
            "{s:?}"
        );
    }
    let err = time_split(&[1, 3, 2, 4], &spec(0.5, 0.25, 0)).unwrap_err();
    assert_eq!(
        err,
        SplitError::NotSorted {
            row: 2,
            time_ms: 2,
            previous_ms: 3
        }
    );
}

#[test]
fn cv_folds_expand_and_evaluate_after_the_gap() {
    let mut rng = Lcg(11);
    let mut t = 0;
    let times: Vec<i64> = (0..1_000)
        .map(|_| {
            t += rng.below(4) as i64;
            t
        })
        .collect();
    let train = 100..900;
    let gap = 6;
    let folds = time_series_cv(train.clone(), &times, 4, gap).unwrap();
    assert_eq!(folds.len(), 4);
    for (k, Fold { fit, evaluate }) in folds.iter().enumerate() {
        assert_eq!(fit.start, train.start, "fold {k} fits from the start");
        assert_eq!(fit.end, train.start + 800 * (k + 1) / 5);
        assert!(!evaluate.is_empty());
        assert!(fit.end <= evaluate.start && evaluate.end <= train.end);
        assert_eq!(evaluate.end, train.start + 800 * (k + 2) / 5);
        let last_fit = times[fit.end - 1];
        assert!(
            times[evaluate.clone()].iter().all(|&t| t >= last_fit + gap),
            "fold {k}"
        );
        assert!(
            times[fit.end..evaluate.start]
                .iter()
                .all(|&t| t < last_fit + gap)
        );
        if k > 0 {
            assert!(fit.end > folds[k - 1].fit.end, "expanding");
            assert!(
                evaluate.start >= folds[k - 1].evaluate.end,
                "evaluate windows disjoint"
            );
        }
    }
    let json = serde_json::to_value(&folds[0]).unwrap();
    assert_eq!(json["fit"]["start"], 100);
}

#[test]
fn cv_names_the_fold_that_cannot_be_made() {
    let times: Vec<i64> = (0..10).collect();
    assert!(matches!(
        time_series_cv(0..10, &times, 0, 0),
        Err(SplitError::Invalid(_))
    ));
    assert!(matches!(
        time_series_cv(0..11, &times, 2, 0),
        Err(SplitError::Invalid(_))
    ));
    // 3 rows, 3 folds: 4 blocks, the first fit block is empty.
    assert!(matches!(
        time_series_cv(0..3, &times, 3, 0),
        Err(SplitError::EmptyFold {
            fold: 0,
            part: FoldPart::Fit,
            ..
        })
    ));
    // Blocks of 5 rows, 1 ms apart: last fit event at 4 ms, a 6 ms gap empties 5..10.
    let err = time_series_cv(0..10, &times, 1, 6).unwrap_err();
    assert!(matches!(
        err,
        SplitError::EmptyFold {
            fold: 0,
            part: FoldPart::Evaluate,
            ..
        }
    ));
    assert!(
        err.to_string()
            .starts_with("cross-validation fold 0 would have an empty evaluate window")
    );
    let folds = time_series_cv(0..10, &times, 1, 4).unwrap();
    assert_eq!(
        folds,
        [Fold {
            fit: 0..5,
            evaluate: 8..10
        }]
    );
}
