#!/usr/bin/env bash
# Size of what the browser downloads for smart-fhir-client (wasm + JS glue), raw and
# gzipped, per wasm-pack target, built as users get it (scripts/package.sh), and the
# largest contributors (twiggy, if installed: `cargo install twiggy --locked`), beside
# the reference: fhirclient.js's browser build from demo-web's node_modules, 68.5 kB
# gzipped. kB here are 1,000 bytes, as npm and bundlers count them.   bash bench/size.sh
set -euo pipefail
cd "$(dirname "$0")/.."
gz() { gzip -9c | wc -c; }
for target in web bundler; do
  out=$(mktemp -d)
  scripts/package.sh "$target" "$out"
  wasm=$(ls "$out"/*.wasm)
  # The JS glue: every .js file of the package (the bundler target splits it in two,
  # and helpers.js comes as a snippet).
  js=$(find "$out" -name '*.js' | sort)
  js_raw=$(cat $js | wc -c); js_gz=$(cat $js | gz)
  total=$(( $(gz <"$wasm") + js_gz ))
  printf '%-12s wasm %7d raw %6d gz | js glue %6d raw %5d gz | total %6d gz (%.1f kB)\n' "$target" \
    "$(stat -c%s "$wasm")" "$(gz <"$wasm")" "$js_raw" "$js_gz" "$total" "$(echo "$total/1000" | bc -l)"
  rm -rf "$out"
done
reference=demo-web/node_modules/fhirclient/build/fhir-client.min.js
if [ -f "$reference" ]; then
  printf '%-12s %53s total %6d gz (%.1f kB)\n' fhirclient.js "$(stat -c%s "$reference") raw, one file" \
    "$(gz <"$reference")" "$(echo "$(gz <"$reference")/1000" | bc -l)"
fi
if command -v twiggy >/dev/null; then
  # The same module as shipped (wasm-bindgen, then wasm-opt -Oz), with its function
  # names kept so the split is by what survives optimisation.
  # The wasm-opt flags are the package's own (client-wasm/Cargo.toml), less the
  # stripping, plus -g.
  source scripts/common.sh
  named=$(mktemp -d)
  wasm-bindgen --target web --out-dir "$named" "$(target_dir)/wasm32-unknown-unknown/release/smart_fhir_client.wasm"
  read -r -a flags < <(python3 -c 'import tomllib
meta = tomllib.load(open("client-wasm/Cargo.toml", "rb"))["package"]["metadata"]
print(" ".join(f for f in meta["wasm-pack"]["profile"]["release"]["wasm-opt"] if not f.startswith("--strip")))')
  wasm-opt "${flags[@]}" -g "$named/smart_fhir_client_bg.wasm" -o "$named/named.wasm"
  echo; echo "largest parts of the shipped wasm (bytes before gzip):"
  twiggy top -n 100000 --format csv "$named/named.wasm" 2>/dev/null | python3 -c '
import csv, re, sys, collections
agg = collections.Counter()
for row in csv.DictReader(sys.stdin):
    name, size = row["Name"], int(row["ShallowSize"])
    if "function names" in name:
        continue
    if name.startswith("data segment"):
        key = "data (messages, tables)"
    elif "future_to_promise" in name:
        key = "exported async flows (state machines, inlined)"
    elif name.endswith("shim") or name.startswith("export "):
        key = "exports and their wasm-bindgen shims"
    elif name.startswith("import "):
        key = "imports from the JS glue (their names)"
    else:
        parts = re.findall(r"(smart_fhir_client::[a-z_]+::[a-z_]+|smart_protocol::[a-z_]+)", name)
        crates = re.findall(r"([a-z_][a-z0-9_]*)(?:\[[0-9a-f]+\])?::", name)
        key = parts[0] if parts else crates[0] if crates else name[:40]
    agg[key] += size
for name, size in agg.most_common(20):
    print(f"{size:8d}  {name}")'
  rm -rf "$named"
fi
