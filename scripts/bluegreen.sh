#!/usr/bin/env bash
# Blue/green control for the Vigil inference Service.
#
# Two Deployments, inference-blue and inference-green, differ only in their `slot` label;
# the `inference` Service selects app.kubernetes.io/name=inference plus exactly one slot.
# Switching traffic is a patch of that one selector label, and the slot that was live
# before is recorded in the annotation vigil.io/previous-slot, which is what `rollback`
# switches back to.
#
# Usage:
#   scripts/bluegreen.sh [options] status [--short]
#   scripts/bluegreen.sh [options] switch <blue|green>
#   scripts/bluegreen.sh [options] rollback
#
# Options (anywhere on the command line):
#   -n, --namespace NS   namespace of the Service/Deployments (default: kubectl's current)
#   --context CTX        kubeconfig context to use
#   --service NAME       Service to switch (default: inference; Deployments are NAME-<slot>)
#   --local FILE         offline: read the Service from FILE (a single Service or a rendered
#                        multi-document manifest containing it), print the result as YAML
#                        on stdout (`kubectl patch --local`), touch no cluster
#   --force              switch even if the target slot has no ready pods
#   --timeout DURATION   how long to wait for the target slot's rollout (default: 180s)
#   --short              status: print only the live slot
#   -h, --help           this help
#
# Environment: KUBECTL (default: kubectl).
#
# Examples:
#   scripts/bluegreen.sh -n vigil-production status
#   scripts/bluegreen.sh -n vigil-production switch green
#   scripts/bluegreen.sh -n vigil-production rollback
#   kubectl kustomize k8s/overlays/staging > /tmp/staging.yaml
#   scripts/bluegreen.sh switch green --local /tmp/staging.yaml > /tmp/inference-green.yaml
set -euo pipefail

readonly PREVIOUS_ANNOTATION="vigil.io/previous-slot"
readonly SWITCHED_AT_ANNOTATION="vigil.io/switched-at"

KUBECTL="${KUBECTL:-kubectl}"
SERVICE="inference"
NAMESPACE=""
CONTEXT=""
LOCAL_FILE=""
FORCE=0
SHORT=0
TIMEOUT="180s"

log() { printf 'bluegreen: %s\n' "$*" >&2; }
die() { printf 'bluegreen: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo pipefail$/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
usage_error() { printf 'bluegreen: %s (see %s --help)\n' "$*" "$0" >&2; exit 2; }

is_slot() { [[ "${1:-}" == "blue" || "${1:-}" == "green" ]]; }
other_slot() {
  case "$1" in
    blue) echo green ;;
    green) echo blue ;;
    *) die "not a slot: '$1' (expected blue or green)" ;;
  esac
}

# kubectl against the cluster, with --namespace/--context when given.
kc() {
  local args=()
  [[ -n "$CONTEXT" ]] && args+=(--context "$CONTEXT")
  [[ -n "$NAMESPACE" ]] && args+=(--namespace "$NAMESPACE")
  "$KUBECTL" ${args[@]+"${args[@]}"} "$@"
}

require_kubectl() {
  command -v "$KUBECTL" >/dev/null 2>&1 || die "kubectl not found (looked for '$KUBECTL'); install it or set KUBECTL"
}

# --- offline (--local) helpers ---------------------------------------------------------

LOCAL_SERVICE_FILE=""
cleanup() { [[ -n "$LOCAL_SERVICE_FILE" ]] && rm -f "$LOCAL_SERVICE_FILE"; return 0; }
trap cleanup EXIT

