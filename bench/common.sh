# Shared by the bench scripts: build release binaries, start servers on loopback,
# stop them on exit, run bounded wrk loads.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --profile server -q -p ccri-mock --bin ccri-mock --example bare
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
MOCK_PORT=${MOCK_PORT:-18080}
BARE_PORT=${BARE_PORT:-18099}
DURATION=${DURATION:-10s}

# start_servers [ccri-mock args...]
start_servers() {
  ./target/server/ccri-mock --port "$MOCK_PORT" "$@" >/tmp/ccri-mock-bench.log 2>&1 &
  PIDS+=($!)
  ./target/server/examples/bare "$BARE_PORT" &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$MOCK_PORT/ccri-fhir/R4/metadata"
  wait_for "http://127.0.0.1:$BARE_PORT/bare"
}

# wait_for URL: until it answers 2xx, for at most 10 s.
wait_for() {
  for _ in $(seq 100); do
    curl -fs -o /dev/null "$1" && return
    sleep 0.1
  done
  echo "$1 did not come up" >&2; exit 1
}

# load NAME URL [wrk args...]: prints "NAME  requests/s  p50  p99"
load() {
  local name=$1 url=$2; shift 2
  local out
  out=$(wrk -t2 -c32 -d"$DURATION" --latency "$@" "$url")
  printf '%-34s %10s req/s   p50 %8s   p99 %8s\n' "$name" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" \
    "$(awk '$1=="99%" {print $2}' <<<"$out")"
}
