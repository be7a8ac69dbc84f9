#!/usr/bin/env bash
# Instructions a request: `GET Patient/{id}` with its bearer token, and a bare
# handler given the same request that answers the same bytes, each counted in
# user space by valgrind's callgrind over REQUESTS requests on one connection
# (2,000 by default), after 50 that warm the token cache. Unlike requests a
# second, the count does not move with what else the machine is doing, so a
# change to the request path shows in it exactly.   bash bench/instructions.sh
#
# Under valgrind, SHA-256 runs without the CPU's SHA extensions: the inspector's
# fingerprint of each request's token counts about 3,600 instructions here that
# natively take a few hundred.
source "$(dirname "$0")/common.sh"
command -v valgrind >/dev/null || { echo "valgrind is missing: run bash scripts/setup.sh --bench" >&2; exit 1; }
REQUESTS=${REQUESTS:-2000}
COUNTS=$(mktemp -d)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$COUNTS" "$BENCH_LOGS"' EXIT

# under_callgrind NAME READY_URL COMMAND...: COMMAND under callgrind, counting
# nothing yet, once READY_URL answers; its pid in CALLGRIND_PID.
under_callgrind() {
  local name=$1 ready=$2; shift 2
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$COUNTS/$name.%p" "$@" \
    >"$BENCH_LOGS/$name.log" 2>&1 &
  CALLGRIND_PID=$!
  PIDS+=("$CALLGRIND_PID")
  until curl -fs -o /dev/null "$ready"; do
    kill -0 "$CALLGRIND_PID" 2>/dev/null || { tail -n 20 "$BENCH_LOGS/$name.log" >&2; exit 1; }
    sleep 0.2
  done
}

# count NAME LABEL URL HEADER: 50 requests to warm up, then REQUESTS counted;
# prints the instructions a request of the server started last by under_callgrind.
count() {
  local name=$1 label=$2 url=$3 header=$4 total
  requests 50 "$url" "$header"
  callgrind_control -i on "$CALLGRIND_PID" >/dev/null 2>&1
  requests "$REQUESTS" "$url" "$header"
  callgrind_control -d "$CALLGRIND_PID" >/dev/null 2>&1
  total=$(awk '/^totals:/ {print $2}' "$COUNTS/$name.$CALLGRIND_PID.1")
  printf '%-34s %8d instructions a request\n' "$label" $((total / REQUESTS))
  echo $((total / REQUESTS)) >"$COUNTS/$name.count"
}

# requests N URL HEADER: N requests on one connection (curl reuses it).
requests() {
  local urls=()
  for _ in $(seq "$1"); do urls+=(-o /dev/null "$2"); done
  curl -fs -H "$3" "${urls[@]}"
}

READ="http://127.0.0.1:$MOCK_PORT/ccri-fhir/R4/Patient/1"
under_callgrind read "http://127.0.0.1:$MOCK_PORT/ccri-fhir/R4/metadata" "$SERVER_BIN/ccri-mock" --port "$MOCK_PORT"
AUTH="Authorization: Bearer $(token_of "$MOCK_PORT")"
curl -fs -D "$BENCH_LOGS/copy.headers" -o "$BENCH_LOGS/copy.body" -H "$AUTH" "$READ"
count read "GET Patient/{id}" "$READ" "$AUTH"
COPY="http://127.0.0.1:$BARE_PORT/bare/copy"
under_callgrind copy "$COPY" "$SERVER_BIN/examples/bare" "$BARE_PORT" "$BENCH_LOGS/copy.headers" "$BENCH_LOGS/copy.body"
count copy "bare, same request and answer" "$COPY" "$AUTH"
echo "GET Patient/{id} / bare: $(awk -v a="$(cat "$COUNTS/read.count")" -v b="$(cat "$COUNTS/copy.count")" 'BEGIN {printf "%.2f", a / b}')×"
