#!/usr/bin/env bash
# Runs a command while a ccri-mock listens on PORT, and stops the mock afterwards,
# whether the command passed or failed.
#   scripts/with-mock.sh PORT [ccri-mock args…] -- COMMAND…
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
port=$1; shift
mock_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do mock_args+=("$1"); shift; done
shift
cargo build -q -p ccri-mock --bin ccri-mock
log=$(mktemp)
"$(target_dir)/debug/ccri-mock" --port "$port" "${mock_args[@]}" >"$log" 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null || true; wait $mock 2>/dev/null || true; rm -f "$log"' EXIT
wait_for "http://127.0.0.1:$port/ccri-fhir/R4/metadata" $mock "$log"
export CCRI_MOCK_FHIR="http://127.0.0.1:$port/ccri-fhir/R4"
"$@"
