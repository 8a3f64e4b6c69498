#!/usr/bin/env bash
# The main job: the whole Vigil loop on this machine, on real Redis and a real Kafka-protocol
# broker (tansu). Starts the stack, generates 30 days of history (ending a day ago), trains and
# registers a model, bootstraps the online store from that history (vigil-materialize), starts
# the five services as processes, streams the following day's transactions through ingest,
# calls Score with grpcurl, and prints a summary with live vs training drift per feature.
# Usage: scripts/demo.sh [--keep]  (--keep leaves it running)
source "$(dirname "$0")/lib.sh"
source "$VIGIL_ROOT/scripts/services.sh"
KEEP=0; [ "${1:-}" = "--keep" ] && KEEP=1
LIVE_TX="${VIGIL_DEMO_TRANSACTIONS:-3000}"
RATE="${VIGIL_DEMO_RATE:-1000}"

# A fresh stack each time: the demo's fixed seed reuses transaction ids, which a stack that
# remembers an earlier demo would rightly reject as duplicates.
export VIGIL_RUN_DIR="$VIGIL_RUN_DIR/demo-stack" \
  VIGIL_REDIS_PORT="${VIGIL_DEMO_REDIS_PORT:-17379}" VIGIL_KAFKA_PORT="${VIGIL_DEMO_KAFKA_PORT:-17092}"
"$VIGIL_ROOT/scripts/dev-down.sh" --clean >/dev/null 2>&1 || true
"$VIGIL_ROOT/scripts/dev-up.sh"
GRPCURL="$(grpcurl_bin)" || die "grpcurl not found after setup"
log "building the workspace (debug; cached in $CARGO_TARGET_DIR)"
(cd "$VIGIL_ROOT" && cargo build --workspace --bins --quiet)
BIN="$CARGO_TARGET_DIR/debug"

DEMO_DIR="$VIGIL_RUN_DIR/demo-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$DEMO_DIR"
trap 'stop_services' EXIT
# Fresh consumer groups per demo: each demo's services process only what this demo sends.
RUN_ID="$(basename "$DEMO_DIR")"

# One world and one stream of 31 days ending now, cut a day ago: the history before the cut
# is the lake the model trains on and the online store starts from; the live stream after it
# goes through ingest.
NOW_MS="$(($(date +%s) * 1000))"
WORLD=(--seed 7 --users 2000 --start "$((NOW_MS - 31 * 86400000))" --days 31 --split-at "$((NOW_MS - 86400000))")
log "1/7 generating 30 days of labelled history (seed 7, ending a day ago) into $DEMO_DIR/history"
"$BIN/vigil-datagen" generate "${WORLD[@]}" --out "$DEMO_DIR/history" \
  --format lake --lake-dir "$DEMO_DIR/history/lake" 2>"$DEMO_DIR/datagen.log"

log "2/7 training and registering a model (promoted to 'production' if it passes the gate)"
"$BIN/vigil-trainer" train --lake "$DEMO_DIR/history/lake" --registry "$DEMO_DIR/registry" \
  --work-dir "$DEMO_DIR/trainset" --promote production >"$DEMO_DIR/train.json" 2>"$DEMO_DIR/logs-train.txt"
VERSION="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["version"])' "$DEMO_DIR/train.json")"
AUC="$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["metrics"]["test_roc_auc"],4))' "$DEMO_DIR/train.json")"

log "3/7 bootstrapping the online store from the history (vigil-materialize, handover at the topics' end)"
(
  set -a
  # shellcheck disable=SC1091
  source "$VIGIL_RUN_DIR/stack.env"
  set +a
  VIGIL_FEATURE_SERVICE__SPEED_GROUP="fs-$RUN_ID" "$BIN/vigil-materialize" \
    --lake "$DEMO_DIR/history/lake" --handover topic-end
) >"$DEMO_DIR/materialize.json" 2>"$DEMO_DIR/logs-materialize.txt" || { cat "$DEMO_DIR/logs-materialize.txt"; die "materialize failed"; }
BOOT="$(python3 - "$DEMO_DIR/materialize.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['users']} users, {r['merchants']} merchants, {r['profiles']} profiles "
      f"from {r['transactions_read']} transactions in {r['elapsed_ms']} ms")
PY
)"
log "    $BOOT"

log "4/7 starting the five services"
start_service feature-service "VIGIL_FEATURE_SERVICE__SPEED_GROUP=fs-$RUN_ID" "VIGIL_FEATURE_SERVICE__LAKE_GROUP=lake-$RUN_ID"
start_service ingest
start_service inference "VIGIL_INFERENCE__CONSUMER_GROUP=inf-$RUN_ID"
start_service trainer
start_service drift-monitor "VIGIL_DRIFT__CONSUMER_GROUP=drift-$RUN_ID"
for s in feature-service ingest inference trainer drift-monitor; do wait_healthy "$s"; done

