#!/usr/bin/env bash
# Drift-report benchmark (issue 10): 30 features × 100 000 current rows against 100 000
# reference rows (24 numeric, 6 categorical; a third of the numeric ones shifted, half the
# categorical ones re-weighted), on all cores, release build.
#   1. scripts/bench/drift_reference.py bench: writes the data and times Evidently's
#      DataDriftTable on it (best of 3), in a venv with pinned scipy / Evidently;
#   2. vigil-bench drift: the same report with the `drift` crate (Evidently's policy and
#      Vigil's), median of 5, and each column's test, score and verdict against Evidently's.
# Exits non-zero when a column differs from Evidently or the report takes over 100 ms.
# Results go to $VIGIL_BENCH_OUT (default run/bench-drift-<date>).
source "$(dirname "$0")/lib.sh"
cd "$VIGIL_ROOT"

OUT="${VIGIL_BENCH_OUT:-$VIGIL_RUN_DIR/bench-drift-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
VENV="${VIGIL_DRIFT_VENV:-$HOME/.cache/vigil/drift-venv}"
if ! "$VENV/bin/python" -c 'import scipy, evidently, sys; sys.exit(scipy.__version__ != "1.17.1" or evidently.__version__ != "0.7.23")' 2>/dev/null; then
  log "installing scipy 1.17.1 and Evidently 0.7.23 into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet scipy==1.17.1 evidently==0.7.23 "pandas<3" numpy
fi

log "Evidently on the benchmark data (writes it to $OUT/data)"
"$VENV/bin/python" scripts/bench/drift_reference.py bench "$OUT/data" | tee "$OUT/evidently-run.json"

log "building vigil-bench (release, cached in $CARGO_TARGET_DIR)"
cargo build --release --quiet --bin vigil-bench
{
  echo "# Drift report benchmark — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); commit $(git rev-parse --short HEAD)."
  echo "Command: scripts/bench-drift.sh"
  echo
  "$CARGO_TARGET_DIR/release/vigil-bench" drift --data "$OUT/data" --out "$OUT/drift.json"
} | tee "$OUT/drift.md"
status=${PIPESTATUS[0]}
rm -rf "$OUT/data"
exit "$status"
