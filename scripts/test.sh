#!/usr/bin/env bash
# Every test: the workspace's unit and end-to-end tests (natively, the host running
# the wasm core), then the core's unit tests compiled to wasm32-wasip2.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace "$@"
scripts/test-wasm-core.sh
