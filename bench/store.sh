#!/usr/bin/env bash
# The stores side by side: the memory store and SQLite (--store sqlite:PATH) with the
# data of bench/fhir.sh (100,000 Observations over 1,000 patients), then SQLite with
# 1,000,000 Observations over 10,000 patients: the first start loads --data into the
# file, a restart serves from it.   bash bench/store.sh   (DURATION=10s; BIG=0 skips the million)
source "$(dirname "$0")/common.sh"
DATA=$(mktemp -d) FILES=$(mktemp -d)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$DATA" "$FILES" "$BENCH_LOGS"' EXIT
python3 bench/generate_load.py "$DATA" 1000 100000 >/dev/null
MEMORY_PORT=$MOCK_PORT SQLITE_PORT=$((MOCK_PORT + 1))

echo "100,000 Observations over 1,000 patients"
start=$(date +%s%N)
start_servers --data "$DATA"
echo "memory: loaded and answered in $(( ($(date +%s%N) - start) / 1000000 )) ms, RSS $(rss "${PIDS[0]}")"
timed_start "sqlite, first start: loaded --data into a new file" "$SQLITE_PORT" --data "$DATA" --store "sqlite:$FILES/100k.db"
stop_last
timed_start "sqlite, restart on that file" "$SQLITE_PORT" --store "sqlite:$FILES/100k.db"
echo "file: $(du -sh "$FILES" | cut -f1)"

echo "wrk -t2 -c32 -d$DURATION on $(nproc) cores, loopback (and -t1 -c1: one client)"
load "bare axum GET" "http://127.0.0.1:$BARE_PORT/bare"
for store in memory sqlite; do
  port=$MEMORY_PORT; [ $store = sqlite ] && port=$SQLITE_PORT
  auth="Authorization: Bearer $(token_of "$port")"
  base="http://127.0.0.1:$port/ccri-fhir/R4"
  load "$store: GET Patient/{id}" "$base/Patient/p500" -H "$auth"
  load "$store: GET Observation?patient=X&_count=50" "$base/Observation?patient=p500&_count=50" -H "$auth"
  for query in "Observation?patient=p500&_count=50" "Observation?subject:Patient.family=Family500&_count=50"; do
    THREADS=1 CONNECTIONS=1 load "$store, one client: ${query%%&*}" "$base/$query" -H "$auth"
  done
  # A random patient each time: what was read before rarely helps.
  PATIENTS=1000 load "$store: random patients" "http://127.0.0.1:$port" -s bench/random_patient.lua -H "$auth"
  PATIENTS=1000 THREADS=1 CONNECTIONS=1 load "$store, one client: random patients" "http://127.0.0.1:$port" -s bench/random_patient.lua -H "$auth"
done
echo "RSS after the loads: memory $(rss "${PIDS[0]}"), sqlite $(rss "${PIDS[-1]}")"

[ "${BIG:-1}" = 0 ] && exit 0
kill "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null || true; PIDS=()
rm -rf "$DATA"
python3 bench/generate_load.py "$DATA" 10000 1000000 >/dev/null
echo "1,000,000 Observations over 10,000 patients, SQLite"
timed_start "sqlite, first start: loaded --data into a new file" "$SQLITE_PORT" --data "$DATA" --store "sqlite:$FILES/1m.db"
stop_last
timed_start "sqlite, restart on that file" "$SQLITE_PORT" --store "sqlite:$FILES/1m.db"
echo "file: $(du -sh "$FILES/1m.db" | cut -f1)"
auth="Authorization: Bearer $(token_of "$SQLITE_PORT")"
base="http://127.0.0.1:$SQLITE_PORT/ccri-fhir/R4"
load "sqlite 1M: GET Patient/{id}" "$base/Patient/p5000" -H "$auth"
load "sqlite 1M: GET Observation?patient=X&_count=50" "$base/Observation?patient=p5000&_count=50" -H "$auth"
THREADS=1 CONNECTIONS=1 load "sqlite 1M, one client: Observation?patient=X" "$base/Observation?patient=p5000&_count=50" -H "$auth"
PATIENTS=10000 load "sqlite 1M: random patients" "http://127.0.0.1:$SQLITE_PORT" -s bench/random_patient.lua -H "$auth"
PATIENTS=10000 THREADS=1 CONNECTIONS=1 load "sqlite 1M, one client: random patients" "http://127.0.0.1:$SQLITE_PORT" -s bench/random_patient.lua -H "$auth"
echo "RSS after the loads: $(rss "${PIDS[-1]}")"
