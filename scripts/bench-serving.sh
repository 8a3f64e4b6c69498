#!/usr/bin/env bash
# Speed-layer and serving benchmarks on the real stack (release builds, outside the test
# command), on a stack of their own (run/bench-stack, Redis 27379, tansu 27092):
#   1. 30 days of history for VIGIL_BENCH_USERS users (default 2000) go through ingest
#      (SubmitProfiles, SubmitBatch, SubmitLabels) while the feature-service is down;
#   2. the feature-service starts with a fresh speed group and catches up: speed-layer
#      throughput = transactions applied / time from the first applied to the last;
#   3. Redis bytes per key (MEMORY USAGE) of every user state (30-day windows), profile
#      history and merchant hash;
#   4. GetFeatureVector at a fixed open-loop rate (VIGIL_BENCH_RPS, default 1000 req/s, 4
#      connections) with h2load (Debian nghttp2-client): p50 / p99 / max from its per-request
#      log;
#   5. a model trained on that lake (vigil-trainer train), served by vigil-inference; Score
#      (feature fetch from the feature-service included) at fixed open-loop rates
#      (VIGIL_BENCH_SCORE_RATES, default 100 500 1000 2000 req/s) and closed loop: p50 / p99 /
#      p99.9 / max, and the gRPC outcome of every request read from the server's counters
#      (h2load sees only HTTP 200; grpc-status is in the trailers), and the server-side split
#      of each run's p50 / p99 into the feature fetch and the model (scripts/bench/hops.py over
#      inference's histograms);
#   6. overload, on a second inference instance with server.max_in_flight =
#      VIGIL_BENCH_MAX_IN_FLIGHT (default 16): `vigil-bench load` (which counts every
#      answer's grpc-status) measures the unloaded latency (200 req/s), the capacity (closed
#      loop at the limit), then offers 2× that capacity open loop for 2 × VIGIL_BENCH_SECONDS:
#      the share shed with RESOURCE_EXHAUSTED, the admitted p99 against the unloaded one, and
#      the instance's RSS sampled every 200 ms;
#   7. the cost of TLS: a third inference instance serving TLS 1.3 with client certificates
#      (mTLS) and a bearer token (certificates made here with the openssl CLI), against the
#      plaintext instance of step 5, each at VIGIL_BENCH_TLS_RATE (default 1000) req/s open
#      loop with `vigil-bench load`, one after the other in this run;
#   8. the cost of shadowing: a second model trained on the same lake goes to `candidate`;
#      a fourth inference instance serves production and shadows it (every request scored
#      by both, the shadow's scores published flagged); it and the plain instance of step 5
#      run alternately, twice each, at VIGIL_BENCH_TLS_RATE req/s open loop, once the
#      shadowing instance has scored the features topic's backlog: the p99 ratio
#      (the target: at most +10 %) and the shadow scores counted;
#   9. the breaker: the feature-service is SIGKILLed; once inference's breaker is open, Score
#      at 200 req/s for VIGIL_BENCH_SECONDS: every answer must be degraded (inference's
#      counters), p50 / p99 / max of those answers (the target: degraded within 5 ms).
# Every inference instance starts in a fresh consumer group and is measured only after it
# has scored the features topic's backlog (`caught_up`).
# Results go to $VIGIL_BENCH_OUT (default run/bench-serving-<date>).
source "$(dirname "$0")/lib.sh"
cd "$VIGIL_ROOT"

USERS="${VIGIL_BENCH_USERS:-2000}"
RPS="${VIGIL_BENCH_RPS:-1000}"
SECONDS_AT_RATE="${VIGIL_BENCH_SECONDS:-20}"
OUT="${VIGIL_BENCH_OUT:-$VIGIL_RUN_DIR/bench-serving-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

"$VIGIL_ROOT/scripts/setup.sh"
if ! command -v h2load >/dev/null; then
  log "installing h2load (nghttp2-client)"
  as_root apt-get install -y -q nghttp2-client >/dev/null
fi
log "building release binaries (cached in $CARGO_TARGET_DIR)"
cargo build --release --quiet --bin vigil-ingest --bin vigil-feature-service --bin vigil-datagen \
  --bin vigil-trainer --bin vigil-inference --bin vigil-bench
BIN="$CARGO_TARGET_DIR/release"

