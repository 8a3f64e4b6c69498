#!/usr/bin/env bash
# The test command: lints, unit and integration tests, the end-to-end test on real Redis and a
# real Kafka-protocol broker (a dedicated, fresh stack under run/test), and the offline
# Kubernetes manifest checks. Installs what is missing first (scripts/setup.sh).
source "$(dirname "$0")/lib.sh"
cd "$VIGIL_ROOT"

"$VIGIL_ROOT/scripts/setup.sh"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
log "cargo deny (bans, licenses, sources; policy in deny.toml)"
cargo deny --log-level error check bans licenses sources

# A fresh stack for the tests, on its own ports, so a demo's data never leaks into them.
export VIGIL_RUN_DIR="$VIGIL_ROOT/run/test" VIGIL_REDIS_PORT="${VIGIL_TEST_REDIS_PORT:-26379}" \
  VIGIL_KAFKA_PORT="${VIGIL_TEST_KAFKA_PORT:-29092}"
"$VIGIL_ROOT/scripts/dev-down.sh" --clean >/dev/null 2>&1 || true
trap '"$VIGIL_ROOT/scripts/dev-down.sh" --clean' EXIT
"$VIGIL_ROOT/scripts/dev-up.sh"
set -a
# shellcheck disable=SC1091
source "$VIGIL_RUN_DIR/stack.env"
set +a

log "building the binaries the end-to-end tests run"
cargo build --workspace --bins --quiet
log "tests"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --no-fail-fast
else
  # The end-to-end tests share the broker's topics: one at a time (.config/nextest.toml does
  # the same under nextest).
  cargo test --workspace --no-fail-fast --exclude e2e
  cargo test -p e2e --no-fail-fast -- --test-threads=1
fi

log "kubernetes manifests (offline)"
bash "$VIGIL_ROOT/scripts/check-k8s.sh"
log "all tests passed"
