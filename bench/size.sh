#!/usr/bin/env bash
# Size of what the browser downloads for smart-fhir-client (wasm + JS glue), raw and
# gzipped, per wasm-pack target, and the largest contributors (twiggy, if installed:
# `cargo install twiggy --locked`). The reference fhirclient.js browser build is
# 68.5 KB gzipped.   bash bench/size.sh
set -euo pipefail
cd "$(dirname "$0")/../client-wasm"
gz() { gzip -9c "$1" | wc -c; }
for target in web bundler; do
  out=$(mktemp -d)
  wasm-pack build --release --target "$target" --out-dir "$out" >/dev/null 2>&1
  wasm=$(ls "$out"/*.wasm)
  # The JS glue: every .js file of the package (the bundler target splits it in two).
  js_raw=$(cat "$out"/*.js | wc -c); js_gz=$(cat "$out"/*.js | gzip -9c | wc -c)
  total=$(( $(gz "$wasm") + js_gz ))
  printf '%-8s wasm %7d raw %6d gz | js glue %6d raw %5d gz | total %6d gz (%.1f KB)\n' "$target" \
    "$(stat -c%s "$wasm")" "$(gz "$wasm")" "$js_raw" "$js_gz" "$total" "$(echo "$total/1024" | bc -l)"
  rm -rf "$out"
done
if command -v twiggy >/dev/null; then
  echo; echo "largest contributors before wasm-bindgen/wasm-opt, grouped (bytes):"
  twiggy top -n 100000 --format csv ../target/wasm32-unknown-unknown/release/smart_fhir_client.wasm 2>/dev/null | python3 -c '
import csv, re, sys, collections
agg = collections.Counter()
for row in csv.DictReader(sys.stdin):
    name = row["Name"]
    if "function names" in name or "__wasm_bindgen_unstable" in name or "describe" in name:
        continue
    crates = re.findall(r"([a-z_][a-z0-9_]*)(?:\[[0-9a-f]+\])?::", name)
    agg[crates[0] if crates else name[:30]] += int(row["ShallowSize"])
for name, size in agg.most_common(15):
    print(f"{size:8d}  {name}")'
fi
