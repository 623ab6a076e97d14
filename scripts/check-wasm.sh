#!/usr/bin/env bash
# Fails if server-only crates reach the browser bundle, or server secrets/strings appear in it.
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden='^(sqlx|sqlx-core|sqlx-sqlite|aes-gcm|lettre|tower-sessions|reqwest|argon2|secrecy|tokio)$'
found=$(cargo tree -p frontend --features hydrate --target wasm32-unknown-unknown -e normal,build --prefix none \
  | sed 's/ .*//' | sort -u | grep -E "$forbidden" || true)
if [[ -n "$found" ]]; then
  echo "check-wasm: server-only crates in the WASM dependency tree:" >&2
  echo "$found" >&2
  exit 1
fi

# The main module and every lazily loaded chunk.
shopt -s nullglob
modules=(target/site/pkg/*.wasm)
if [[ ${#modules[@]} -eq 0 ]]; then
  echo "check-wasm: no WASM in target/site/pkg; run scripts/build-site.sh first" >&2
  exit 1
fi
for wasm in "${modules[@]}"; do
  for needle in AGENTKEY_MASTER_KEY master.key credential_blob key_hash "BEGIN IMMEDIATE" audit_heads; do
    if grep -aq "$needle" "$wasm"; then
      echo "check-wasm: server-side string '$needle' found in $wasm" >&2
      exit 1
    fi
  done
done
echo "check-wasm: ok (no server-only crates or strings in the browser bundle)"
