# The two commands of the README. Both install what is missing first (scripts/setup.sh).
#   make demo   start ccri-mock and the demo app
#   make test   every check and test, as CI runs it
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export CARGO_TERM_COLOR ?= never

# Crates whose tests also run inside headless Chromium.
WASM_TEST_CRATES := smart-protocol

.PHONY: demo test setup lint native-test wasm-test

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup lint native-test wasm-test
	@echo "make test: all checks passed"

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

native-test:
	cargo nextest run --workspace --no-fail-fast
	cargo test --workspace --doc

wasm-test:
	@for crate in $(WASM_TEST_CRATES); do \
	  echo "wasm-pack test --headless --chrome $$crate"; \
	  wasm-pack test --headless --chrome $$crate; \
	done
