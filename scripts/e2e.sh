#!/usr/bin/env bash
# Browser tests: starts a fresh AgentKey (temporary SQLite file) and runs the Playwright tests
# in end2end/ against it with Debian's Chromium. Screenshots land in end2end/output/.
# `scripts/e2e.sh coldload.mjs` runs the cold-load benchmark against such a server instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/target/debug/agentkey"
tmp=$(mktemp -d)
port=${E2E_PORT:-3137}
smtp_port=${E2E_SMTP_PORT:-2526}
# The model that drafts guides: the guide-draft browser test serves it on this port.
ai_port=${E2E_AI_PORT:-3139}
# The Playwright test runs the SMTP server (a real one, on loopback) that catches sign-in mail.
export AGENTKEY_DATABASE_URL="sqlite://$tmp/e2e.db" AGENTKEY_BIND="127.0.0.1:$port" \
  AGENTKEY_SMTP_URL="smtp://127.0.0.1:$smtp_port" E2E_SMTP_PORT="$smtp_port" E2E_OWNER="owner@e2e.test" \
  AGENTKEY_TEST_LOOPBACK_WEBHOOKS=1 AGENTKEY_TEST_LOOPBACK_UPSTREAMS=1 \
  AGENTKEY_AI_URL="http://127.0.0.1:$ai_port/v1" AGENTKEY_AI_MODEL="e2e-model" E2E_AI_PORT="$ai_port"
"$bin" admin create-org --name "E2E" --owner-email "$E2E_OWNER" >/dev/null
"$bin" serve >"$tmp/server.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
# With an argument, runs that script of end2end/ instead of the tests (e.g. coldload.mjs).
if [[ $# -gt 0 ]]; then
  (cd end2end && BASE_URL="http://127.0.0.1:$port" AGENTKEY_BIN="$bin" node "$1") || { cat "$tmp/server.log" >&2; exit 1; }
  exit 0
fi
(cd end2end && BASE_URL="http://127.0.0.1:$port" AGENTKEY_BIN="$bin" npm test) || { cat "$tmp/server.log" >&2; exit 1; }
