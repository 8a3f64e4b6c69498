#!/usr/bin/env bash
# Feature-engine benchmarks (release builds, outside the test command):
#   1. vigil-datagen: N transactions (VIGIL_BENCH_TRANSACTIONS, default 1 000 000; the issue's
#      figure is 10 000 000) into a temporary lake;
#   2. the point-in-time build: `vigil-trainer build-set` (feature-builder: both passes over the
#      lake, every feature of the set) vs the same window features written as DuckDB SQL
#      (scripts/bench/pit_duckdb.py), same lake, same run;
#   3. `vigil-bench features`: the engine alone (events/s, a 50 000-transaction user against
#      ordinary ones, state bytes).
# Results (Markdown + JSON, machine, date, commands) go to $VIGIL_BENCH_OUT (default
# run/bench-features-<date>).
source "$(dirname "$0")/lib.sh"
cd "$VIGIL_ROOT"

TRANSACTIONS="${VIGIL_BENCH_TRANSACTIONS:-1000000}"
USERS="${VIGIL_BENCH_USERS:-$((TRANSACTIONS / 50))}"
OUT="${VIGIL_BENCH_OUT:-$VIGIL_RUN_DIR/bench-features-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/vigil-bench-features.XXXXXX")"
trap 'rm -rf "$DATA"' EXIT
COMMANDS="$OUT/commands.txt"
: >"$COMMANDS"

millis() { echo $(($(date +%s%N) / 1000000)); }

"$VIGIL_ROOT/scripts/setup.sh"
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet duckdb

log "building release binaries (cached in $CARGO_TARGET_DIR)"
run cargo build --release --quiet --bin vigil-datagen --bin vigil-trainer --bin vigil-bench
BIN="$CARGO_TARGET_DIR/release"

log "1/3 generating $TRANSACTIONS transactions ($USERS users, 30 days) into a lake"
run "$BIN/vigil-datagen" generate --seed 7 --users "$USERS" --days 30 --transactions "$TRANSACTIONS" \
  --out "$DATA/gen" --format lake --lake-dir "$DATA/lake" 2>"$OUT/datagen.log"

log "2/3 point-in-time build: feature-builder vs DuckDB SQL on the same lake"
t0=$(millis)
run "$BIN/vigil-trainer" build-set --lake "$DATA/lake" --out "$DATA/set" --as-of "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  >"$OUT/build-set.txt" 2>"$OUT/build-set.log"
VIGIL_MS=$(($(millis) - t0))
run python3 scripts/bench/pit_duckdb.py --lake "$DATA/lake" --threads "$(nproc)" --json "$OUT/duckdb.json" >/dev/null

log "3/3 the engine alone"
run "$BIN/vigil-bench" features --out "$OUT/engine.json" >"$OUT/engine.md" 2>"$OUT/engine.log" || true

python3 - "$OUT" "$TRANSACTIONS" "$VIGIL_MS" <<'PY'
import json, os, platform, subprocess, sys
out, n, vigil_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
duck = json.load(open(os.path.join(out, "duckdb.json")))
import re
log = re.sub(r"\x1b\[[0-9;]*m", "", open(os.path.join(out, "build-set.log")).read())
m = re.search(r"training set written rows=(\d+)", log)
rows = int(m.group(1)) if m else None
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p' | head -1"], capture_output=True, text=True).stdout.strip()
vigil_s = vigil_ms / 1000
lines = [
    "# Feature-engine benchmarks",
    "",
    f"- date: {subprocess.run(['date', '-u', '+%Y-%m-%dT%H:%M:%SZ'], capture_output=True, text=True).stdout.strip()}",
    f"- machine: {cpu}, {os.cpu_count()} cores; {platform.platform()}",
    f"- transactions: {n}",
    "",
    "| point-in-time build | rows | seconds | transactions/s |",
    "|---|---:|---:|---:|",
    f"| Vigil feature-builder (`vigil-trainer build-set`, 2 passes, all features, training set written) | {rows} | {vigil_s:.1f} | {n / vigil_s:,.0f} |",
    f"| DuckDB {duck['engine'].split()[-1]} SQL, {duck['threads']} threads (window features only, written to Parquet) | {duck['rows']} | {duck['seconds']:.1f} | {n / duck['seconds']:,.0f} |",
    "",
    f"ratio Vigil / DuckDB: {vigil_s / duck['seconds']:.2f}",
]
open(os.path.join(out, "results.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
log "results in $OUT (commands in $COMMANDS)"
