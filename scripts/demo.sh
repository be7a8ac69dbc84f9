#!/usr/bin/env bash
# `make demo`: ccri-mock on :8080 and the demo app on :5173, both built first (the
# release build of the npm package, as users get it). Ctrl-C stops both. The mock
# keeps what is registered and written in .ccri-mock/demo.db across demos;
# `make demo RESET=1` starts it afresh from the built-in data.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
echo "building the npm package and the demo app"
make -s web
target=$(target_dir)
if [ ! -x "$target/server/ccri-mock" ]; then
  echo "building ccri-mock optimised (the first time takes 3 to 4 minutes on 2 cores)"
else
  echo "building ccri-mock optimised (only what changed since the last demo)"
fi
cargo build -q --profile server -p ccri-mock --bin ccri-mock
pids=()
logs=$(mktemp -d)
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$logs"; echo; echo "stopped ccri-mock and the demo app"' EXIT
trap 'exit 130' INT TERM
# The mock's banner goes to the terminal and to a log that wait_for can show.
store=(--store sqlite:.ccri-mock/demo.db)
[ "${RESET:-}" = 1 ] && store+=(--reset)
(exec "$target/server/ccri-mock" --port 8080 "${store[@]}" > >(tee "$logs/mock.log") 2>&1) &
pids+=($!)
(cd demo-web && exec node_modules/.bin/vite preview --host 127.0.0.1 --port 5173 --strictPort >"$logs/vite.log" 2>&1) &
pids+=($!)
wait_for http://127.0.0.1:8080/ccri-fhir/R4/metadata "${pids[0]}" "$logs/mock.log"
wait_for http://127.0.0.1:5173/ "${pids[1]}" "$logs/vite.log"
cat <<MSG

  Demo app:        http://127.0.0.1:5173/            (standalone launch)
  EHR launcher:    http://127.0.0.1:8080/ccri-auth/launcher
  Register a client: http://127.0.0.1:8080/ccri-auth/clients
  Log in on the mock as bernie (a patient) or dr.harrison (a GP); the password is "password".
  Clients you register and resources you write are kept in .ccri-mock/demo.db
  (make demo RESET=1 starts afresh).

  Ctrl-C stops both servers.
MSG
wait
