#!/usr/bin/env python3
"""The Python LightGBM reference run of `vigil-bench train`.

Reads the header written by `vigil-bench train` (`lightgbm_input.json`: the exact LightGBM
parameters Vigil trains with, the fraud-row weight, and the train / validation / test matrices
as raw little-endian f64 + u8 labels), trains with the standard Python API —

    lgb.train(params, lgb.Dataset(X, y, weight=w), valid_sets=[valid],
              callbacks=[lgb.early_stopping(rounds)])

— and writes next to the header:

* `python_test_raw.f64`: raw scores (log-odds) of the test window at the best iteration;
* `python_model.txt`:    the model (best iteration), to compare trees with Vigil's;
* `python_result.json`:  versions, wall-clock training time (Dataset construction + train,
  as on the Rust side; reading the files is excluded), best iteration.

Metrics are NOT computed here: `vigil-bench` computes them for both engines with
`model::metrics`, so one implementation measures both.

Requires lightgbm==4.7.0 (the version vendored by the `lightgbm3` crate) and numpy.
"""

import argparse
import json
import os
import platform
import sys
import time

import lightgbm as lgb
import numpy as np

FORMAT = "vigil-bench-matrices/1"


def load_window(base, spec, n_features):
    x = np.fromfile(os.path.join(base, spec["x"]), dtype="<f8")
    y = np.fromfile(os.path.join(base, spec["y"]), dtype=np.uint8)
    rows = int(spec["rows"])
    if x.size != rows * n_features or y.size != rows:
        sys.exit(f"{spec['x']}: expected {rows} x {n_features} values and {rows} labels, "
                 f"found {x.size} and {y.size}")
    return np.ascontiguousarray(x.reshape(rows, n_features)), y


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True, help="lightgbm_input.json written by vigil-bench")
    args = ap.parse_args()

    with open(args.input) as f:
        header = json.load(f)
    if header.get("format") != FORMAT:
        sys.exit(f"{args.input}: format {header.get('format')!r}, expected {FORMAT!r}")
    if lgb.__version__ != "4.7.0":
        print(f"warning: lightgbm {lgb.__version__}, the Rust side vendors 4.7.0", file=sys.stderr)
    base = os.path.dirname(os.path.abspath(args.input))
    nf = int(header["n_features"])
    names = list(header["feature_names"])
    x_train, y_train = load_window(base, header["windows"]["train"], nf)
    x_valid, y_valid = load_window(base, header["windows"]["validation"], nf)
    x_test, _ = load_window(base, header["windows"]["test"], nf)

    # The exact parameters of the Rust side. Early stopping and the iteration count are
    # given the Python way (callback, num_boost_round) with the same values.
    params = dict(header["params"])
    rounds = int(params.pop("early_stopping_rounds", 0))
    num_boost_round = int(params.pop("num_iterations"))
    # Same weights as learn::gbdt (f32: fraud rows weigh `positive_weight`, others 1).
    weight = np.where(y_train == 1, np.float32(header["positive_weight"]), np.float32(1.0))
    weight = weight.astype(np.float32)

    started = time.perf_counter()
    dtrain = lgb.Dataset(x_train, label=y_train.astype(np.float32), weight=weight,
                         feature_name=names, free_raw_data=False)
    dvalid = lgb.Dataset(x_valid, label=y_valid.astype(np.float32), reference=dtrain,
                         free_raw_data=False)
    callbacks = [lgb.early_stopping(rounds, verbose=False)] if rounds > 0 else []
    booster = lgb.train(params, dtrain, num_boost_round=num_boost_round,
                        valid_sets=[dvalid], valid_names=["validation"], callbacks=callbacks)
    train_seconds = time.perf_counter() - started

    best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    best_score = None
    if booster.best_score.get("validation"):
        best_score = float(booster.best_score["validation"].get(params.get("metric"), float("nan")))
    raw = booster.predict(x_test, raw_score=True, num_iteration=best)
    raw_file, model_file = "python_test_raw.f64", "python_model.txt"
    np.asarray(raw, dtype="<f8").tofile(os.path.join(base, raw_file))
    booster.save_model(os.path.join(base, model_file), num_iteration=best)

    result = {
        "lightgbm_version": lgb.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "train_seconds": train_seconds,
        "best_iteration": best,
        "trees_trained": booster.current_iteration(),
        "best_validation_score": best_score,
        "test_rows": int(raw.shape[0]),
        "raw_scores_file": raw_file,
        "model_file": model_file,
    }
    with open(os.path.join(base, "python_result.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"python lightgbm {lgb.__version__}: {best} trees (of {booster.current_iteration()} "
          f"trained) in {train_seconds:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
