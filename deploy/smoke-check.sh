#!/usr/bin/env bash
# Smoke check of a Vigil gRPC service running in a cluster: port-forward to it and call
# grpc.health.v1.Health/Check (the same RPC the Kubernetes gRPC probes use), expecting
# SERVING. Used by .github/workflows/cd.yml; handy by hand too.
#
# Usage: deploy/smoke-check.sh [-n NS] [--context CTX] [--attempts N] [--health-service S] TARGET
#   TARGET   anything `kubectl port-forward` accepts, e.g. svc/inference (the live slot)
#            or deployment/inference-green (one slot, before switching traffic to it)
#   --health-service S   the health service name to ask about (default: "" = whole server)
#   --cacert F --cert F --key F   TLS with a client certificate, for servers with [server.tls]
#            (the production overlay); also from SMOKE_CACERT, SMOKE_CERT, SMOKE_KEY. Health
#            checks need no bearer token. --servername N: the name the server's certificate
#            carries (default: the TARGET's name, e.g. inference).
#
# Needs kubectl and grpcurl. The health proto is written to a temp dir, so the check
# works whether or not the server enables gRPC reflection.
set -euo pipefail

KUBECTL="${KUBECTL:-kubectl}"
GRPCURL="${GRPCURL:-grpcurl}"
NAMESPACE=""
CONTEXT=""
ATTEMPTS=12
HEALTH_SERVICE=""
TARGET=""
GRPC_PORT=50051
CACERT="${SMOKE_CACERT:-}"
CERT="${SMOKE_CERT:-}"
KEY="${SMOKE_KEY:-}"
SERVERNAME=""

die() { printf 'smoke-check: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'smoke-check: %s\n' "$*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    -n|--namespace) NAMESPACE="${2:?}"; shift 2 ;;
    --context) CONTEXT="${2:?}"; shift 2 ;;
    --attempts) ATTEMPTS="${2:?}"; shift 2 ;;
    --health-service) HEALTH_SERVICE="${2-}"; shift 2 ;;
    --cacert) CACERT="${2:?}"; shift 2 ;;
    --cert) CERT="${2:?}"; shift 2 ;;
    --key) KEY="${2:?}"; shift 2 ;;
    --servername) SERVERNAME="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo pipefail$/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    -*) die "unknown option: $1" ;;
    *) [[ -z "$TARGET" ]] || die "only one TARGET, got '$TARGET' and '$1'"; TARGET="$1"; shift ;;
  esac
done
[[ -n "$TARGET" ]] || die "missing TARGET (e.g. svc/inference)"
command -v "$KUBECTL" >/dev/null 2>&1 || die "kubectl not found"
command -v "$GRPCURL" >/dev/null 2>&1 || die "grpcurl not found"

kargs=()
[[ -n "$CONTEXT" ]] && kargs+=(--context "$CONTEXT")
[[ -n "$NAMESPACE" ]] && kargs+=(--namespace "$NAMESPACE")

work="$(mktemp -d)"
pf_pid=""
# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
  if [[ -n "$pf_pid" ]] && kill -0 "$pf_pid" 2>/dev/null; then
    kill "$pf_pid" 2>/dev/null || true
    wait "$pf_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/grpc/health/v1"
cat > "$work/grpc/health/v1/health.proto" <<'PROTO'
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
}
PROTO

# Let kubectl pick a free local port and report it.
log "port-forwarding to $TARGET:$GRPC_PORT${NAMESPACE:+ in $NAMESPACE}"
"$KUBECTL" ${kargs[@]+"${kargs[@]}"} port-forward "$TARGET" ":$GRPC_PORT" >"$work/pf.log" 2>&1 &
pf_pid=$!
port=""
for _ in $(seq 1 60); do
  port="$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9][0-9]*\) -> .*/\1/p' "$work/pf.log" | head -n1)"
  [[ -n "$port" ]] && break
  kill -0 "$pf_pid" 2>/dev/null || { cat "$work/pf.log" >&2; die "kubectl port-forward to $TARGET exited"; }
  sleep 0.5
done
[[ -n "$port" ]] || { cat "$work/pf.log" >&2; die "kubectl port-forward to $TARGET did not come up"; }

request="$(printf '{"service":"%s"}' "$HEALTH_SERVICE")"
transport=(-plaintext)
if [[ -n "$CACERT" ]]; then
  name="${SERVERNAME:-${TARGET#*/}}"
  name="${name%-blue}"; name="${name%-green}"
  transport=(-cacert "$CACERT" -servername "$name")
  if [[ -n "$CERT" || -n "$KEY" ]]; then
    [[ -n "$CERT" && -n "$KEY" ]] || die "--cert and --key go together"
    transport+=(-cert "$CERT" -key "$KEY")
  fi
fi
for attempt in $(seq 1 "$ATTEMPTS"); do
  if out="$("$GRPCURL" "${transport[@]}" -max-time 5 \
        -import-path "$work" -proto grpc/health/v1/health.proto \
        -d "$request" "127.0.0.1:$port" grpc.health.v1.Health/Check 2>&1)"; then
    if grep -Eq '"status":[[:space:]]*"SERVING"' <<<"$out"; then
      log "$TARGET is SERVING (attempt $attempt/$ATTEMPTS)"
      exit 0
    fi
  fi
  log "attempt $attempt/$ATTEMPTS: $TARGET not SERVING yet: $(tr '\n' ' ' <<<"$out")"
  kill -0 "$pf_pid" 2>/dev/null || { cat "$work/pf.log" >&2; die "kubectl port-forward to $TARGET died"; }
  sleep 5
done
die "$TARGET did not report SERVING after $ATTEMPTS attempts"
