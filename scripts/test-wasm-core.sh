#!/usr/bin/env bash
# Runs the ordering core's unit tests compiled to wasm32-wasip2, under a WASI runner
# built from the host's own wasmtime (host/src/bin/wasm-test-runner.rs). Extra
# arguments go to `cargo test` (e.g. `-- --nocapture`, a test name filter).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --release -p orderer --bin wasm-test-runner
CARGO_TARGET_WASM32_WASIP2_RUNNER="$target_dir/release/wasm-test-runner" \
    cargo test --release --target wasm32-wasip2 -p ordering-core "$@"