export VIGIL_RUN_DIR="$VIGIL_ROOT/run/bench-stack" VIGIL_REDIS_PORT=27379 VIGIL_KAFKA_PORT=27092
"$VIGIL_ROOT/scripts/dev-down.sh" --clean >/dev/null 2>&1 || true
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  "$VIGIL_ROOT/scripts/dev-down.sh" --clean >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$VIGIL_ROOT/scripts/dev-up.sh"
set -a
# shellcheck disable=SC1091
source "$VIGIL_RUN_DIR/stack.env"
set +a
LAKE="$(mktemp -d "${TMPDIR:-/tmp}/vigil-bench-lake.XXXXXX")"

start() { # name grpc admin [env...]
  local name=$1 grpc=$2 admin=$3
  shift 3
  env VIGIL_SERVER__GRPC_ADDR="127.0.0.1:$grpc" VIGIL_SERVER__ADMIN_ADDR="127.0.0.1:$admin" \
    VIGIL_LAKE__PATH="$LAKE" VIGIL_TELEMETRY__LOG_FORMAT=json "$@" \
    "$BIN/vigil-$name" >>"$OUT/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$name not ready (see $OUT/$name.log)"
}
metric() { # admin-port name -> sum over labels
  curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d\n", s }'
}

NOW_MS="$(($(date +%s) * 1000))"
start ingest 51051 9201
log "1/9 30 days of history for $USERS users through ingest (feature-service down)"
"$BIN/vigil-datagen" replay --ingest http://127.0.0.1:51051 --seed 7 --users "$USERS" \
  --start "$((NOW_MS - 30 * 86400000))" --days 30 --rate 200000 --batch 1000 >"$OUT/replay.txt" 2>&1 \
  || { cat "$OUT/replay.txt"; die "replay failed"; }
ACCEPTED="$(curl -s http://127.0.0.1:9201/metrics | awk '/^vigil_ingest_transactions_total\{outcome="accepted"\}/ { print int($2) }')"
[ "${ACCEPTED:-0}" -gt 0 ] || die "ingest accepted no transactions (see $OUT/replay.txt)"
log "    $ACCEPTED transactions accepted"

log "2/9 feature-service catching up (fresh speed group)"
start feature-service 51052 9202 VIGIL_FEATURE_SERVICE__SPEED_GROUP="bench-$NOW_MS" \
  VIGIL_FEATURE_SERVICE__LAKE_GROUP="bench-lake-$NOW_MS"
FEATURES_PID="${PIDS[-1]}"
FIRST="" LAST="" FIRST_N=0 n=0
for _ in $(seq 6000); do
  n="$(metric 9202 vigil_features_transactions_applied_total)"
  now="$(date +%s%N)"
  [ -z "$FIRST" ] && [ "$n" -gt 0 ] && FIRST="$now" FIRST_N="$n"
  if [ "$n" -ge "$ACCEPTED" ]; then LAST="$now"; break; fi
  sleep 0.05
done
[ -n "$LAST" ] || die "speed layer did not catch up ($n of $ACCEPTED)"
RATE="$(python3 -c "print(round(($ACCEPTED - $FIRST_N) / (($LAST - $FIRST) / 1e9)))")"
log "    $RATE transactions/s"

