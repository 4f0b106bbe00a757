#!/usr/bin/env bash
# Trunk post-build hook: build the training worker (speed profile) into
# <dist>/worker/ with a content-hashed name, and write manifest.json so the
# app finds it. Trunk's own worker support cannot tell the app a hashed name.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${TRUNK_STAGING_DIR:-dist}/worker"
cargo build --profile fast --target wasm32-unknown-unknown --bin worker
wasm=target/wasm32-unknown-unknown/fast/worker.wasm
hash=$(sha256sum "$wasm" | cut -c1-16)
rm -rf "$out" && mkdir -p "$out"
wasm-bindgen --target web --no-typescript --out-dir "$out" --out-name "retrace-worker-$hash" "$wasm"
printf "import init from './retrace-worker-%s.js';\nawait init();\n" "$hash" > "$out/loader-$hash.js"
printf '{"loader":"loader-%s.js"}\n' "$hash" > "$out/manifest.json"
# Then: no inline script (strict CSP), and the service worker's file list.
node tools/finish-dist.mjs "${TRUNK_STAGING_DIR:-dist}"
