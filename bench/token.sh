#!/usr/bin/env bash
# Token endpoint throughput: CCRI's client-credentials request (Basic auth, a signed
# RS256 JWT per response) beside a bare axum handler, in the same run.
#   bash bench/token.sh            (DURATION=10s by default)
source "$(dirname "$0")/common.sh"
start_servers
echo "wrk -t2 -c32 -d$DURATION on $(nproc) cores, loopback"
load "bare axum POST" "http://127.0.0.1:$BARE_PORT/bare" -s bench/token.lua
load "POST /ccri-auth/token (RS256 JWT)" "http://127.0.0.1:$MOCK_PORT/ccri-auth/token" -s bench/token.lua