log "5/7 streaming $LIVE_TX live transactions (the day after the history) through ingest at $RATE/s (with 1% corrupt records)"
"$BIN/vigil-datagen" replay --ingest "http://127.0.0.1:${GRPC_PORT[ingest]}" "${WORLD[@]}" \
  --rate "$RATE" --limit "$LIVE_TX" --corrupt-rate 0.01 \
  >"$DEMO_DIR/replay.txt" 2>&1 || { cat "$DEMO_DIR/replay.txt"; die "replay failed"; }
ACCEPTED="$(metric "${ADMIN_PORT[ingest]}" 'vigil_ingest_transactions_total{outcome="accepted"}')"
log "waiting for every accepted transaction to be scored on vigil.scores.v1"
SCORED=0
for _ in $(seq 600); do
  SCORED="$(metric "${ADMIN_PORT[inference]}" vigil_inference_stream_scores_total)"
  [ "$SCORED" -ge "$ACCEPTED" ] && break
  sleep 0.2
done

log "6/7 grpcurl against inference"
"$GRPCURL" -plaintext "127.0.0.1:${GRPC_PORT[inference]}" list
NOW="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
TXN="{\"transaction\":{\"transactionId\":\"demo-1\",\"userId\":\"u000042\",\"amount\":{\"minorUnits\":129900,\"currency\":\"EUR\"},\"merchantId\":\"m-demo\",\"merchantCategory\":\"5732\",\"channel\":\"CHANNEL_ONLINE\",\"deviceId\":\"never-seen\",\"country\":\"BR\",\"eventTime\":\"$NOW\"}}"
# `explain`: reasons whatever the decision (by default only REVIEW and BLOCK carry them).
SCORE_REQ="${TXN%\}},\"explain\":true}"
echo "grpcurl -plaintext -emit-defaults -d '$SCORE_REQ' 127.0.0.1:${GRPC_PORT[inference]} vigil.v1.InferenceService/Score"
"$GRPCURL" -plaintext -emit-defaults -d "$SCORE_REQ" "127.0.0.1:${GRPC_PORT[inference]}" vigil.v1.InferenceService/Score | tee "$DEMO_DIR/score.json"
log "a malformed transaction is refused with the field named:"
"$GRPCURL" -plaintext -d "${TXN/EUR/euro}" "127.0.0.1:${GRPC_PORT[ingest]}" vigil.v1.IngestService/Submit 2>&1 | sed 's/^/    /' || true

log "7/7 drift report (live vs training: scores and every feature)"
sleep 3   # one publish interval of the drift monitor (2 s) so the gauge is fresh
"$GRPCURL" -plaintext "127.0.0.1:${GRPC_PORT[drift-monitor]}" vigil.v1.DriftService/GetReport >"$DEMO_DIR/drift.json"
PSI="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(round(d.get("scorePsi",0),4), d.get("status"), d.get("liveCount"))' "$DEMO_DIR/drift.json")"
FEATURE_PSI="$(python3 - "$DEMO_DIR/drift.json" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
f = sorted(((x.get("psi", 0.0), x["name"]) for x in d.get("features", [])), reverse=True)
if not f:
    print("no feature vectors in the window")
else:
    top = ", ".join(f"{n} {p:.3f}" for p, n in f[:3])
    print(f"median {statistics.median(p for p, _ in f):.3f} over {len(f)} features "
          f"({d.get('featureLiveCount', 0)} live vectors), {sum(p >= 0.25 for p, _ in f)} >= 0.25; highest: {top}")
PY
)"

cat <<SUMMARY

================ Vigil demo summary ================
 run directory        $DEMO_DIR
 model                vigil-fraud $VERSION (test ROC-AUC $AUC, promoted to production)
 events in            $ACCEPTED transactions accepted by ingest, $(metric "${ADMIN_PORT[ingest]}" 'vigil_ingest_transactions_total{outcome="rejected"}') rejected (quarantined)
 scores out           $SCORED score events on vigil.scores.v1
 online store         bootstrapped from history: $BOOT
 score PSI            $PSI   (psi status live-count)
 feature PSI          $FEATURE_PSI
=====================================================
SUMMARY
[ "$ACCEPTED" -gt 0 ] || die "ingest accepted no transactions"
[ "$SCORED" -ge "$ACCEPTED" ] || die "only $SCORED of $ACCEPTED transactions were scored"
if [ "$KEEP" = 1 ]; then trap - EXIT; log "services left running (pids in $DEMO_DIR/pids)"; fi
