# Shared by the bench scripts: build release binaries, start servers on loopback,
# stop them on exit, run bounded wrk loads. wrk and the reference servers' npm
# packages come from `bash scripts/setup.sh --bench`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/common.sh
command -v wrk >/dev/null || { echo "wrk is missing: run bash scripts/setup.sh --bench" >&2; exit 1; }
cargo build --profile server -q -p ccri-mock --bin ccri-mock --example bare
SERVER_BIN=$(target_dir)/server
PIDS=()
BENCH_LOGS=$(mktemp -d)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$BENCH_LOGS"' EXIT
MOCK_PORT=${MOCK_PORT:-18080}
BARE_PORT=${BARE_PORT:-18099}
DURATION=${DURATION:-10s}

# start_servers [ccri-mock args...]
start_servers() {
  "$SERVER_BIN/ccri-mock" --port "$MOCK_PORT" "$@" >"$BENCH_LOGS/ccri-mock.log" 2>&1 &
  PIDS+=($!)
  "$SERVER_BIN/examples/bare" "$BARE_PORT" >"$BENCH_LOGS/bare.log" 2>&1 &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$MOCK_PORT/ccri-fhir/R4/metadata" "${PIDS[-2]}" "$BENCH_LOGS/ccri-mock.log"
  wait_for "http://127.0.0.1:$BARE_PORT/bare" "${PIDS[-1]}" "$BENCH_LOGS/bare.log"
}

# another_mock NAME PORT [ccri-mock args...]: one more mock, stopped on exit.
another_mock() {
  local name=$1 port=$2; shift 2
  "$SERVER_BIN/ccri-mock" --port "$port" "$@" >"$BENCH_LOGS/$name.log" 2>&1 &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$port/ccri-fhir/R4/metadata" "${PIDS[-1]}" "$BENCH_LOGS/$name.log"
}

# copy_answer PORT URL [curl args...]: another bare server, on PORT, whose
# GET /bare/copy answers what URL answered (the same headers and body), so a
# ccri-mock figure can be read beside the same bytes served without its work.
copy_answer() {
  local port=$1 url=$2; shift 2
  curl -fs -D "$BENCH_LOGS/copy.headers" -o "$BENCH_LOGS/copy.body" "$@" "$url"
  "$SERVER_BIN/examples/bare" "$port" "$BENCH_LOGS/copy.headers" "$BENCH_LOGS/copy.body" >"$BENCH_LOGS/copy.log" 2>&1 &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$port/bare/copy" "${PIDS[-1]}" "$BENCH_LOGS/copy.log"
}

# timed_start NAME PORT [ccri-mock args...]: one more mock; prints the time from
# its start to its first 200 (polled every 2 ms: wait_for would round it to 100 ms)
# and its RSS then.
timed_start() {
  local name=$1 port=$2 start; shift 2
  start=$(date +%s%N)
  "$SERVER_BIN/ccri-mock" --port "$port" "$@" >"$BENCH_LOGS/$port.log" 2>&1 &
  PIDS+=($!)
  until curl -fs -o /dev/null "http://127.0.0.1:$port/ccri-fhir/R4/metadata"; do
    kill -0 "${PIDS[-1]}" 2>/dev/null || { tail -n 20 "$BENCH_LOGS/$port.log" >&2; exit 1; }
    sleep 0.002
  done
  printf '%s: %d ms, RSS %s\n' "$name" $(( ($(date +%s%N) - start) / 1000000 )) "$(rss "${PIDS[-1]}")"
}

# rss PID: its resident memory now, and at its peak.
rss() {
  awk '/VmRSS/ {now = $2} /VmHWM/ {peak = $2} END {printf "%.0f MiB (peak %.0f MiB)", now / 1024, peak / 1024}' "/proc/$1/status"
}

# stop_last: stops the mock started last (SIGTERM) and waits for it.
stop_last() {
  kill "${PIDS[-1]}"
  wait "${PIDS[-1]}" 2>/dev/null || true
  unset 'PIDS[-1]'
}

# token_of PORT: a client-credentials access token from the mock on PORT.
token_of() {
  curl -fs -u medication-access:medication-access-secret -d grant_type=client_credentials \
    "http://127.0.0.1:$1/ccri-auth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# paired NAME_A URL_A HEADER_A NAME_B URL_B HEADER_B: A and B (each request
# sent with its header) measured in turn, ROUNDS times (7 by default), each round
# printed, then the median of B/A over the rounds. One pair is too noisy here:
# the same binary moves ±15 % between runs, and a slow spell of the machine
# falls on both halves of a round alike.
paired() {
  local name_a=$1 url_a=$2 header_a=$3 name_b=$4 url_b=$5 header_b=$6
  local ratios=() a b
  for round in $(seq "${ROUNDS:-7}"); do
    a=$(load "$name_a ($round)" "$url_a" -H "$header_a"); echo "$a"
    b=$(load "$name_b ($round)" "$url_b" -H "$header_b"); echo "$b"
    ratios+=("$(awk -v a="$(awk '{print $(NF-5)}' <<<"$a")" -v b="$(awk '{print $(NF-5)}' <<<"$b")" 'BEGIN {printf "%.1f", 100 * b / a}')")
  done
  printf '%s / %s, median of %d rounds: %s %%   (rounds: %s)\n' "$name_b" "$name_a" "${#ratios[@]}" \
    "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')" "${ratios[*]}"
}

# load NAME URL [wrk args...]: prints "NAME  requests/s  p50  p99"
# (CONNECTIONS=1 THREADS=1 for one client's latency, without queueing)
load() {
  local name=$1 url=$2; shift 2
  local out
  out=$(wrk -t"${THREADS:-2}" -c"${CONNECTIONS:-32}" -d"$DURATION" --latency "$@" "$url")
  printf '%-34s %10s req/s   p50 %8s   p99 %8s\n' "$name" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" \
    "$(awk '$1=="99%" {print $2}' <<<"$out")"
}
