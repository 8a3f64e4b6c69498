#!/usr/bin/env bash
# The benchmarks behind Vigil's performance claims, end to end on this machine:
#   1. vigil-datagen: 1 000 000 transactions (seed 7) into a temporary lake;
#   2. vigil-trainer build-set: lake -> point-in-time training set;
#   3. vigil-bench train: Vigil's GBDT + logistic baseline vs Python LightGBM 4.7.0 on that set
#      (same windows, params, weights; metrics by model::metrics; fails on |dAUC| > 0.003 or
#      training time Vigil / Python > 1.5);
#   4. vigil-bench scorer: Vigil's TreeEnsemble vs LightGBM's C API (500 trees x 31 leaves):
#      single-row latency, batch throughput, parity.
# Results (Markdown + JSON, the machine, the date and every command) go to
# $VIGIL_BENCH_OUT (default run/bench-<date>). Exits non-zero if a benchmark fails its check.
# Knobs: VIGIL_BENCH_TRANSACTIONS (1000000), VIGIL_BENCH_REPEATS (training rounds, 3),
#        VIGIL_BENCH_KEEP=1 keeps the temporary lake and training set.
source "$(dirname "$0")/lib.sh"
cd "$VIGIL_ROOT"

TRANSACTIONS="${VIGIL_BENCH_TRANSACTIONS:-1000000}"
REPEATS="${VIGIL_BENCH_REPEATS:-3}"
OUT="${VIGIL_BENCH_OUT:-$VIGIL_RUN_DIR/bench-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/vigil-bench.XXXXXX")"
if [ "${VIGIL_BENCH_KEEP:-0}" = 1 ]; then
  trap 'log "kept the lake and training set in $DATA"' EXIT
else
  trap 'rm -rf "$DATA"' EXIT
fi
COMMANDS="$OUT/commands.txt"
: >"$COMMANDS"


"$VIGIL_ROOT/scripts/setup.sh"
if ! python3 -c 'import lightgbm, numpy, sys; sys.exit(lightgbm.__version__ != "4.7.0")' 2>/dev/null; then
  log "installing Python lightgbm==4.7.0 and numpy (the reference engine)"
  python3 -m pip install --quiet lightgbm==4.7.0 numpy
fi

log "building release binaries (cached in $CARGO_TARGET_DIR)"
run cargo build --release --quiet --bin vigil-datagen --bin vigil-trainer --bin vigil-bench
BIN="$CARGO_TARGET_DIR/release"

{
  echo "# Vigil benchmarks"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1); nproc: $(nproc)"
  echo "- memory: $(free -g | awk '/^Mem:/{print $2 " GiB"}')"
  echo "- kernel: $(uname -sr)"
  echo "- rustc: $(rustc --version)"
  echo "- python: $(python3 --version 2>&1), lightgbm $(python3 -c 'import lightgbm; print(lightgbm.__version__)'), numpy $(python3 -c 'import numpy; print(numpy.__version__)')"
  echo "- load average at start (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
  # Timings (LightGBM's OpenMP threads above all) mean little on a machine that is busy.
  if awk -v n="$(nproc)" '{exit !($1 > n / 2)}' /proc/loadavg; then
    echo "- **WARNING: the machine is busy (1-min load > nproc/2): timings are unreliable**"
  fi
  echo
} >"$OUT/machine.md"
cat "$OUT/machine.md" >&2

log "1/4 generating $TRANSACTIONS transactions (seed 7) into $DATA"
run "$BIN/vigil-datagen" generate --transactions "$TRANSACTIONS" --format lake --out "$DATA" --seed 7 \
  2>"$OUT/datagen.log"

log "2/4 building the training set"
run "$BIN/vigil-trainer" build-set --lake "$DATA/lake" --out "$DATA/trainset" >"$OUT/build-set.log" 2>&1

status=0
log "3/4 training benchmark: Vigil vs Python LightGBM"
run "$BIN/vigil-bench" train --trainset "$DATA/trainset/trainset.json" --python python3 \
  --script "$VIGIL_ROOT/scripts/bench/lightgbm_reference.py" --out "$OUT/train" \
  --repeats "$REPEATS" >/dev/null || status=1

log "4/4 scorer benchmark: TreeEnsemble vs LightGBM C API"
run "$BIN/vigil-bench" scorer --trees 500 --leaves 31 --features 20 --rows 100000 --seed 1 \
  --json "$OUT/scorer.json" --markdown "$OUT/scorer.md" >/dev/null || status=1

{
  cat "$OUT/machine.md"
  [ -f "$OUT/train/train.md" ] && cat "$OUT/train/train.md"
  [ -f "$OUT/scorer.md" ] && cat "$OUT/scorer.md"
  echo "## Commands"
  echo
  echo '```'
  cat "$COMMANDS"
  echo '```'
} >"$OUT/bench.md"
cat "$OUT/bench.md"
log "results: $OUT/bench.md (Markdown), $OUT/train/train.json and $OUT/scorer.json (JSON)"
[ "$status" = 0 ] || die "a benchmark missed its target or failed (see above)"
