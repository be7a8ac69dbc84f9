# Sourced by the scripts and benchmarks that start servers.

# Where cargo puts binaries: honours CARGO_TARGET_DIR and a configured target-dir.
target_dir() {
  cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# wait_for URL PID LOG: until URL answers 2xx. Fails with the last lines of LOG if
# the server (PID) exits first or does not answer within 20 s.
wait_for() {
  local url=$1 pid=$2 log=$3
  for _ in $(seq 200); do
    curl -fs -o /dev/null "$url" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "the server for $url exited; its last lines:" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$url did not answer within 20 s; the server's last lines:" >&2
  tail -n 20 "$log" >&2
  return 1
}
