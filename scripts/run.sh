#!/usr/bin/env bash
# One command from a fresh clone to a running AgentKey on the embedded SQLite default at
# http://127.0.0.1:3000 (data and the generated master key in ./data/).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup.sh
scripts/build-site.sh
cargo build --bin agentkey
exec target/debug/agentkey serve "$@"