log "3/9 Redis bytes per key"
redis_cli() { redis-cli -p "$VIGIL_REDIS_PORT" "$@"; }
sizes() { # pattern -> "n mean p50 p99 max"
  redis_cli --scan --pattern "$1" | while read -r k; do redis_cli MEMORY USAGE "$k" SAMPLES 0; done |
    python3 -c 'import sys, statistics as s
v = sorted(int(x) for x in sys.stdin if x.strip())
print(len(v), round(s.mean(v)), v[len(v)//2], v[int(len(v)*0.99)], v[-1]) if v else print("0 - - - -")'
}
USER_BYTES="$(sizes 'vigil:v4:user:*')"
PROFILE_BYTES="$(sizes 'vigil:v4:profile:*')"
MERCHANT_BYTES="$(sizes 'vigil:v4:merchant:*')"

log "4/9 GetFeatureVector at $RPS req/s open loop for ${SECONDS_AT_RATE}s (h2load)"
python3 - "$OUT/request.bin" <<'PY'
import struct, sys, time
def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
def field(num, wire, payload):
    return varint(num << 3 | wire) + payload
def s(num, text):
    b = text.encode()
    return field(num, 2, varint(len(b)) + b)
def msg(num, body):
    return field(num, 2, varint(len(body)) + body)
def i(num, n):
    return field(num, 0, varint(n))
def d(num, x):
    return field(num, 1, struct.pack("<d", x))
now = int(time.time())
txn = (s(1, "bench-probe") + s(2, "u-000042") + s(3, "a-000042")
       + msg(4, i(1, 12_345) + s(2, "EUR")) + s(5, "m-000007") + s(6, "5411")
       + i(7, 1) + s(8, "d-000042-0") + s(9, "FR")
       + msg(10, d(1, 48.85) + d(2, 2.35)) + msg(11, i(1, now)))
body = msg(1, txn)
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(body)) + body)
PY
URL="http://127.0.0.1:51052/vigil.v1.FeatureService/GetFeatureVector"
STATUS="$(curl -s --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' \
  --data-binary @"$OUT/request.bin" -o /dev/null -D - "$URL" | tr -d '\r' | awk -F': ' '$1 == "grpc-status" { print $2 }')"
[ "$STATUS" = 0 ] || die "GetFeatureVector probe answered grpc-status ${STATUS:-none}"
CONNS=4
h2load -n "$((RPS * SECONDS_AT_RATE))" -c "$CONNS" -m 1 --rps "$((RPS / CONNS))" \
  -H 'content-type: application/grpc' -H 'te: trailers' -d "$OUT/request.bin" \
  --log-file "$OUT/h2load.tsv" "$URL" >"$OUT/h2load.txt" 2>&1 || { cat "$OUT/h2load.txt"; die "h2load failed"; }
quantiles() { # h2load log -> "n p50 p99 p99.9 max" (ms)
  python3 -c 'import sys
v = sorted(int(l.split("\t")[2]) for l in open(sys.argv[1]) if l.strip())
q = lambda p: v[min(len(v) - 1, int(len(v) * p))] / 1000
print(f"{len(v)} {q(0.5):.2f} {q(0.99):.2f} {q(0.999):.2f} {v[-1] / 1000:.2f}")' "$1"
}
LAT="$(quantiles "$OUT/h2load.tsv")"

log "5/9 Score at fixed open-loop rates and closed loop (h2load)"
REGISTRY="$(mktemp -d "${TMPDIR:-/tmp}/vigil-bench-registry.XXXXXX")"
sleep 2 # the lake writer's linger
"$BIN/vigil-trainer" train --lake "$LAKE" --registry "$REGISTRY" --promote production \
  --work-dir "$OUT/trainset" >"$OUT/train.json" 2>"$OUT/train.log" || { tail "$OUT/train.log"; die "training failed"; }
start inference 51053 9203 VIGIL_REGISTRY__PATH="$REGISTRY" \
  VIGIL_FEATURES__ENDPOINT=http://127.0.0.1:51052 VIGIL_INFERENCE__CONSUMER_GROUP="bench-inf-$NOW_MS"
