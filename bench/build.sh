#!/usr/bin/env bash
# Build the benchmark page: Retrace's store (speed profile) beside the
# JavaScript baselines, into target/bench/site.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --profile fast --target wasm32-unknown-unknown --bin bench
site=target/bench/site
rm -rf "$site" && mkdir -p "$site"
wasm-bindgen --target web --no-typescript --out-dir "$site/pkg" target/wasm32-unknown-unknown/fast/bench.wasm
cp bench/page.html bench/baselines.js "$site/"
cp node_modules/dexie/dist/dexie.mjs "$site/"
# The app itself, same origin as the bench page (boot benchmarks load it).
rm -rf "$site/app" && cp -r dist "$site/app"
