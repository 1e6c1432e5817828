#!/usr/bin/env bash
# CI smoke run of the fuzz harness: format, lints, unit tests, then every target for about a
# minute in all. Exits non-zero on any panic or hang (the inputs land in fuzz/artifacts/).
set -euo pipefail
cd "$(dirname "$0")"
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --quiet
cargo run --release --quiet -- smoke --total-seconds "${FUZZ_SMOKE_SECONDS:-60}"
