#!/usr/bin/env bash
# Builds the npm package smart-fhir-client as users get it. Every build of the release
# package goes through here: `make web` (the demo and the browser tests) and bench/size.sh.
#   scripts/package.sh [web|bundler] [out-dir]      (default: web client-wasm/pkg)
#
# On top of the release profile (opt-level "z", LTO, one codegen unit, panic=abort) and
# wasm-opt from npm binaryen 132 (client-wasm/Cargo.toml), three steps keep what the
# browser downloads under fhirclient.js's 68.5 kB gzipped. Measured with --target web:
#
# 1. std is rebuilt from rust-src with panics that abort at once (−12.4 kB gz), and
#    without file/line locations (−0.4 kB). A panic in wasm32-unknown-unknown already
#    ended in a bare `unreachable` trap: its message went to a stderr that does not
#    exist there. These flags drop the code that formatted that unseen message, and
#    the Debug impls and file paths it used. They are unstable flags, so
#    RUSTC_BOOTSTRAP lets the stable toolchain take them; they are set for this one
#    command only, and every test build runs without them. Legacy symbol mangling
#    keeps wasm-bindgen's closure export names short (v0 names are ~250 bytes each).
# 2. terser minifies the JS glue and snippets (−2.5 kB gz); the .d.ts keeps every doc
#    comment, so editors still show them, and the glue keeps its @ts-self-types line.
# 3. wasm-opt strips the producers and target_features sections (Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-web}
out=$(realpath -m "${2:-client-wasm/pkg}")
# wasm-pack leaves files of earlier builds behind (old snippets, another target's glue).
rm -rf "$out/snippets" "$out"/*.js "$out"/*.wasm "$out"/*.d.ts

RUSTC_BOOTSTRAP=1 \
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Csymbol-mangling-version=legacy" \
  wasm-pack --quiet build client-wasm --release --target "$target" --out-dir "$out" \
  -- -Zbuild-std=std,panic_abort

terser=scripts/node_modules/.bin/terser
[ -x "$terser" ] || { echo "terser is missing: run bash scripts/setup.sh" >&2; exit 1; }
find "$out" -name '*.js' -print0 | while IFS= read -r -d '' js; do
  "$terser" "$js" --module --compress --mangle --comments '/@ts-self-types/' --output "$js"
done
