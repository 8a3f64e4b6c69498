//! Parity with scipy and Evidently on the values they computed themselves
//! (`tests/fixtures/scipy.json`, written by `scripts/bench/drift_reference.py fixtures`).

use drift::ks::{Method, ks_2samp_sorted};
use drift::measures::{chi_square, jensen_shannon, wasserstein_sorted};
use drift::{Kind, Policy, Sample, StatTest};
use serde_json::Value;

fn fixtures() -> Value {
    let text = include_str!("../fixtures/scipy.json");
    serde_json::from_str(text).expect("fixture JSON")
}

/// Numbers of a JSON array; `null` is a missing value (NaN).
fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn sorted(v: &Value) -> Vec<f64> {
    let mut a = floats(v);
    a.sort_unstable_by(f64::total_cmp);
    a
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    if want == 0.0 {
        got.abs() < 1e-300 || got == 0.0
    } else {
        ((got - want) / want).abs() <= rel
    }
}

#[test]
fn ks_statistic_and_pvalue_equal_scipys() {
    let doc = fixtures();
    let cases = doc["ks"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let (mut exact, mut asymptotic) = (0, 0);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let (a, b) = (sorted(&c["a"]), sorted(&c["b"]));
        let r = ks_2samp_sorted(&a, &b).unwrap();
        assert!(
            (r.statistic - f(&c["statistic"])).abs() <= 1e-12,
            "{name}: statistic {} against scipy's {}",
            r.statistic,
            f(&c["statistic"])
        );
        assert!(
            close(r.pvalue, f(&c["pvalue"]), 1e-6),
            "{name} ({:?}): p-value {} against scipy's {}",
            r.method,
            r.pvalue,
            f(&c["pvalue"])
        );
        assert_eq!(
            r.method == Method::Exact,
            name.starts_with("exact"),
            "{name}"
        );
        match r.method {
            Method::Exact => exact += 1,
            Method::Asymptotic => asymptotic += 1,
        }
    }
    assert!(exact >= 4 && asymptotic >= 4);
}

#[test]
fn wasserstein_equals_scipys() {
    for c in fixtures()["ks"].as_array().unwrap() {
        let w = wasserstein_sorted(&sorted(&c["a"]), &sorted(&c["b"]));
        let want = f(&c["wasserstein"]);
        assert!(close(w, want, 1e-9), "{}: {w} against {want}", c["name"]);
    }
}

#[test]
fn chi_square_equals_scipys() {
    for c in fixtures()["chisquare"].as_array().unwrap() {
        let r = chi_square(&floats(&c["observed"]), &floats(&c["expected"])).unwrap();
        assert!(close(r.statistic, f(&c["statistic"]), 1e-9), "{r:?} {c}");
        assert!(
            close(r.pvalue, f(&c["pvalue"]), 1e-9),
            "{} against {}",
            r.pvalue,
            c["pvalue"]
        );
    }
}

#[test]
fn jensen_shannon_equals_scipys() {
    for c in fixtures()["jensenshannon"].as_array().unwrap() {
        let d = jensen_shannon(&floats(&c["p"]), &floats(&c["q"]));
        assert!(
            close(d, f(&c["distance"]), 1e-9),
            "{d} against {}",
            c["distance"]
        );
    }
}

fn evidently_name(t: StatTest) -> &'static str {
    match t {
        StatTest::Ks => "ks",
        StatTest::ChiSquare => "chisquare",
        StatTest::Z => "z",
        StatTest::WassersteinNormed => "wasserstein",
        StatTest::JensenShannon => "jensenshannon",
        StatTest::PsiPooledBins => "psi",
        other => panic!("{other:?} is not one of Evidently's defaults"),
    }
}

/// Per column: the same test, the same score, the same verdict; per scenario the same
/// dataset verdict — on no drift, mean shift, scale change, category shift and NaN
/// increase, each with a reference below and above Evidently's 1 000-row boundary.
#[test]
fn the_evidently_policy_chooses_scores_and_decides_like_evidently() {
    let doc = fixtures();
    let scenarios = doc["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 10);
    let mut tests_seen = std::collections::BTreeSet::new();
    for s in scenarios {
        let name = s["scenario"].as_str().unwrap();
        let mut verdicts = Vec::new();
        for c in s["columns"].as_array().unwrap() {
            let col = c["name"].as_str().unwrap();
            let kind = match c["kind"].as_str().unwrap() {
                "num" => Kind::Numeric,
                _ => Kind::Categorical,
            };
            let r = Sample::new(&floats(&c["reference"]));
            let cur = Sample::new(&floats(&c["current"]));
            let d = Policy::Evidently.column(kind, &r, &cur).unwrap();
            let e = &c["evidently"];
            assert_eq!(
                evidently_name(d.test),
                e["test"].as_str().unwrap(),
                "{name}/{col}"
            );
            let rel = if d.test.is_hypothesis_test() {
                1e-6
            } else {
                1e-9
            };
            assert!(
                close(d.score, f(&e["score"]), rel) || (d.score - f(&e["score"])).abs() < 1e-15,
                "{name}/{col} {:?}: {} against Evidently's {}",
                d.test,
                d.score,
                e["score"]
            );
            assert_eq!(d.threshold, f(&e["threshold"]), "{name}/{col}");
            assert_eq!(d.drifted, e["drifted"].as_bool().unwrap(), "{name}/{col}");
            tests_seen.insert(evidently_name(d.test));
            // Evidently's PSI (its binning, its zero fill), asked for by name.
            let psi = StatTest::PsiPooledBins.score(kind, &r, &cur).unwrap();
            assert!(
                close(psi, f(&e["psi"]), 1e-9),
                "{name}/{col}: PSI {psi} against Evidently's {}",
                e["psi"]
            );
            verdicts.push(d);
        }
        let dataset = drift::policy::dataset_drift(&verdicts, drift::policy::DEFAULT_DATASET_SHARE);
        assert_eq!(
            dataset.drifted,
            s["dataset_drift"].as_bool().unwrap(),
            "{name}"
        );
    }
    // Every one of Evidently's five default tests was exercised.
    assert_eq!(tests_seen.len(), 5, "{tests_seen:?}");
}
