# Starting and stopping Vigil's five services as local processes (sourced by demo.sh).
# Requires lib.sh and $VIGIL_RUN_DIR/stack.env; services log JSON to $DEMO_DIR/logs.

# Ports of the local run: gRPC 5005x, admin 910x.
declare -A GRPC_PORT=([ingest]=50051 [feature-service]=50052 [inference]=50053 [trainer]=50054 [drift-monitor]=50055)
declare -A ADMIN_PORT=([ingest]=9101 [feature-service]=9102 [inference]=9103 [trainer]=9104 [drift-monitor]=9105)

start_service() {
  local name=$1
  shift
  mkdir -p "$DEMO_DIR/logs" "$DEMO_DIR/pids"
  (
    set -a
    # shellcheck disable=SC1091
    source "$VIGIL_RUN_DIR/stack.env"
    set +a
    export VIGIL_SERVER__GRPC_ADDR="127.0.0.1:${GRPC_PORT[$name]}"
    export VIGIL_SERVER__ADMIN_ADDR="127.0.0.1:${ADMIN_PORT[$name]}"
    export VIGIL_LAKE__PATH="$DEMO_DIR/lake" VIGIL_REGISTRY__PATH="$DEMO_DIR/registry"
    export VIGIL_FEATURES__ENDPOINT="http://127.0.0.1:${GRPC_PORT[feature-service]}"
    export VIGIL_DRIFT__PUBLISH_INTERVAL_SECS=2
    for kv in "$@"; do export "${kv?}"; done
    exec "$CARGO_TARGET_DIR/debug/vigil-$name" >>"$DEMO_DIR/logs/$name.log" 2>&1
  ) &
  echo $! >"$DEMO_DIR/pids/$name.pid"
}

# Waits for grpc.health.v1 SERVING (never a blind sleep).
wait_healthy() {
  local name=$1 port=${GRPC_PORT[$1]} i
  for ((i = 0; i < 600; i++)); do
    if "$GRPCURL" -plaintext -max-time 1 "127.0.0.1:$port" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; then
      return 0
    fi
    if ! kill -0 "$(cat "$DEMO_DIR/pids/$name.pid")" 2>/dev/null; then
      tail -20 "$DEMO_DIR/logs/$name.log" >&2
      die "$name exited during start-up"
    fi
    sleep 0.1
  done
  die "$name not healthy after 60 s (see $DEMO_DIR/logs/$name.log)"
}

stop_services() {
  local f
  for f in "$DEMO_DIR"/pids/*.pid; do
    [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$DEMO_DIR"/pids/*.pid; do
    [ -f "$f" ] || continue
    for _ in $(seq 100); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$f"
  done
}

# Reads a Prometheus counter (summed over labels) from a service's admin port.
metric() {
  python3 - "$1" "$2" <<'PY'
import sys, urllib.request
port, name = sys.argv[1], sys.argv[2]
text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
total = 0.0
for line in text.splitlines():
    if line.startswith(name + "{") or line.startswith(name + " "):
        total += float(line.rsplit(" ", 1)[1])
print(int(total))
PY
}
