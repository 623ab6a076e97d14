#!/usr/bin/env bash
# One command from a fresh clone to every test passing: installs what is missing (wasm target,
# wasm-bindgen CLI, the WASM splitter, Debian Chromium, npm packages), builds the release browser
# bundle once, then runs the WASM dependency check, the format check, clippy, the Rust unit and integration tests
# (every integration test once on SQLite and once on PostgreSQL), the README walkthrough and the
# browser tests. One debug build of the server serves every stage.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
start=$(date +%s)
stage() { echo; echo "=== $1 ($(( $(date +%s) - start )) s)"; }

stage "setup"
WITH_BROWSER=1 scripts/setup.sh
stage "build the browser bundle (release: what ships, wasm-opt and the split included)"
scripts/build-site.sh --release
stage "check the browser bundle for server-only crates"
scripts/check-wasm.sh
stage "format check"
cargo fmt --all -- --check
cargo fmt --manifest-path scripts/wasm-split/Cargo.toml -- --check
stage "clippy"
cargo clippy --workspace --all-targets --features agentkey/bench -- -D warnings
stage "PostgreSQL"
scripts/postgres.sh
stage "unit and integration tests (SQLite)"
cargo test --workspace
stage "integration tests again on PostgreSQL"
AGENTKEY_TEST_BACKEND=postgres cargo test --workspace --test '*'
stage "README walkthrough"
scripts/walkthrough.sh
stage "browser tests"
scripts/e2e.sh
stage "all tests passed"
