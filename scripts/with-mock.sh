#!/usr/bin/env bash
# Runs a command while a ccri-mock listens on PORT, and stops the mock afterwards,
# whether the command passed or failed. The command finds the mock's FHIR base in
# CCRI_MOCK_FHIR, or in the variable --env names (so runs can be nested).
#   scripts/with-mock.sh PORT [--env NAME] [ccri-mock args…] -- COMMAND…
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
port=$1; shift
variable=CCRI_MOCK_FHIR
if [ "${1:-}" = "--env" ]; then variable=$2; shift 2; fi
mock_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do mock_args+=("$1"); shift; done
shift
cargo build -q -p ccri-mock --bin ccri-mock
log=$(mktemp)
"$(target_dir)/debug/ccri-mock" --port "$port" "${mock_args[@]}" >"$log" 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null || true; wait $mock 2>/dev/null || true; rm -f "$log"' EXIT
wait_for "http://127.0.0.1:$port/ccri-fhir/R4/metadata" $mock "$log"
export "$variable=http://127.0.0.1:$port/ccri-fhir/R4"
"$@"
