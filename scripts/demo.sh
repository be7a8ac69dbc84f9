#!/usr/bin/env bash
# `make demo`: ccri-mock on :8080 and the demo app on :5173, both built first (the
# release build of the npm package, as users get it). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s web
cargo build -q --profile server -p ccri-mock --bin ccri-mock
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; echo; echo "stopped ccri-mock and the demo app"' EXIT
trap 'exit 130' INT TERM
./target/server/ccri-mock --port 8080 &
pids+=($!)
(cd demo-web && exec node_modules/.bin/vite preview --host 127.0.0.1 --port 5173 --strictPort >/dev/null) &
pids+=($!)
for _ in $(seq 100); do
  curl -fs -o /dev/null http://127.0.0.1:5173/ && curl -fs -o /dev/null http://127.0.0.1:8080/ccri-fhir/R4/metadata && break
  sleep 0.1
done
cat <<MSG

  Demo app:        http://127.0.0.1:5173/            (standalone launch)
  EHR launcher:    http://127.0.0.1:8080/ccri-auth/launcher
  Register a client: http://127.0.0.1:8080/ccri-auth/clients
  Log in on the mock as bernie (a patient) or dr.harrison (a GP); the password is "password".

  Ctrl-C stops both servers.
MSG
wait
