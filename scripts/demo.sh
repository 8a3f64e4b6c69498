#!/usr/bin/env bash
# The main job: the whole Vigil loop on this machine, on real Redis and a real Kafka-protocol
# broker (tansu). Starts the stack, generates 30 days of history, trains and registers a model,
# starts the five services as processes, streams live transactions through ingest, calls Score
# with grpcurl, and prints a summary. Usage: scripts/demo.sh [--keep]  (--keep leaves it running)
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

log "1/6 generating 30 days of labelled history (seed 7) into $DEMO_DIR/history"
"$BIN/vigil-datagen" generate --seed 7 --users 2000 --days 30 --out "$DEMO_DIR/history" \
  --format lake --lake-dir "$DEMO_DIR/history/lake" 2>"$DEMO_DIR/datagen.log"

log "2/6 training and registering a model (promoted to 'production' if it passes the gate)"
"$BIN/vigil-trainer" train --lake "$DEMO_DIR/history/lake" --registry "$DEMO_DIR/registry" \
  --work-dir "$DEMO_DIR/trainset" --promote production >"$DEMO_DIR/train.json" 2>"$DEMO_DIR/logs-train.txt"
VERSION="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["version"])' "$DEMO_DIR/train.json")"
AUC="$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["metrics"]["test_roc_auc"],4))' "$DEMO_DIR/train.json")"

log "3/6 starting the five services"
start_service feature-service "VIGIL_FEATURE_SERVICE__SPEED_GROUP=fs-$RUN_ID" "VIGIL_FEATURE_SERVICE__LAKE_GROUP=lake-$RUN_ID"
start_service ingest
start_service inference "VIGIL_INFERENCE__CONSUMER_GROUP=inf-$RUN_ID"
start_service trainer
start_service drift-monitor "VIGIL_DRIFT__CONSUMER_GROUP=drift-$RUN_ID"
for s in feature-service ingest inference trainer drift-monitor; do wait_healthy "$s"; done

log "4/6 streaming $LIVE_TX live transactions through ingest at $RATE/s (with 1% corrupt records)"
"$BIN/vigil-datagen" replay --ingest "http://127.0.0.1:${GRPC_PORT[ingest]}" --seed 7 --users 2000 \
  --start now --days 1 --rate "$RATE" --limit "$LIVE_TX" --corrupt-rate 0.01 \
  >"$DEMO_DIR/replay.txt" 2>&1 || { cat "$DEMO_DIR/replay.txt"; die "replay failed"; }
ACCEPTED="$(metric "${ADMIN_PORT[ingest]}" 'vigil_ingest_transactions_total{outcome="accepted"}')"
log "waiting for every accepted transaction to be scored on vigil.scores.v1"
SCORED=0
for _ in $(seq 600); do
  SCORED="$(metric "${ADMIN_PORT[inference]}" vigil_inference_stream_scores_total)"
  [ "$SCORED" -ge "$ACCEPTED" ] && break
  sleep 0.2
done

log "5/6 grpcurl against inference"
"$GRPCURL" -plaintext "127.0.0.1:${GRPC_PORT[inference]}" list
NOW="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
TXN="{\"transaction\":{\"transactionId\":\"demo-1\",\"userId\":\"u000042\",\"amount\":{\"minorUnits\":129900,\"currency\":\"EUR\"},\"merchantId\":\"m-demo\",\"merchantCategory\":\"5732\",\"channel\":\"CHANNEL_ONLINE\",\"deviceId\":\"never-seen\",\"country\":\"BR\",\"eventTime\":\"$NOW\"}}"
# `explain`: reasons whatever the decision (by default only REVIEW and BLOCK carry them).
SCORE_REQ="${TXN%\}},\"explain\":true}"
echo "grpcurl -plaintext -emit-defaults -d '$SCORE_REQ' 127.0.0.1:${GRPC_PORT[inference]} vigil.v1.InferenceService/Score"
"$GRPCURL" -plaintext -emit-defaults -d "$SCORE_REQ" "127.0.0.1:${GRPC_PORT[inference]}" vigil.v1.InferenceService/Score | tee "$DEMO_DIR/score.json"
log "a malformed transaction is refused with the field named:"
"$GRPCURL" -plaintext -d "${TXN/EUR/euro}" "127.0.0.1:${GRPC_PORT[ingest]}" vigil.v1.IngestService/Submit 2>&1 | sed 's/^/    /' || true

log "6/6 drift report"
sleep 3   # one publish interval of the drift monitor (2 s) so the gauge is fresh
"$GRPCURL" -plaintext "127.0.0.1:${GRPC_PORT[drift-monitor]}" vigil.v1.DriftService/GetReport >"$DEMO_DIR/drift.json"
PSI="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(round(d.get("scorePsi",0),4), d.get("status"), d.get("liveCount"))' "$DEMO_DIR/drift.json")"

cat <<SUMMARY

================ Vigil demo summary ================
 run directory        $DEMO_DIR
 model                vigil-fraud $VERSION (test ROC-AUC $AUC, promoted to production)
 events in            $ACCEPTED transactions accepted by ingest, $(metric "${ADMIN_PORT[ingest]}" 'vigil_ingest_transactions_total{outcome="rejected"}') rejected (quarantined)
 scores out           $SCORED score events on vigil.scores.v1
 score PSI            $PSI   (psi status live-count)
=====================================================
SUMMARY
[ "$ACCEPTED" -gt 0 ] || die "ingest accepted no transactions"
[ "$SCORED" -ge "$ACCEPTED" ] || die "only $SCORED of $ACCEPTED transactions were scored"
if [ "$KEEP" = 1 ]; then trap - EXIT; log "services left running (pids in $DEMO_DIR/pids)"; fi