# Each inference instance starts in a fresh consumer group, so it first scores the whole
# features topic (the history's vectors). Measure only once that backlog is done: the stream
# count has moved and then stands still for 2 s.
caught_up() { # admin-port what
  local last=-1 now
  for _ in $(seq 300); do
    now="$(metric "$1" vigil_inference_stream_scores_total)"
    [[ "$now" -gt 0 && "$now" == "$last" ]] && break
    last="$now"
    sleep 2
  done
  log "    $2 caught up: $last stream vectors scored before measuring"
}
caught_up 9203 "inference"
SCORE_URL="http://127.0.0.1:51053/vigil.v1.InferenceService/Score"
outcomes() { # -> "scored degraded shed"
  echo "$(metric 9203 vigil_inference_scores_total) $(metric 9203 vigil_inference_degraded_total) $(metric 9203 vigil_grpc_requests_shed_total)"
}
SCORE_ROWS=()
run_score() { # slug label h2load-args...
  local slug=$1 label=$2
  shift 2
  read -r s0 d0 x0 <<<"$(outcomes)"
  curl -s http://127.0.0.1:9203/metrics >"$OUT/score-$slug.metrics0"
  h2load -H 'content-type: application/grpc' -H 'te: trailers' -d "$OUT/request.bin" \
    --log-file "$OUT/score-$slug.tsv" "$@" "$SCORE_URL" >"$OUT/score-$slug.txt" 2>&1 \
    || { cat "$OUT/score-$slug.txt"; die "h2load failed"; }
  read -r s1 d1 x1 <<<"$(outcomes)"
  curl -s http://127.0.0.1:9203/metrics >"$OUT/score-$slug.metrics1"
  local secs rps hops
  hops="$(python3 scripts/bench/hops.py "$OUT/score-$slug.metrics0" "$OUT/score-$slug.metrics1")"
  secs="$(awk '/^finished in/ { sub(/s,$/, "", $3); print $3 }' "$OUT/score-$slug.txt")"
  rps="$(awk '/^finished in/ { print $4 }' "$OUT/score-$slug.txt")"
  read -r n p50 p99 p999 max <<<"$(quantiles "$OUT/score-$slug.tsv")"
  SCORE_ROWS+=("| Score, $label ($n requests, ${secs}s, $rps req/s achieved) | $p50 / $p99 / $p999 / $max ms | $hops | $((s1 - s0)) scored, $((d1 - d0)) degraded, $((x1 - x0)) shed |")
  log "    $label: p50 $p50 p99 $p99 p99.9 $p999 ms; server-side $hops; $((s1 - s0)) scored, $((d1 - d0)) degraded, $((x1 - x0)) shed"
}
run_score warm-up "warm-up" -n 2000 -c 4 -m 1
SCORE_ROWS=()
for rate in ${VIGIL_BENCH_SCORE_RATES:-100 500 1000 2000}; do
  run_score "open-$rate" "$rate req/s open loop, 4 connections" -n "$((rate * SECONDS_AT_RATE))" -c 4 -m 1 --rps "$((rate / 4))"
done
run_score closed "closed loop, 4 connections × 8 streams" -n 100000 -c 4 -m 8

log "6/9 overload: 2x the measured capacity, open loop (vigil-bench load)"
MAX_IN_FLIGHT="${VIGIL_BENCH_MAX_IN_FLIGHT:-16}"
start inference 51054 9204 VIGIL_REGISTRY__PATH="$REGISTRY" VIGIL_SERVER__MAX_IN_FLIGHT="$MAX_IN_FLIGHT" \
  VIGIL_FEATURES__ENDPOINT=http://127.0.0.1:51052 VIGIL_INFERENCE__CONSUMER_GROUP="bench-inf-guarded-$NOW_MS"
