#!/usr/bin/env bash
# Starts the local stack — Redis and the tansu broker (sqlite storage, so data survives a broker
# restart) — on loopback ports under $VIGIL_RUN_DIR, creates the topics, and writes the endpoints
# to $VIGIL_RUN_DIR/stack.env for the other scripts and the tests. Idempotent.
source "$(dirname "$0")/lib.sh"
"$VIGIL_ROOT/scripts/setup.sh"
mkdir -p "$VIGIL_RUN_DIR/redis" "$VIGIL_RUN_DIR/tansu" "$VIGIL_RUN_DIR/logs"

if redis-cli -p "$VIGIL_REDIS_PORT" ping >/dev/null 2>&1; then
  # Reuse only our own server: another one's data would leak into this run.
  [ -f "$VIGIL_RUN_DIR/redis/redis.pid" ] \
    || die "port $VIGIL_REDIS_PORT has a Redis not started from $VIGIL_RUN_DIR; stop it or set VIGIL_REDIS_PORT"
  log "redis already up on $VIGIL_REDIS_PORT"
else
  log "starting redis on 127.0.0.1:$VIGIL_REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$VIGIL_REDIS_PORT" --dir "$VIGIL_RUN_DIR/redis" \
    --daemonize yes --pidfile "$VIGIL_RUN_DIR/redis/redis.pid" \
    --logfile "$VIGIL_RUN_DIR/logs/redis.log" --appendonly yes --save ""
  for _ in $(seq 50); do redis-cli -p "$VIGIL_REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$VIGIL_REDIS_PORT" ping >/dev/null || die "redis did not start (see $VIGIL_RUN_DIR/logs/redis.log)"
fi

broker="127.0.0.1:$VIGIL_KAFKA_PORT"
if wait_port 127.0.0.1 "$VIGIL_KAFKA_PORT" 0; then
  pidfile="$VIGIL_RUN_DIR/tansu/tansu.pid"
  { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; } \
    || die "port $VIGIL_KAFKA_PORT has a broker not started from $VIGIL_RUN_DIR; stop it or set VIGIL_KAFKA_PORT"
  log "broker already up on $broker"
else
  log "starting tansu on $broker (sqlite storage in $VIGIL_RUN_DIR/tansu)"
  # tansu resolves a sqlite:// path relative to its working directory.
  (cd "$VIGIL_RUN_DIR/tansu" && exec nohup tansu broker \
    --listener-url "tcp://$broker" \
    --advertised-listener-url "tcp://$broker" \
    --storage-engine "sqlite://tansu.db" \
    >"$VIGIL_RUN_DIR/logs/tansu.log" 2>&1) &
  echo $! >"$VIGIL_RUN_DIR/tansu/tansu.pid"
  wait_port 127.0.0.1 "$VIGIL_KAFKA_PORT" 30 || die "tansu did not start (see $VIGIL_RUN_DIR/logs/tansu.log)"
fi

# Explicit topic creation: tansu does not auto-create topics (and production should not).
partitions="${VIGIL_PARTITIONS:-6}"
for topic in vigil.transactions.v1 vigil.features.v1 vigil.scores.v1 vigil.labels.v1 \
             vigil.profiles.v1 vigil.quarantine.v1 vigil.drift.v1; do
  tansu topic create --broker "tcp://$broker" --partitions "$partitions" "$topic" >/dev/null 2>&1 || true
done

cat >"$VIGIL_RUN_DIR/stack.env" <<ENV
VIGIL_KAFKA__BROKERS=$broker
VIGIL_KAFKA__TANSU_COMPAT=true
VIGIL_KAFKA__PARTITIONS=$partitions
VIGIL_REDIS__URL=redis://127.0.0.1:$VIGIL_REDIS_PORT
ENV
log "stack up: $(tr '\n' ' ' <"$VIGIL_RUN_DIR/stack.env")"
