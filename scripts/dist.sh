#!/usr/bin/env bash
# Builds what an operator installs: the release server and the release browser bundle in one
# folder, dist/agentkey-<version>-<arch>-linux/ (bin/agentkey, site/, agentkey.service,
# INSTALL), and a tarball of it beside the folder. Usage: scripts/dist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

WITH_RELEASE=1 scripts/setup.sh
scripts/build-site.sh --release
cargo build --release --bin agentkey

version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
name="agentkey-$version-$(uname -m)-linux"
out="dist/$name"
rm -rf "$out" "dist/$name.tar.gz"
mkdir -p "$out/bin"
cp target/release/agentkey "$out/bin/agentkey"
cp -r target/site "$out/site"

cat >"$out/agentkey.service" <<'UNIT'
# systemd unit for one AgentKey on its embedded SQLite database; see INSTALL.
[Unit]
Description=AgentKey credential broker
After=network-online.target
Wants=network-online.target

[Service]
User=agentkey
WorkingDirectory=/var/lib/agentkey
Environment=AGENTKEY_SITE_ROOT=/opt/agentkey/site AGENTKEY_BIND=127.0.0.1:3000
Environment=AGENTKEY_BASE_URL=https://keys.example.com AGENTKEY_TRUSTED_PROXIES=1
Environment=AGENTKEY_SMTP_URL=smtp://127.0.0.1:25
ExecStart=/opt/agentkey/bin/agentkey serve
Restart=on-failure
# Each connection is an open file: room for the connection cap, the database and outgoing calls.
LimitNOFILE=65536
NoNewPrivileges=true
ProtectSystem=strict
ReadWritePaths=/var/lib/agentkey

[Install]
WantedBy=multi-user.target
UNIT

cat >"$out/INSTALL" <<INSTALL
AgentKey $version: the release server and its browser bundle.

Try it here (SQLite and the master key in ./data, http://127.0.0.1:3000):
    AGENTKEY_SITE_ROOT=\$PWD/site bin/agentkey serve
On an empty database it prints a one-time setup link: open it to name the organization and
become its owner. Without AGENTKEY_SMTP_URL, sign-in links are written to the log.

Install as a service (one box, embedded SQLite, behind a TLS proxy on the same host):
    sudo useradd --system --home-dir /var/lib/agentkey --create-home agentkey
    sudo mkdir -p /opt/agentkey && sudo cp -r bin site /opt/agentkey/
    sudo cp agentkey.service /etc/systemd/system/
    sudoedit /etc/systemd/system/agentkey.service   # AGENTKEY_BASE_URL, AGENTKEY_SMTP_URL
    sudo systemctl daemon-reload && sudo systemctl enable --now agentkey
    journalctl -u agentkey   # the one-time setup link

The first start writes the master key to /var/lib/agentkey/data/master.key: back it up apart
from the database (agentkey backup FILE). Every setting is an AGENTKEY_* variable; see the
README's Configuration section, and its Deployment section for PostgreSQL and several instances.
INSTALL

tar -C dist -czf "dist/$name.tar.gz" "$name"
echo "dist: $out and dist/$name.tar.gz ($(du -h "dist/$name.tar.gz" | cut -f1))"