# Copy the one `kind: Service` document named $SERVICE out of a (possibly multi-document)
# YAML file into a temporary file, so that `kubectl patch --local` touches nothing else.
# Works on kubectl/kustomize-rendered YAML (top-level keys unindented).
prepare_local_file() {
  [[ -f "$LOCAL_FILE" ]] || die "--local: no such file: $LOCAL_FILE"
  LOCAL_SERVICE_FILE="$(mktemp "${TMPDIR:-/tmp}/bluegreen.XXXXXX")"
  local found
  found="$(awk -v want="$SERVICE" -v out="$LOCAL_SERVICE_FILE" -v sq="'" '
    function flush() {
      if (is_service && name == want) { printf "%s", buf > out; found++ }
      buf = ""; is_service = 0; name = ""; in_meta = 0; meta_indent = -1
    }
    BEGIN { found = 0; meta_indent = -1 }
    /^---/ { flush(); next }
    {
      buf = buf $0 "\n"
      if ($0 ~ /^kind:[ \t]*"?Service"?[ \t]*$/) is_service = 1
      if ($0 ~ /^metadata:[ \t]*$/) { in_meta = 1; next }
      if (in_meta) {
        if ($0 ~ /^[^ \t#]/) { in_meta = 0; next }        # next top-level key
        if ($0 ~ /^[ \t]*(#.*)?$/) next                   # blank or comment
        match($0, /^ +/); indent = RLENGTH
        if (meta_indent < 0) meta_indent = indent
        if (indent == meta_indent && $0 ~ /^ +name:/) {
          v = $0; sub(/^ +name:[ \t]*/, "", v); sub(/[ \t]+(#.*)?$/, "", v)
          gsub(/"/, "", v); gsub(sq, "", v)
          name = v
        }
      }
    }
    END { flush(); print found }
  ' "$LOCAL_FILE")"
  case "$found" in
    1) ;;
    0) die "--local: no Service named '$SERVICE' in $LOCAL_FILE" ;;
    *) die "--local: $found Services named '$SERVICE' in $LOCAL_FILE (render one namespace at a time)" ;;
  esac
}

# Read a JSONPath expression from the Service (local file or cluster).
service_field() {
  local path="$1"
  if [[ -n "$LOCAL_FILE" ]]; then
    "$KUBECTL" patch --local -f "$LOCAL_SERVICE_FILE" --type=merge -p '{}' -o "jsonpath=$path"
  else
    kc get service "$SERVICE" -o "jsonpath=$path"
  fi
}

live_slot() { service_field '{.spec.selector.slot}'; }
previous_slot() { service_field "{.metadata.annotations.vigil\\.io/previous-slot}"; }
switched_at() { service_field "{.metadata.annotations.vigil\\.io/switched-at}"; }

# --- commands ----------------------------------------------------------------------------

cmd_status() {
  local live previous when
  live="$(live_slot)" || die "cannot read service/$SERVICE"
  if [[ "$SHORT" -eq 1 ]]; then
    [[ -n "$live" ]] || die "service/$SERVICE selects no slot"
    echo "$live"
    return 0
  fi
  previous="$(previous_slot)"
  when="$(switched_at)"
  local where="${NAMESPACE:-<current namespace>}"
  [[ -n "$LOCAL_FILE" ]] && where="$LOCAL_FILE"
  echo "service/$SERVICE ($where)"
  echo "  live slot:     ${live:-<none>}"
  echo "  previous slot: ${previous:-<none>}${when:+ (switched at $when)}"
  is_slot "$live" || log "warning: service/$SERVICE does not select a valid slot"
  [[ -n "$LOCAL_FILE" ]] && return 0

  printf '\n%-7s %-22s %-8s %s\n' "SLOT" "DEPLOYMENT" "READY" "IMAGE"
  local slot info ready desired image marker
  for slot in blue green; do
    marker=""
    [[ "$slot" == "$live" ]] && marker="*"
    if info="$(kc get deployment "$SERVICE-$slot" \
        -o 'jsonpath={.status.readyReplicas} {.spec.replicas} {.spec.template.spec.containers[0].image}' 2>/dev/null)"; then
      # readyReplicas is absent (not 0) when no pod is ready.
      if [[ "$info" == " "* ]]; then ready=0; info="${info# }"; else ready="${info%% *}"; info="${info#* }"; fi
      desired="${info%% *}"
      image="${info#* }"
      printf '%-7s %-22s %-8s %s\n' "$slot$marker" "$SERVICE-$slot" "$ready/$desired" "$image"
    else
      printf '%-7s %-22s %-8s %s\n' "$slot$marker" "$SERVICE-$slot" "-" "(not found)"
    fi
  done
}

# Refuse to send traffic to a slot that cannot serve it.
check_slot_ready() {
  local target="$1" deployment="$SERVICE-$1" ready
  kc get deployment "$deployment" >/dev/null || die "deployment/$deployment not found"
  log "waiting for deployment/$deployment to be rolled out (timeout $TIMEOUT)"
  kc rollout status "deployment/$deployment" --timeout="$TIMEOUT" >&2 \
    || die "deployment/$deployment is not rolled out; not switching (use --force to override)"
  ready="$(kc get deployment "$deployment" -o 'jsonpath={.status.readyReplicas}')"
  [[ "${ready:-0}" -ge 1 ]] \
    || die "deployment/$deployment has no ready pods; not switching to $target (use --force to override)"
}

do_switch() {
  local target="$1" live patch now
  is_slot "$target" || usage_error "switch: slot must be 'blue' or 'green', got '${target}'"
  live="$(live_slot)" || die "cannot read service/$SERVICE"
  is_slot "$live" || die "service/$SERVICE does not select a slot (selector.slot='${live}'); refusing to switch"

  if [[ "$live" == "$target" ]]; then
    log "service/$SERVICE already sends traffic to $target; nothing to do"
    if [[ -n "$LOCAL_FILE" ]]; then
      "$KUBECTL" patch --local -f "$LOCAL_SERVICE_FILE" --type=merge -p '{}' -o yaml
    fi
    return 0
  fi

  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # A merge patch only touches the `slot` key of the selector.
  patch="$(printf '{"metadata":{"annotations":{"%s":"%s","%s":"%s"}},"spec":{"selector":{"slot":"%s"}}}' \
    "$PREVIOUS_ANNOTATION" "$live" "$SWITCHED_AT_ANNOTATION" "$now" "$target")"

  if [[ -n "$LOCAL_FILE" ]]; then
    log "switching service/$SERVICE from $live to $target (offline, $LOCAL_FILE)"
    "$KUBECTL" patch --local -f "$LOCAL_SERVICE_FILE" --type=merge -p "$patch" -o yaml
    return 0
  fi

  if [[ "$FORCE" -eq 1 ]]; then
    log "--force: not checking that $SERVICE-$target is ready"
  else
    check_slot_ready "$target"
  fi
  log "switching service/$SERVICE from $live to $target"
  kc patch service "$SERVICE" --type=merge -p "$patch" >&2
  local now_live
  now_live="$(live_slot)"
  [[ "$now_live" == "$target" ]] || die "service/$SERVICE selects '$now_live' after the patch, expected '$target'"
  log "service/$SERVICE now sends traffic to $target (previous: $live; roll back with: $0${NAMESPACE:+ -n $NAMESPACE} rollback)"
}

cmd_rollback() {
  local live previous
  live="$(live_slot)" || die "cannot read service/$SERVICE"
  previous="$(previous_slot)"
  [[ -n "$previous" ]] || die "service/$SERVICE has no $PREVIOUS_ANNOTATION annotation: nothing to roll back to (use 'switch <slot>')"
  is_slot "$previous" || die "service/$SERVICE has an invalid $PREVIOUS_ANNOTATION annotation: '$previous'"
  [[ "$previous" != "$live" ]] || die "service/$SERVICE already sends traffic to the previous slot ($previous)"
  log "rolling back service/$SERVICE from $live to $previous"
  do_switch "$previous"
}

# --- main --------------------------------------------------------------------------------

main() {
  local positional=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h|--help) usage; exit 0 ;;
      -n|--namespace) [[ $# -ge 2 ]] || usage_error "$1 needs a value"; NAMESPACE="$2"; shift 2 ;;
      --namespace=*) NAMESPACE="${1#*=}"; shift ;;
      --context) [[ $# -ge 2 ]] || usage_error "$1 needs a value"; CONTEXT="$2"; shift 2 ;;
      --context=*) CONTEXT="${1#*=}"; shift ;;
      --service) [[ $# -ge 2 ]] || usage_error "$1 needs a value"; SERVICE="$2"; shift 2 ;;
      --service=*) SERVICE="${1#*=}"; shift ;;
      --local) [[ $# -ge 2 ]] || usage_error "$1 needs a file"; LOCAL_FILE="$2"; shift 2 ;;
      --local=*) LOCAL_FILE="${1#*=}"; shift ;;
      --timeout) [[ $# -ge 2 ]] || usage_error "$1 needs a value"; TIMEOUT="$2"; shift 2 ;;
      --timeout=*) TIMEOUT="${1#*=}"; shift ;;
      --force) FORCE=1; shift ;;
      --short) SHORT=1; shift ;;
      --) shift; positional+=("$@"); break ;;
      -*) usage_error "unknown option: $1" ;;
      *) positional+=("$1"); shift ;;
    esac
  done
  [[ ${#positional[@]} -ge 1 ]] || usage_error "missing command"

  require_kubectl
  [[ -n "$LOCAL_FILE" ]] && prepare_local_file

  local command="${positional[0]}"
  case "$command" in
    status)
      [[ ${#positional[@]} -eq 1 ]] || usage_error "status takes no arguments"
      cmd_status ;;
    switch)
      [[ ${#positional[@]} -eq 2 ]] || usage_error "usage: switch <blue|green>"
      do_switch "${positional[1]}" ;;
    rollback)
      [[ ${#positional[@]} -eq 1 ]] || usage_error "rollback takes no arguments"
      cmd_rollback ;;
    *) usage_error "unknown command: $command" ;;
  esac
}

main "$@"