GUARDED_PID="${PIDS[-1]}"
caught_up 9204 "overload instance"
load() { "$BIN/vigil-bench" load --endpoint http://127.0.0.1:51054 "$@"; }
field() { # json-file dotted.key -> value (fails when absent: no silent 0)
  python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[k]
print(v)' "$@"
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$GUARDED_PID/status"; }
load --rate 200 --seconds 5 >/dev/null # warm-up
load --rate 200 --seconds "$SECONDS_AT_RATE" --out "$OUT/load-unloaded.json" >/dev/null
load --in-flight "$MAX_IN_FLIGHT" --seconds "$SECONDS_AT_RATE" --out "$OUT/load-capacity.json" >/dev/null
CAPACITY="$(python3 -c "print(int($(field "$OUT/load-capacity.json" ok_per_s)))")"
OFFER=$((2 * CAPACITY))
RSS_BEFORE="$(rss_kb)"
(while kill -0 "$GUARDED_PID" 2>/dev/null; do rss_kb; sleep 0.2; done) >"$OUT/load-rss.txt" &
SAMPLER=$!
read -r x0 <<<"$(metric 9204 vigil_grpc_requests_shed_total)"
load --rate "$OFFER" --seconds "$((2 * SECONDS_AT_RATE))" --out "$OUT/load-overload.json" >/dev/null
read -r x1 <<<"$(metric 9204 vigil_grpc_requests_shed_total)"
kill "$SAMPLER" 2>/dev/null || true
RSS_AFTER="$(rss_kb)"
RSS_MAX="$(sort -n "$OUT/load-rss.txt" | tail -1)"
OVERLOAD_ROWS="$(python3 - "$OUT" "$MAX_IN_FLIGHT" "$RSS_BEFORE" "$RSS_MAX" "$RSS_AFTER" "$((x1 - x0))" <<'PY'
import json, sys
out, limit, before, peak, after, server_shed = sys.argv[1], *map(int, sys.argv[2:])
u, c, o = (json.load(open(f"{out}/load-{n}.json")) for n in ("unloaded", "capacity", "overload"))
def lat(r, k="ok"):
    q = r.get(k)
    return f"{q['p50']:.2f} / {q['p99']:.2f} / {q['p999']:.2f}" if q else "-"
def codes(r):
    return ", ".join(f"{v} {k}" for k, v in sorted(r["codes"].items()))
shed = o["codes"].get("ResourceExhausted", 0)
ratio = o["ok"]["p99"] / u["ok"]["p99"] if o.get("ok") and u.get("ok") else float("nan")
lag = o.get("start_lag") or {}
rows = [
    f"| unloaded, 200 req/s open loop | {lat(u)} | {codes(u)} |",
    f"| capacity, closed loop at {limit} in flight: **{c['ok_per_s']:.0f} OK/s** | {lat(c)} | {codes(c)} |",
    f"| overload, {o['offered_per_s']:.0f} req/s offered open loop (2x capacity; start lag p99 {lag.get('p99', 0):.2f} ms) | {lat(o)} admitted; shed answered in p99 {lat(o, 'shed').split(' / ')[1] if o.get('shed') else '-'} ms | {codes(o)}; {o['ok_per_s']:.0f} OK/s |",
]
print("\n".join(rows))
print(f"| admitted p99 under overload / unloaded p99 | **{ratio:.2f}x** (target <= 2x) | {shed} shed by the client's count, {server_shed} on the server's counter |")
print(f"| inference RSS: before / peak / after overload | {before / 1024:.1f} / {peak / 1024:.1f} / {after / 1024:.1f} MiB | |")
PY
)"
log "$OVERLOAD_ROWS"

log "7/9 the cost of TLS + mTLS + token on Score (vigil-bench load)"
PKI="$OUT/pki"
mkdir -p "$PKI"
(
  cd "$PKI"
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  key ca.key
  openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=vigil-bench-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  for who in server client; do
    key "$who.key"
    openssl req -new -key "$who.key" -out "$who.csr" -subj "/CN=$who" 2>/dev/null
    eku=serverAuth
    [[ $who == client ]] && eku=clientAuth
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\nextendedKeyUsage=%s\n' "$eku" >"$who.ext"
    openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile "$who.ext" -out "$who.pem" 2>/dev/null
  done
  openssl rand -hex 32 >token
) || die "making the bench certificates failed (openssl)"
start inference 51055 9205 VIGIL_REGISTRY__PATH="$REGISTRY" \
  VIGIL_FEATURES__ENDPOINT=http://127.0.0.1:51052 VIGIL_INFERENCE__CONSUMER_GROUP="bench-inf-tls-$NOW_MS" \
  VIGIL_SERVER__TLS__CERT_FILE="$PKI/server.pem" VIGIL_SERVER__TLS__KEY_FILE="$PKI/server.key" \
  VIGIL_SERVER__TLS__CLIENT_CA_FILE="$PKI/ca.pem" VIGIL_SERVER__AUTH__TOKENS_FILE="$PKI/token"
caught_up 9205 "TLS instance"
TLS_RATE="${VIGIL_BENCH_TLS_RATE:-1000}"
plain() { "$BIN/vigil-bench" load --endpoint http://127.0.0.1:51053 "$@"; }
secured() {
  "$BIN/vigil-bench" load --endpoint https://127.0.0.1:51055 --tls-domain localhost \
    --ca-file "$PKI/ca.pem" --cert-file "$PKI/client.pem" --key-file "$PKI/client.key" \
    --token-file "$PKI/token" "$@"
}
secured --rate 200 --seconds 3 --out "$OUT/load-tls-warm.json" >/dev/null
[[ "$(field "$OUT/load-tls-warm.json" codes.Ok)" -gt 0 ]] || die "no Score answered over TLS"
plain --rate "$TLS_RATE" --seconds "$SECONDS_AT_RATE" --out "$OUT/load-plain.json" >/dev/null
secured --rate "$TLS_RATE" --seconds "$SECONDS_AT_RATE" --out "$OUT/load-tls.json" >/dev/null
TLS_ROWS="$(python3 - "$OUT" "$TLS_RATE" <<'PY'
import json, sys
out, rate = sys.argv[1], sys.argv[2]
p, t = (json.load(open(f"{out}/load-{n}.json")) for n in ("plain", "tls"))
def lat(r):
    q = r["ok"]
    return f"{q['p50']:.2f} / {q['p99']:.2f} / {q['p999']:.2f}"
def codes(r):
    return ", ".join(f"{v} {k}" for k, v in sorted(r["codes"].items()))
print(f"| plaintext, {rate} req/s open loop | {lat(p)} | {codes(p)} |")
print(f"| TLS 1.3 + client certificate + bearer token, {rate} req/s open loop | {lat(t)} | {codes(t)} |")
print(f"| TLS cost at p50 / p99 (negative: within this run's noise) | {t['ok']['p50'] - p['ok']['p50']:+.2f} / {t['ok']['p99'] - p['ok']['p99']:+.2f} ms | |")
PY
)"
log "$TLS_ROWS"

log "8/9 the cost of shadowing a candidate on Score (vigil-bench load)"
"$BIN/vigil-trainer" train --lake "$LAKE" --registry "$REGISTRY" --promote candidate \
  --trigger "bench-serving: shadow cost" --work-dir "$OUT/trainset-candidate" \
  >"$OUT/train-candidate.json" 2>"$OUT/train-candidate.log" || { tail "$OUT/train-candidate.log"; die "training the candidate failed"; }
[[ "$(field "$OUT/train-candidate.json" promoted_to)" == candidate ]] || die "the second model did not reach candidate: $(cat "$OUT/train-candidate.json")"
start inference 51056 9206 VIGIL_REGISTRY__PATH="$REGISTRY" \
  VIGIL_FEATURES__ENDPOINT=http://127.0.0.1:51052 VIGIL_INFERENCE__CONSUMER_GROUP="bench-inf-shadow-$NOW_MS" \
  VIGIL_INFERENCE__SHADOW_ALIAS=candidate
for _ in $(seq 300); do
  [[ "$(metric 9206 vigil_inference_model_swaps_total)" -ge 2 ]] && break
  sleep 0.1
done
[[ "$(metric 9206 vigil_inference_model_swaps_total)" -ge 2 ]] || die "the shadowing instance did not load both models"
caught_up 9206 "shadowing instance (both models)"
shadowed() { "$BIN/vigil-bench" load --endpoint http://127.0.0.1:51056 "$@"; }
shadowed --rate 200 --seconds 3 >/dev/null
for round in 1 2; do
  plain --rate "$TLS_RATE" --seconds "$SECONDS_AT_RATE" --out "$OUT/load-noshadow-$round.json" >/dev/null
  shadowed --rate "$TLS_RATE" --seconds "$SECONDS_AT_RATE" --out "$OUT/load-shadow-$round.json" >/dev/null
done
SHADOW_SCORES="$(metric 9206 'vigil_inference_shadow_scores_total{source="request"}')"
SHADOW_ROWS="$(python3 - "$OUT" "$TLS_RATE" "$SHADOW_SCORES" <<'PY'
import json, sys
out, rate, shadow_scores = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {k: [json.load(open(f"{out}/load-{k}-{i}.json")) for i in (1, 2)] for k in ("noshadow", "shadow")}
def lat(r):
    q = r["ok"]
    return f"{q['p50']:.2f} / {q['p99']:.2f} / {q['p999']:.2f}"
def codes(r):
    return ", ".join(f"{v} {k}" for k, v in sorted(r["codes"].items()))
for i in (0, 1):
    for k, what in (("noshadow", "production only"), ("shadow", "production + shadow candidate")):
        print(f"| {what}, {rate} req/s open loop, round {i + 1} | {lat(runs[k][i])} | {codes(runs[k][i])} |")
p99 = {k: sum(r["ok"]["p99"] for r in v) / 2 for k, v in runs.items()}
print(f"| shadow p99 / production-only p99 (mean of the two rounds each) | **{p99['shadow'] / p99['noshadow']:.2f}x** (target <= 1.10x) | {shadow_scores} shadow scores recorded |")
PY
)"
log "$SHADOW_ROWS"

log "9/9 the breaker: feature-service SIGKILLed, Score degraded at once (vigil-bench load)"
kill -KILL "$FEATURES_PID" 2>/dev/null || true
for _ in $(seq 100); do
  plain --rate 50 --seconds 0.2 >/dev/null
  [[ "$(curl -s http://127.0.0.1:9203/metrics | awk '$1 == "vigil_inference_breaker_state" { print $2 }')" == 2 ]] && break
done
[[ "$(curl -s http://127.0.0.1:9203/metrics | awk '$1 == "vigil_inference_breaker_state" { print $2 }')" == 2 ]] \
  || die "the breaker did not open with the feature-service down"
read -r s0 d0 _ <<<"$(outcomes)"
plain --rate 200 --seconds "$SECONDS_AT_RATE" --out "$OUT/load-breaker.json" >/dev/null
read -r s1 d1 _ <<<"$(outcomes)"
BREAKER_ROW="$(python3 - "$OUT" "$((s1 - s0))" "$((d1 - d0))" <<'PY'
import json, sys
out, scored, degraded = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b = json.load(open(f"{out}/load-breaker.json"))
q = b["ok"]
assert degraded == q["n"], f"{q['n']} answers but {degraded} counted degraded"
print(f"| breaker open, 200 req/s open loop ({q['n']} answers, {degraded} degraded on the server's counter, {scored} scored) | {q['p50']:.2f} / {q['p99']:.2f} / {q['p999']:.2f} / {q['max']:.2f} | target: degraded within 5 ms |")
PY
)" || die "breaker step: not every answer was degraded"
log "$BREAKER_ROW"

