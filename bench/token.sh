#!/usr/bin/env bash
# Token endpoint throughput: CCRI's client-credentials request (Basic auth, a signed
# RS256 JWT per response) against ccri-mock, node oidc-provider issuing RS256 JWT
# access tokens (and opaque ones, its fastest path), and a bare axum handler, all
# in the same run.
#   bash bench/token.sh            (DURATION=10s by default)
source "$(dirname "$0")/common.sh"
OIDC_PORT=${OIDC_PORT:-18077}
OPAQUE_PORT=${OPAQUE_PORT:-18078}
[ -d bench/node_modules ] || { echo "oidc-provider is missing: run bash scripts/setup.sh --bench" >&2; exit 1; }
start_servers
node bench/oidc-provider.mjs "$OIDC_PORT" jwt 2>"$BENCH_LOGS/oidc-jwt.log" &
PIDS+=($!)
wait_for "http://127.0.0.1:$OIDC_PORT/.well-known/openid-configuration" $! "$BENCH_LOGS/oidc-jwt.log"
node bench/oidc-provider.mjs "$OPAQUE_PORT" opaque 2>"$BENCH_LOGS/oidc-opaque.log" &
PIDS+=($!)
wait_for "http://127.0.0.1:$OPAQUE_PORT/.well-known/openid-configuration" $! "$BENCH_LOGS/oidc-opaque.log"

echo "wrk -t2 -c32 -d$DURATION on $(nproc) cores, loopback"
load "bare axum POST" "http://127.0.0.1:$BARE_PORT/bare" -s bench/token.lua
mock=$(load "POST /ccri-auth/token (RS256 JWT)" "http://127.0.0.1:$MOCK_PORT/ccri-auth/token" -s bench/token.lua)
echo "$mock"
node=$(load "oidc-provider /token (RS256 JWT)" "http://127.0.0.1:$OIDC_PORT/token" -s bench/token.lua)
echo "$node"
load "oidc-provider /token (opaque)" "http://127.0.0.1:$OPAQUE_PORT/token" -s bench/token.lua
awk -v m="$(awk '{print $(NF-5)}' <<<"$mock")" -v n="$(awk '{print $(NF-5)}' <<<"$node")" \
  'BEGIN { printf "ccri-mock / oidc-provider (RS256 JWT): %.2fx\n", m / n }'
