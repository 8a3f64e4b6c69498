"""Reference values for Vigil's drift statistics, computed by scipy and Evidently.

    python drift_reference.py fixtures OUT.json   # parity fixtures for crates/drift/tests
    python drift_reference.py bench DIR           # 30 features x 100 k rows, timed in Evidently

`fixtures` writes samples (rounded to 4 decimals, so that both sides read the same
doubles, and so that there are ties) with what scipy's ks_2samp, chisquare,
wasserstein_distance and spatial.distance.jensenshannon return on them, and five Evidently
scenarios (no drift, mean shift, scale change, category shift, NaN increase), each with a
small (500-row) and a large (2 000-row) reference, with Evidently's own choice of test,
score and verdict per column, and its PSI. `bench` writes the benchmark's data as raw little-endian
f64 files and times Evidently's DataDriftTable on it.

Needs scipy, numpy, pandas<3 and evidently (scripts/bench-drift.sh installs them in a venv).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance


def r4(a):
    return [round(float(v), 4) for v in a]


def ks_cases(rng):
    cases = []
    specs = [
        # (name, n1, n2, shift, scale, decimals)
        ("exact_equal_sizes", 200, 200, 0.3, 1.0, 4),
        ("exact_unequal", 300, 450, 0.2, 1.1, 4),
        ("exact_ties", 800, 1000, 0.05, 1.0, 1),
        ("exact_no_drift", 1000, 700, 0.0, 1.0, 4),
        ("exact_strong", 50, 80, 1.5, 1.0, 4),
        ("asymp_large_vs_small", 12000, 500, 0.1, 1.0, 4),
        ("asymp_large_no_drift", 10400, 10200, 0.0, 1.0, 4),
        ("asymp_large_shift", 10200, 10100, 0.1, 1.0, 4),
        ("asymp_large_vs_tiny", 10001, 30, 0.4, 1.0, 4),
        ("asymp_large_vs_mid", 10500, 130, 0.0, 1.0, 4),
    ]
    for name, n1, n2, shift, scale, dec in specs:
        a = np.round(rng.normal(0, 1, n1), dec)
        b = np.round(rng.normal(shift, scale, n2), dec)
        a, b = r4(a), r4(b)
        r = stats.ks_2samp(a, b)
        cases.append({
            "name": name, "a": a, "b": b,
            "statistic": float(r.statistic), "pvalue": float(r.pvalue),
            "wasserstein": float(stats.wasserstein_distance(a, b)),
        })
    return cases


def chi_cases(rng):
    cases = []
    for k, n, tilt in [(2, 100, 0.0), (5, 1000, 0.05), (12, 5000, 0.0), (30, 20000, 0.02), (4, 40, 0.3)]:
        p = rng.dirichlet(np.ones(k) * 3)
        q = np.abs(p + rng.normal(0, tilt, k)) + 1e-3
        q /= q.sum()
        obs = rng.multinomial(n, q).astype(float)
        exp = p * n
        r = stats.chisquare(obs, exp)
        cases.append({"observed": obs.tolist(), "expected": exp.tolist(),
                      "statistic": float(r.statistic), "pvalue": float(r.pvalue)})
    return cases


def js_cases(rng):
    cases = []
    for k in [2, 7, 30]:
        p = rng.random(k)
        q = rng.random(k)
        q[0] = 0.0  # an empty bin on one side
        cases.append({"p": p.tolist(), "q": q.tolist(), "distance": float(distance.jensenshannon(p, q))})
    return cases


def scenario_columns(rng, n_ref, n_cur):
    """Five scenarios, each a dict column -> (kind, reference, current)."""
    def base(n):
        return {
            "amount": ("num", np.round(rng.lognormal(3, 1, n), 2)),
            "score": ("num", np.round(rng.normal(0, 1, n), 4)),
            "hour": ("num", rng.integers(0, 24, n).astype(float)),
            "channel": ("cat", rng.choice([0.0, 1.0, 2.0, 3.0], n, p=[0.5, 0.3, 0.15, 0.05])),
            "is_foreign": ("cat", rng.choice([0.0, 1.0], n, p=[0.9, 0.1])),
            "few_levels": ("num", rng.choice([1.0, 2.0, 3.0, 4.0], n, p=[0.4, 0.3, 0.2, 0.1])),
        }
    out = {}
    ref = base(n_ref)
    out["no_drift"] = (ref, base(n_cur))
    cur = base(n_cur)
    cur["amount"] = ("num", np.round(cur["amount"][1] * 1.6, 2))
    cur["score"] = ("num", np.round(cur["score"][1] + 0.4, 4))
    out["mean_shift"] = (ref, cur)
    cur = base(n_cur)
    cur["score"] = ("num", np.round(cur["score"][1] * 1.8, 4))
    cur["hour"] = ("num", np.clip(np.round(12 + (cur["hour"][1] - 12) * 0.4), 0, 23))
    out["scale_change"] = (ref, cur)
    cur = base(n_cur)
    cur["channel"] = ("cat", rng.choice([0.0, 1.0, 2.0, 3.0], n_cur, p=[0.25, 0.25, 0.25, 0.25]))
    cur["is_foreign"] = ("cat", rng.choice([0.0, 1.0], n_cur, p=[0.7, 0.3]))
    cur["few_levels"] = ("num", rng.choice([1.0, 2.0, 3.0, 4.0], n_cur, p=[0.1, 0.2, 0.3, 0.4]))
    out["category_shift"] = (ref, cur)
    cur = base(n_cur)
    for c in ["amount", "score", "hour"]:
        v = cur[c][1].copy()
        v[rng.random(n_cur) < 0.3] = np.nan
        cur[c] = ("num", v)
    out["nan_increase"] = (ref, cur)
    return out


def evidently_column(kind, ref, cur):
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    ct = ColumnType.Numerical if kind == "num" else ColumnType.Categorical
    r = pd.Series(ref).replace([-np.inf, np.inf], np.nan).dropna()
    c = pd.Series(cur).replace([-np.inf, np.inf], np.nan).dropna()
    from evidently.legacy.calculations.stattests.psi import psi_stat_test

    test = get_stattest(r, c, ct, None)
    result = test(r, c, ct, None)
    psi = psi_stat_test(r, c, ct, None)  # never a default, so asked for by name
    return {"test": test.name, "score": float(result.drift_score), "drifted": bool(result.drifted),
            "threshold": float(result.actual_threshold), "psi": float(psi.drift_score)}


def scenario_cases(rng):
    cases = []
    for size_name, n_ref in [("small", 500), ("large", 1200)]:
        for scen, (ref, cur) in scenario_columns(rng, n_ref, 1000).items():
            cols = []
            for name in ref:
                kind = ref[name][0]
                rv, cv = r4(ref[name][1]), r4(cur[name][1])
                rv = [None if np.isnan(v) else v for v in rv]
                cv = [None if np.isnan(v) else v for v in cv]
                e = evidently_column(kind, np.array([np.nan if v is None else v for v in rv]),
                                     np.array([np.nan if v is None else v for v in cv]))
                cols.append({"name": name, "kind": kind, "reference": rv, "current": cv, "evidently": e})
            drifted = sum(c["evidently"]["drifted"] for c in cols)
            cases.append({"scenario": f"{scen}_{size_name}_reference", "columns": cols,
                          "dataset_drift": bool(drifted / len(cols) >= 0.5)})
    return cases


def fixtures(out):
    import scipy
    import evidently
    rng = np.random.default_rng(20261203)
    doc = {
        "generated_by": f"scripts/bench/drift_reference.py; scipy {scipy.__version__}, "
                        f"evidently {evidently.__version__}, numpy {np.__version__}",
        "ks": ks_cases(rng),
        "chisquare": chi_cases(rng),
        "jensenshannon": js_cases(rng),
        "scenarios": scenario_cases(rng),
    }
    Path(out).write_text(json.dumps(doc, separators=(",", ":")))


def bench(directory, features=30, rows=100_000):
    from evidently.legacy.metrics import DataDriftTable
    from evidently.legacy.report import Report
    from evidently.legacy.pipeline.column_mapping import ColumnMapping

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    ref, cur = {}, {}
    kinds = []
    for i in range(features):
        name = f"f{i:02d}"
        if i % 5 == 4:
            kinds.append("cat")
            k = 3 + i % 7
            p = rng.dirichlet(np.ones(k) * 2)
            q = p if i % 2 else rng.dirichlet(np.ones(k) * 2)
            ref[name] = rng.choice(np.arange(k, dtype=float), rows, p=p)
            cur[name] = rng.choice(np.arange(k, dtype=float), rows, p=q)
        else:
            kinds.append("num")
            shift = 0.0 if i % 3 else 0.3
            ref[name] = np.round(rng.normal(0, 1, rows), 4)
            cur[name] = np.round(rng.normal(shift, 1, rows), 4)
    for name in ref:
        ref[name].astype("<f8").tofile(d / f"ref_{name}.f64")
        cur[name].astype("<f8").tofile(d / f"cur_{name}.f64")
    (d / "columns.json").write_text(json.dumps([{"name": n, "kind": k} for n, k in zip(ref, kinds)]))
    rdf, cdf = pd.DataFrame(ref), pd.DataFrame(cur)
    mapping = ColumnMapping(numerical_features=[n for n, k in zip(ref, kinds) if k == "num"],
                            categorical_features=[n for n, k in zip(ref, kinds) if k == "cat"])
    times = []
    result = None
    for _ in range(3):
        report = Report(metrics=[DataDriftTable()])
        t0 = time.perf_counter()
        report.run(reference_data=rdf, current_data=cdf, column_mapping=mapping)
        result = report.as_dict()
        times.append(time.perf_counter() - t0)
    cols = result["metrics"][0]["result"]["drift_by_columns"]
    verdicts = {n: {"test": c["stattest_name"], "score": c["drift_score"], "drifted": c["drift_detected"]}
                for n, c in cols.items()}
    (d / "evidently.json").write_text(json.dumps({"seconds": times, "columns": verdicts}))
    print(json.dumps({"evidently_seconds_best": min(times), "evidently_seconds": times}))


if __name__ == "__main__":
    if sys.argv[1] == "fixtures":
        fixtures(sys.argv[2])
    elif sys.argv[1] == "bench":
        bench(sys.argv[2])
    else:
        sys.exit(f"unknown mode {sys.argv[1]!r}")
