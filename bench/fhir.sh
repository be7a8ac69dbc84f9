#!/usr/bin/env bash
# FHIR API throughput and latency with 100,000 Observations over 1,000 patients,
# beside a bare axum handler in the same run; cold start and memory with the
# built-in data set, and the read again with the inspector off.   bash bench/fhir.sh   (DURATION=10s by default)
source "$(dirname "$0")/common.sh"
DATA=$(mktemp -d)
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$DATA" "$BENCH_LOGS"' EXIT
python3 bench/generate_load.py "$DATA" 1000 100000 >/dev/null

# Cold start with the built-in data: process start to the first 200 from a FHIR read.
for _ in 1 2 3; do
  timed_start "cold start to first 200 (built-in data)" 18081
  stop_last
done

start=$(date +%s%N)
start_servers --data "$DATA"
echo "loaded 101,000 resources and answered in $(( ($(date +%s%N) - start) / 1000000 )) ms, RSS $(awk '/VmRSS/ {print $2 / 1024 " MiB"}' /proc/${PIDS[0]}/status)"

TOKEN=$(token_of "$MOCK_PORT")
AUTH="Authorization: Bearer $TOKEN"
echo "wrk -t2 -c32 -d$DURATION on $(nproc) cores, loopback"
load "bare axum GET" "http://127.0.0.1:$BARE_PORT/bare"
# The read beside a bare handler given the same request (its token is ~900 bytes
# to receive and parse) that answers the same bytes: what is left between them is
# the mock's own work.
READ="http://127.0.0.1:$MOCK_PORT/ccri-fhir/R4/Patient/p500"
COPY_PORT=$((MOCK_PORT + 5))
copy_answer "$COPY_PORT" "$READ" -H "$AUTH"
paired "bare, same request and answer" "http://127.0.0.1:$COPY_PORT/bare/copy" "$AUTH" "GET Patient/{id}" "$READ" "$AUTH"
load "GET Observation?patient=X&_count=50" "http://127.0.0.1:$MOCK_PORT/ccri-fhir/R4/Observation?patient=p500&_count=50" -H "$AUTH"
load "GET Observation?subject:Patient.family=X (chain)" "http://127.0.0.1:$MOCK_PORT/ccri-fhir/R4/Observation?subject:Patient.family=Family500&_count=50" -H "$AUTH"
load "GET Patient?_has:Observation:subject:code=X (_has)" "http://127.0.0.1:$MOCK_PORT/ccri-fhir/R4/Patient?_has:Observation:subject:code=4548-4&_count=50" -H "$AUTH"
# One client at a time: the latency of a search itself, without 32 others queued.
echo "wrk -t1 -c1 -d$DURATION: one client"
for query in "Observation?patient=p500&_count=50" "Observation?subject:Patient.family=Family500&_count=50" \
             "Patient?_has:Observation:subject:code=4548-4&_count=50" "Observation?code=4548-4&_count=50"; do
  THREADS=1 CONNECTIONS=1 load "GET ${query%%&*}" "http://127.0.0.1:$MOCK_PORT/ccri-fhir/R4/$query" -H "$AUTH"
done

# Growth: the same patient search on a tenth of the data (100 patients, the same
# 100 Observations each), beside the full set.
SMALL=$(mktemp -d)
python3 bench/generate_load.py "$SMALL" 100 10000 >/dev/null
SMALL_PORT=$((MOCK_PORT + 3))
another_mock small "$SMALL_PORT" --data "$SMALL"
rm -rf "$SMALL"
SMALL_TOKEN=$(token_of "$SMALL_PORT")
THREADS=1 CONNECTIONS=1 load "Observation?patient=X, 10,000 loaded" "http://127.0.0.1:$SMALL_PORT/ccri-fhir/R4/Observation?patient=p50&_count=50" -H "Authorization: Bearer $SMALL_TOKEN"
THREADS=1 CONNECTIONS=1 load "Observation?patient=X, 100,000 loaded" "http://127.0.0.1:$MOCK_PORT/ccri-fhir/R4/Observation?patient=p500&_count=50" -H "$AUTH"

# The inspector's cost: the same read on two fresh mocks with the same data, the
# inspector off and on, measured in turn.
# Fresh, not the mock above: its searches leave a heap and an inspector that a
# second mock would not share.
ON_PORT=$((MOCK_PORT + 4)) OFF_PORT=$((MOCK_PORT + 2))
another_mock on "$ON_PORT" --data "$DATA"
another_mock off "$OFF_PORT" --data "$DATA" --no-inspector
ON_TOKEN=$(token_of "$ON_PORT") OFF_TOKEN=$(token_of "$OFF_PORT")
paired "GET Patient/{id}, inspector off" "http://127.0.0.1:$OFF_PORT/ccri-fhir/R4/Patient/p500" "Authorization: Bearer $OFF_TOKEN" \
  "GET Patient/{id}, inspector on" "http://127.0.0.1:$ON_PORT/ccri-fhir/R4/Patient/p500" "Authorization: Bearer $ON_TOKEN"
