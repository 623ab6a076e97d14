#!/usr/bin/env bash
# The README's five-minute walkthrough, run as a test: CLI + curl against a fresh server.
# create org and agent → add a tool → agent requests → approve → agent fetches → revoke → 403.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/target/debug/agentkey"
tmp=$(mktemp -d)
port=${WALKTHROUGH_PORT:-3138}
base="http://127.0.0.1:$port"
export AGENTKEY_DATABASE_URL="sqlite://$tmp/walk.db" AGENTKEY_BIND="127.0.0.1:$port" AGENTKEY_LOG_FORMAT=json
"$bin" serve >"$tmp/server.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; [[ -n "${KEEP:-}" ]] || rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
expect() { if [[ "$2" != "$3" ]]; then echo "walkthrough: $1: expected $2, got $3" >&2; cat "$tmp/server.log" >&2; exit 1; fi; }

"$bin" admin create-org --name "Acme" >/dev/null
key=$("$bin" --json agent create --name release-bot | field 'd["api_key"]')
tool=$(printf %s "ghp_walkthrough_token" | "$bin" --json tool create --name GitHub --url github.com \
  --credential-stdin --instructions "Use the REST API v3; never push to main." | field 'd["tool"]["id"]')

access=$(curl -s -H "Authorization: Bearer $key" "$base/api/tools" | field 'd["tools"][0]["your_access"]')
expect "access before request" none "$access"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d '{"reason":"Open the release pull request"}' "$base/api/tools/$tool/request")
expect "request" 201 "$status"

request=$("$bin" --json request list --status pending | field 'd[0]["id"]')
"$bin" request approve "$request" >/dev/null
credential=$(curl -s -H "Authorization: Bearer $key" "$base/api/tools/$tool/credentials" | field 'd["credential"]')
expect "credential after approval" ghp_walkthrough_token "$credential"

"$bin" request revoke "$request" --reason "release done" >/dev/null
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$base/api/tools/$tool/credentials")
expect "fetch after revoke" 403 "$status"

"$bin" audit verify >/dev/null
vended=$("$bin" --json audit tail --action credential.vended | field 'len(d)')
expect "credential.vended rows" 1 "$vended"
if grep -q "ghp_walkthrough_token\|$key" "$tmp/server.log"; then
  echo "walkthrough: a secret reached the server log" >&2; exit 1
fi
echo "walkthrough: ok (request → approve → fetch → revoke → 403, audit chain intact, no secret in logs)"
