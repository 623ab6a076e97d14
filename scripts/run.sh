#!/usr/bin/env bash
# One command from a fresh clone to a running AgentKey on the embedded SQLite default at
# http://127.0.0.1:3000 (data and the generated master key in ./data/). Usage:
# scripts/run.sh [--release] [serve options]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# --release: what scripts/dist.sh ships (optimized server, minified and compressed bundle);
# the first build takes about a quarter of an hour on 2 cores.
if [[ "${1:-}" == "--release" ]]; then
  shift
  WITH_RELEASE=1 scripts/setup.sh
  scripts/build-site.sh --release
  cargo build --release --bin agentkey
  exec target/release/agentkey serve "$@"
fi
scripts/setup.sh
scripts/build-site.sh
cargo build --bin agentkey
exec target/debug/agentkey serve "$@"
