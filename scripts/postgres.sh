#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use answers on 127.0.0.1:5432 (user postgres): starts the
# local cluster with pg_ctlcluster when it is down, and drops test databases that killed runs
# left behind. Fails with what to do when it cannot.
set -euo pipefail
HOST=127.0.0.1 PORT=5432
ready() { pg_isready -q -h "$HOST" -p "$PORT" -U postgres 2>/dev/null; }

if ! command -v pg_isready >/dev/null; then
    echo "PostgreSQL client tools are missing: install postgresql (Debian: apt-get install postgresql)" >&2
    exit 1
fi
if ! ready; then
    echo "PostgreSQL is not answering on $HOST:$PORT; starting it"
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
    echo "PostgreSQL did not come up on $HOST:$PORT. The tests need a server there with trust auth for user" >&2
    echo "postgres (or set AGENTKEY_TEST_PG_URL). Try: pg_lsclusters; pg_ctlcluster <version> main start" >&2
    exit 1
fi
leftovers=$(psql -h "$HOST" -p "$PORT" -U postgres -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'agentkey\_test\_%'")
for db in $leftovers; do
    psql -h "$HOST" -p "$PORT" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
done
echo "PostgreSQL ready on $HOST:$PORT"
