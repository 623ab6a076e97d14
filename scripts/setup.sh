#!/usr/bin/env bash
# Installs what AgentKey's build needs, only what is missing (a rerun takes seconds):
# the wasm32 target, the wasm-bindgen CLI matching Cargo.lock and agentkey-wasm-split. With WITH_BROWSER=1 also
# Debian's Chromium, zopfli and the end-to-end test's npm packages (never a downloaded browser);
# with WITH_RELEASE=1 (scripts/dist.sh, scripts/run.sh --release) zopfli and the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

sudo=""
[[ "$(id -u)" -ne 0 ]] && sudo="sudo"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must equal the wasm-bindgen crate version exactly. No --locked: one of its locked
# dependencies was yanked, and the unlocked build works on rustc 1.95 (about 4 minutes).
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [[ "$have" != "$want" ]]; then
  echo "setup: installing wasm-bindgen-cli $want (found '${have:-none}')"
  cargo install wasm-bindgen-cli --version "$want"
fi

# Cuts the browser WASM into a main module and one lazily loaded chunk per page: our own small
# tool on the wasm_split_cli_support library (about 1 minute). Reinstalled whenever its sources
# change (their checksum is kept next to the binary).
sum=$(cat scripts/wasm-split/Cargo.toml scripts/wasm-split/Cargo.lock scripts/wasm-split/src/*.rs | sha256sum | cut -c1-16)
marker="$HOME/.cargo/bin/.agentkey-wasm-split.sum"
if ! command -v agentkey-wasm-split >/dev/null 2>&1 || [[ "$(cat "$marker" 2>/dev/null)" != "$sum" ]]; then
  echo "setup: installing agentkey-wasm-split (sources $sum)"
  cargo install --locked --force --path scripts/wasm-split --target-dir target/tools
  echo "$sum" >"$marker"
fi

if [[ "${WITH_BROWSER:-0}" == 1 ]] && ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing Debian chromium"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
fi
# What a release bundle is made with (also what the browser tests need): zopfli, and the npm
# packages of end2end/ (wasm-opt from binaryen, esbuild).
if [[ "${WITH_BROWSER:-0}" == 1 || "${WITH_RELEASE:-0}" == 1 ]]; then
  if ! command -v zopfli >/dev/null 2>&1; then
    echo "setup: installing Debian zopfli (smaller gzip files of the release bundle)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends zopfli
  fi
  if [[ ! -d end2end/node_modules/playwright-core || ! -x end2end/node_modules/.bin/esbuild ]]; then
    echo "setup: installing end-to-end npm packages"
    (cd end2end && npm ci --no-audit --no-fund)
  fi
fi
echo "setup: ok"
