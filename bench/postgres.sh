#!/usr/bin/env bash
# The PostgreSQL store (--store postgres://…) beside the memory store, with the data of
# bench/fhir.sh (100,000 Observations over 1,000 patients): one replica, then two
# replicas on the one database (two wrk at once, one on each replica with half the
# connections).
#   bash bench/postgres.sh   (DURATION=10s; PG_PORT=15432)
# PostgreSQL runs from Debian's binaries with its default settings, in a directory of
# this run, stopped on exit (scripts/with-postgres.sh).
[ -n "${CCRI_MOCK_POSTGRES:-}" ] ||
  exec "$(dirname "$0")/../scripts/with-postgres.sh" "${PG_PORT:-15432}" -- bash "$0" "$@"
source "$(dirname "$0")/common.sh"
DATA=$(mktemp -d)
MEMORY_PORT=$MOCK_PORT A_PORT=$((MOCK_PORT + 1)) B_PORT=$((MOCK_PORT + 2))
URL="${CCRI_MOCK_POSTGRES%/postgres}/ccri"
# The one origin the replicas stand behind, as behind a load balancer (nothing listens
# there): tokens name it as issuer and audience, so one replica's serve on the other.
PUBLIC=(--public-url "http://127.0.0.1:$((MOCK_PORT + 3))")
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$DATA" "$BENCH_LOGS"' EXIT
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
sql -d "$CCRI_MOCK_POSTGRES" -c "CREATE DATABASE ccri"
python3 bench/generate_load.py "$DATA" 1000 100000 >/dev/null

# load_two NAME PATH [wrk args...]: wrk on both replicas at once, one thread and half
# the connections each (together what `load` gives one server); prints the summed
# requests/s and each replica's p50 and p99.
load_two() {
  local name=$1 path=$2 half=$((${CONNECTIONS:-32} / 2)) a; shift 2
  wrk -t1 -c"$half" -d"$DURATION" --latency "$@" "http://127.0.0.1:$A_PORT$path" >"$BENCH_LOGS/wrk-a.out" &
  a=$!
  wrk -t1 -c"$half" -d"$DURATION" --latency "$@" "http://127.0.0.1:$B_PORT$path" >"$BENCH_LOGS/wrk-b.out"
  wait "$a"
  printf '%-34s %10s req/s   p50 %8s + %-8s p99 %8s + %s\n' "$name" \
    "$(awk '/Requests\/sec/ {sum += $2} END {printf "%.2f", sum}' "$BENCH_LOGS/wrk-a.out" "$BENCH_LOGS/wrk-b.out")" \
    "$(awk '$1=="50%" {print $2}' "$BENCH_LOGS/wrk-a.out")" "$(awk '$1=="50%" {print $2}' "$BENCH_LOGS/wrk-b.out")" \
    "$(awk '$1=="99%" {print $2}' "$BENCH_LOGS/wrk-a.out")" "$(awk '$1=="99%" {print $2}' "$BENCH_LOGS/wrk-b.out")"
}

echo "100,000 Observations over 1,000 patients; PostgreSQL $(sql -d "$URL" -c "SHOW server_version") on 127.0.0.1"
start=$(date +%s%N)
start_servers --data "$DATA"
echo "memory: loaded and answered in $(( ($(date +%s%N) - start) / 1000000 )) ms, RSS $(rss "${PIDS[0]}")"
timed_start "postgres, first start: loaded --data into a new database" "$A_PORT" --data "$DATA" --store "$URL" "${PUBLIC[@]}"
stop_last
timed_start "postgres, restart on that database" "$A_PORT" --store "$URL" "${PUBLIC[@]}"
echo "database: $(sql -d "$URL" -c "SELECT pg_size_pretty(pg_database_size('ccri'))")"

echo "wrk -t2 -c32 -d$DURATION on $(nproc) cores, loopback (and -t1 -c1: one client)"
load "bare axum GET" "http://127.0.0.1:$BARE_PORT/bare"
for store in memory postgres; do
  port=$MEMORY_PORT; [ $store = postgres ] && port=$A_PORT
  auth="Authorization: Bearer $(token_of "$port")"
  base="http://127.0.0.1:$port/ccri-fhir/R4"
  load "$store: GET Patient/{id}" "$base/Patient/p500" -H "$auth"
  load "$store: GET Observation?patient=X&_count=50" "$base/Observation?patient=p500&_count=50" -H "$auth"
  THREADS=1 CONNECTIONS=1 load "$store, one client: Observation?patient=X" "$base/Observation?patient=p500&_count=50" -H "$auth"
done

# A second replica on the same database: A's token serves on B too.
timed_start "postgres, a second replica on that database" "$B_PORT" --store "$URL" "${PUBLIC[@]}"
auth="Authorization: Bearer $(token_of "$A_PORT")"
echo "two replicas: wrk -t1 -c16 on each at once (req/s summed; p50 and p99 of A + B)"
load_two "postgres x2: GET Patient/{id}" "/ccri-fhir/R4/Patient/p500" -H "$auth"
load_two "postgres x2: GET Observation?patient=X&_count=50" "/ccri-fhir/R4/Observation?patient=p500&_count=50" -H "$auth"
echo "RSS after the loads: memory $(rss "${PIDS[0]}"), postgres A $(rss "${PIDS[-2]}"), B $(rss "${PIDS[-1]}")"
