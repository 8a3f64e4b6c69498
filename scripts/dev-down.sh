#!/usr/bin/env bash
# Stops the local stack started by dev-up.sh. `--clean` also deletes its data.
source "$(dirname "$0")/lib.sh"
if [ -f "$VIGIL_RUN_DIR/tansu/tansu.pid" ]; then
  kill "$(cat "$VIGIL_RUN_DIR/tansu/tansu.pid")" 2>/dev/null || true
  rm -f "$VIGIL_RUN_DIR/tansu/tansu.pid"
fi
redis-cli -p "$VIGIL_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
if [ "${1:-}" = "--clean" ]; then rm -rf "$VIGIL_RUN_DIR/tansu" "$VIGIL_RUN_DIR/redis"; fi
log "stack down"