{
  echo "# Speed layer and GetFeatureVector"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit $(git rev-parse --short HEAD)"
  echo "- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; Redis $(redis-server --version | awk '{print $3}'), tansu 0.6.0 (sqlite)"
  echo "- workload: datagen seed 7, $USERS users, 30 days, $ACCEPTED transactions through ingest"
  echo
  echo "| measure | value |"
  echo "|---|---|"
  echo "| speed-layer catch-up, one instance | $RATE transactions/s |"
  read -r n mean p50 p99 max <<<"$USER_BYTES"
  echo "| Redis bytes per user state (n, mean, p50, p99, max) | $n, $mean, $p50, $p99, $max |"
  read -r n mean p50 p99 max <<<"$PROFILE_BYTES"
  echo "| Redis bytes per profile history | $n, $mean, $p50, $p99, $max |"
  read -r n mean p50 p99 max <<<"$MERCHANT_BYTES"
  echo "| Redis bytes per merchant hash | $n, $mean, $p50, $p99, $max |"
  read -r n p50 p99 _ max <<<"$LAT"
  echo "| GetFeatureVector at $RPS req/s open loop, $CONNS connections ($n requests): p50 / p99 / max | $p50 / $p99 / $max ms |"
  echo
  echo "| Score (release, feature fetch included) | client p50 / p99 / p99.9 / max | server-side p50/p99 ms: whole call · feature fetch · model (inference's histograms) | outcomes on the server's counters |"
  echo "|---|---|---|---|"
  printf '%s\n' "${SCORE_ROWS[@]}"
  echo
  echo "| Score under overload (server.max_in_flight $MAX_IN_FLIGHT; vigil-bench load, one client thread) | p50 / p99 / p99.9 (ms) | answers |"
  echo "|---|---|---|"
  echo "$OVERLOAD_ROWS"
  echo
  echo "| Score over TLS (vigil-bench load, same model and feature-service) | p50 / p99 / p99.9 (ms) | answers |"
  echo "|---|---|---|"
  echo "$TLS_ROWS"
  echo
  echo "| Score while shadowing a candidate (vigil-bench load, same feature-service; instances alternate) | p50 / p99 / p99.9 (ms) | answers |"
  echo "|---|---|---|"
  echo "$SHADOW_ROWS"
  echo
  echo "| Score with the feature-service down | p50 / p99 / p99.9 / max (ms) | |"
  echo "|---|---|---|"
  echo "$BREAKER_ROW"
} | tee "$OUT/results.md"
