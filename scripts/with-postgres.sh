#!/usr/bin/env bash
# Runs a command while a PostgreSQL server of its own listens on 127.0.0.1:PORT, and
# stops it (and removes its directory) afterwards, whether the command passed or
# failed. The command finds it in CCRI_MOCK_POSTGRES, a URL of its `postgres`
# database (user ccri, no password), where it may create databases of its own.
# The binaries are Debian's (scripts/setup.sh installs them); settings are the defaults.
#   scripts/with-postgres.sh PORT -- COMMAND…
set -euo pipefail
port=$1; shift
[ "${1:-}" = "--" ] && shift
bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL's server binaries are missing: run bash scripts/setup.sh" >&2; exit 1; }
dir=$(mktemp -d)
# PostgreSQL refuses to run as root: then its server runs as Debian's postgres user
# (nobody where there is none), which owns the cluster's directory.
as_owner() { "$@"; }
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id -u "$owner" >/dev/null 2>&1 || owner=nobody
  chown "$owner:$(id -g "$owner")" "$dir"
  as_owner() { setpriv --reuid="$(id -u "$owner")" --regid="$(id -g "$owner")" --clear-groups -- "$@"; }
fi
trap '(cd "$dir" && as_owner "$bin/pg_ctl" stop -D "$dir/data" -m immediate -s) >/dev/null 2>&1 || true
      rm -rf "$dir"' EXIT
# The owner may not be allowed into the caller's working directory.
(cd "$dir" && as_owner "$bin/initdb" -D "$dir/data" -U ccri --auth=trust -E UTF8 --locale=C --no-instructions >/dev/null)
# Settings in the file, not on pg_ctl's command line (a shell splits that one).
printf "\nlisten_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nmax_connections = 300\n" \
  "$port" "$dir" >>"$dir/data/postgresql.conf"
(cd "$dir" && as_owner "$bin/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -s) ||
  { tail -n 20 "$dir/server.log" >&2; exit 1; }
export CCRI_MOCK_POSTGRES="postgres://ccri@127.0.0.1:$port/postgres"
"$@"
