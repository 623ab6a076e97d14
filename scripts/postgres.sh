#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use answers (AGENTKEY_TEST_PG_URL, by default the local
# server on 127.0.0.1:5432 as user postgres): starts the local cluster with pg_ctlcluster when it
# is down, and drops test databases that killed runs left behind (more than an hour old, so a
# concurrent run keeps its own). Fails with what to do when it cannot.
set -euo pipefail
DEFAULT_URL=postgres://postgres@127.0.0.1:5432/postgres
URL=${AGENTKEY_TEST_PG_URL:-$DEFAULT_URL}
PORT=5432
ready() { pg_isready -q -d "$URL" 2>/dev/null; }

if ! command -v pg_isready >/dev/null; then
    echo "PostgreSQL client tools are missing: install postgresql (Debian: apt-get install postgresql)" >&2
    exit 1
fi
if ! ready && [ "$URL" = "$DEFAULT_URL" ]; then
    echo "PostgreSQL is not answering on 127.0.0.1:$PORT; starting it"
    if command -v pg_lsclusters >/dev/null; then
        # Every cluster on the port (normally one: <version> main).
        pg_lsclusters --no-header | awk -v port="$PORT" '$3 == port { print $1, $2 }' | while read -r version cluster; do
            if [ "$(id -u)" = 0 ]; then pg_ctlcluster "$version" "$cluster" start || true
            else sudo -n pg_ctlcluster "$version" "$cluster" start || true; fi
        done
    fi
    for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
if ! ready; then
    echo "PostgreSQL does not answer at ${URL#*@} (the URL's part after @). The tests need a server there (trust auth for" >&2
    echo "user postgres on 127.0.0.1:5432 by default, or set AGENTKEY_TEST_PG_URL)." >&2
    echo "Try: pg_lsclusters; pg_ctlcluster <version> main start" >&2
    exit 1
fi
# Test databases are named agentkey_test_<UUID v7>; its first 48 bits are the creation time in ms.
now_ms=$(( $(date +%s) * 1000 ))
for db in $(psql "$URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'agentkey\_test\_%'"); do
    hex=${db#agentkey_test_}
    created_ms=$(( 16#${hex:0:12} )) 2>/dev/null || created_ms=0
    if [ $(( now_ms - created_ms )) -gt 3600000 ]; then
        psql "$URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
    fi
done
echo "PostgreSQL ready"
