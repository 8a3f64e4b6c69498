#!/usr/bin/env bash
# Offline validation of Vigil's Kubernetes manifests (no cluster needed):
#   1. renders k8s/base and the overlays (staging, production, kind) with `kubectl kustomize`
#   2. checks the renders with scripts/check_k8s.py (services, probes, resources, security
#      context, config references, Redis/Kafka, topics Job, volumes, kind wiring)
#   3. exercises the blue/green switch offline: scripts/bluegreen.sh switch/rollback
#      --local on the rendered inference Service, checking the selector each time
# Exits non-zero, saying what failed, on any failure. Used by CI (.github/workflows/ci.yml).
#
# Environment: KEEP_RENDERS=1 keeps the rendered files (their directory is printed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

fail() { printf 'check-k8s: FAIL: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    return 1
  fi
}

ensure_kubectl() {
  if ! command -v kubectl >/dev/null 2>&1; then
    printf 'check-k8s: kubectl not found, trying: apt-get install -y kubectl\n' >&2
    if command -v apt-get >/dev/null 2>&1; then
      as_root apt-get install -y kubectl >&2 \
        || { as_root apt-get update >&2 && as_root apt-get install -y kubectl >&2; } \
        || true
    fi
  fi
  command -v kubectl >/dev/null 2>&1 \
    || fail "kubectl is required and could not be installed with apt-get (no package 'kubectl' in the configured apt sources?). Install kubectl >= 1.27 (https://kubernetes.io/docs/tasks/tools/) and re-run."
  kubectl kustomize --help >/dev/null 2>&1 \
    || fail "$(command -v kubectl) has no 'kustomize' subcommand; kubectl >= 1.14 is required"
}

ensure_pyyaml() {
  command -v python3 >/dev/null 2>&1 || fail "python3 is required"
  python3 -c 'import yaml' 2>/dev/null && return 0
  printf 'check-k8s: PyYAML not found, installing it\n' >&2
  python3 -m pip install --quiet pyyaml >&2 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages pyyaml >&2 2>/dev/null \
    || as_root apt-get install -y python3-yaml >&2 \
    || true
  python3 -c 'import yaml' 2>/dev/null \
    || fail "PyYAML is required (python3 -m pip install pyyaml, or apt-get install python3-yaml)"
}

ensure_kubectl
ensure_pyyaml
step "using $(kubectl version --client 2>/dev/null | tr '\n' ' ')"

OUT="$(mktemp -d "${TMPDIR:-/tmp}/vigil-k8s.XXXXXX")"
cleanup() {
  if [[ "${KEEP_RENDERS:-0}" == "1" ]]; then
    printf 'check-k8s: renders kept in %s\n' "$OUT"
  else
    rm -rf "$OUT"
  fi
}
trap cleanup EXIT

# 1. Render ------------------------------------------------------------------------------
declare -A TARGETS=(
  [base]=k8s/base
  [staging]=k8s/overlays/staging
  [production]=k8s/overlays/production
  [kind]=k8s/overlays/kind
)
RENDERED=()
for name in base staging production kind; do
  dir="${TARGETS[$name]}"
  step "kubectl kustomize $dir"
  [[ -f "$dir/kustomization.yaml" ]] || fail "$dir/kustomization.yaml not found"
  if ! kubectl kustomize "$dir" >"$OUT/$name.yaml" 2>"$OUT/$name.err"; then
    cat "$OUT/$name.err" >&2
    fail "kubectl kustomize $dir failed"
  fi
  RENDERED+=("$OUT/$name.yaml")
done

# 2. Validate the renders ----------------------------------------------------------------
step "python3 scripts/check_k8s.py (rendered manifests)"
python3 scripts/check_k8s.py --kind-config deploy/kind-config.yaml "${RENDERED[@]}" \
  || fail "rendered manifests failed validation (see FAIL lines above)"

# 3. Blue/green, offline -----------------------------------------------------------------
step "blue/green switch and rollback, offline (scripts/bluegreen.sh --local)"
bluegreen() { bash scripts/bluegreen.sh "$@"; }
expect_slot() { python3 scripts/check_k8s.py --expect-slot "$@"; }

python3 scripts/check_k8s.py --extract Service/inference "$OUT/base.yaml" >"$OUT/inference-service.yaml" \
  || fail "could not extract Service/inference from the base render"
expect_slot blue "$OUT/inference-service.yaml" || fail "the base inference Service should start on the blue slot"

live="$(bluegreen status --short --local "$OUT/inference-service.yaml")" || fail "bluegreen.sh status failed"
[[ "$live" == "blue" ]] || fail "bluegreen.sh status --short says '$live', expected 'blue'"

bluegreen switch green --local "$OUT/inference-service.yaml" >"$OUT/inference-green.yaml" \
  || fail "bluegreen.sh switch green --local failed"
expect_slot green --expect-previous blue "$OUT/inference-green.yaml" \
  || fail "after 'switch green' the Service should select slot green (previous: blue)"

bluegreen rollback --local "$OUT/inference-green.yaml" >"$OUT/inference-rolled-back.yaml" \
  || fail "bluegreen.sh rollback --local failed"
expect_slot blue --expect-previous green "$OUT/inference-rolled-back.yaml" \
  || fail "after 'rollback' the Service should select slot blue again (previous: green)"

# The same on a whole rendered overlay (the Service is picked out of the multi-doc file).
bluegreen switch green --local "$OUT/staging.yaml" >"$OUT/staging-inference-green.yaml" \
  || fail "bluegreen.sh switch green --local on the staging render failed"
expect_slot green --expect-previous blue "$OUT/staging-inference-green.yaml" \
  || fail "switching the staging render should select slot green"
grep -q '^  namespace: vigil-staging$' "$OUT/staging-inference-green.yaml" \
  || fail "the switched staging Service lost its namespace"

# Misuse must fail.
if bluegreen switch purple --local "$OUT/inference-service.yaml" >/dev/null 2>&1; then
  fail "bluegreen.sh accepted an invalid slot 'purple'"
fi
if bluegreen rollback --local "$OUT/inference-service.yaml" >/dev/null 2>&1; then
  fail "bluegreen.sh rollback succeeded without a recorded previous slot"
fi
echo "ok   blue/green: blue -> green -> rollback -> blue; invalid slot and rollback-without-history rejected"

echo "check-k8s: all checks passed"
