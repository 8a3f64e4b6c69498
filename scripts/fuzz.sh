#!/usr/bin/env bash
# Property-based malformed input at scale (issue 9): the proto properties of `domain` and the
# JSON-lines and CSV properties of `datagen`, release build, with enough cases that they generate
# VIGIL_FUZZ_INPUTS inputs in all (default 1 000 000). The test command runs the same
# properties with 10 000 cases each.
#
# Inputs per case: 1 for each property, 2 for `label_and_profile_bytes` (a label and a
# profile): 11 per case over the 10 properties (a CSV case is one file of a header and one or
# two rows).
source "$(dirname "$0")/lib.sh"
cd "$VIGIL_ROOT"

INPUTS="${VIGIL_FUZZ_INPUTS:-1000000}"
PER_CASE=11
CASES=$(((INPUTS + PER_CASE - 1) / PER_CASE))

log "malformed inputs: $CASES cases per property, $((CASES * PER_CASE)) inputs in all"
start=$(date +%s)
export PROPTEST_CASES="$CASES"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --release --no-fail-fast -p domain -p datagen -E 'test(malformed::)'
else
  cargo test --release --no-fail-fast -p domain -p datagen --test it malformed::
fi
log "done in $(($(date +%s) - start)) s (build included): $((CASES * PER_CASE)) inputs, 0 failures"
