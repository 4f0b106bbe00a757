#!/usr/bin/env bash
# Throughput of an older commit beside this tree's, in one browser, in turns:
#   bash bench/side_by_side.sh REV
# Builds REV's bench page (speed profile) into target/bench/old-site and this
# tree's into target/bench/site, then folds and appends in both.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bench/side_by_side.sh REV}
old=target/side-by-side/src
rm -rf "$old" && mkdir -p "$old"
git archive "$rev" | tar -x -C "$old"
(cd "$old" && CARGO_TARGET_DIR="$PWD/../../side-by-side-target" cargo build --profile fast --target wasm32-unknown-unknown --bin bench)
site=target/bench/old-site
rm -rf "$site" && mkdir -p "$site"
wasm-bindgen --target web --no-typescript --out-dir "$site/pkg" target/side-by-side-target/wasm32-unknown-unknown/fast/bench.wasm
cp "$old/bench/page.html" "$old/bench/baselines.js" node_modules/dexie/dist/dexie.mjs "$site/"
cargo build --profile fast --target wasm32-unknown-unknown --bin bench
rm -rf target/bench/site/pkg && mkdir -p target/bench/site
wasm-bindgen --target web --no-typescript --out-dir target/bench/site/pkg target/wasm32-unknown-unknown/fast/bench.wasm
cp bench/page.html bench/baselines.js node_modules/dexie/dist/dexie.mjs target/bench/site/
REV="$rev" node bench/side_by_side.mjs
