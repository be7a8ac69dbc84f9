#!/usr/bin/env bash
# Memory under a long run: 10,000 full launches, then 40,000 abandoned authorizes
# (bench/soak.py), with the server's RSS after each phase beside its RSS after a
# 100-launch warm-up, measured in the same run. Codes live 2 s here so the phases
# can wait for them to expire; everything else is as `ccri-mock` ships.
#   bash bench/soak.sh
source "$(dirname "$0")/common.sh"
config=$(mktemp --suffix=.toml)
echo 'code_ttl_secs = 2' >"$config"
start_servers --config "$config"
python3 bench/soak.py "$MOCK_PORT" "${PIDS[0]}"
rm -f "$config"
