#!/usr/bin/env bash
# Builds the browser half without cargo-leptos: the hydrate WASM (wasm-bindgen), the CSS and
# public files into target/site, exactly where cargo-leptos would put them.
# Usage: scripts/build-site.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dev; dir=debug
if [[ "${1:-}" == "--release" ]]; then profile=wasm-release; dir=wasm-release; fi

if ! command -v agentkey-wasm-split >/dev/null 2>&1 || ! command -v wasm-bindgen >/dev/null 2>&1; then
  echo "build-site: agentkey-wasm-split or wasm-bindgen is missing; run scripts/setup.sh first" >&2
  exit 1
fi

cargo build -p frontend --lib --target wasm32-unknown-unknown --no-default-features --features hydrate \
  --profile "$profile" --target-dir target/front

out=target/site/pkg
split=target/front/split
rm -rf "$split" "$out"
mkdir -p "$split" "$out"
# Every page is a lazy route: agentkey-wasm-split (scripts/wasm-split) cuts the linked module,
# built with --emit-relocs, into the main module, one chunk per page plus chunks for code pages
# share, the loader the main module imports and the manifest Leptos reads to preload a page's
# chunks. Only the main module goes through wasm-bindgen; the chunks share its memory and table.
# A running server reads the manifest once: restart it after rebuilding the site.
agentkey-wasm-split split "target/front/wasm32-unknown-unknown/$dir/frontend.wasm" "$split/agentkey.wasm" "$out" agentkey
wasm-bindgen --target web --no-typescript --keep-lld-exports --out-dir "$out" --out-name agentkey "$split/agentkey.wasm"
# The hydration script asks for <name>.wasm (no _bg suffix) when the name is set at build time.
mv -f "$out/agentkey_bg.wasm" "$out/agentkey.wasm"
if [[ "$profile" == "wasm-release" && -x end2end/node_modules/.bin/wasm-opt ]]; then
  # Debian's binaryen (108) breaks the module; only the npm build (132) is used.
  # --strip-debug drops the name section (2.5 MB of names in a 4.3 MB module).
  # The main module and every chunk, two at a time (each run is a separate node process).
  printf '%s\0' "$out"/*.wasm | xargs -0 -P 2 -I '{}' end2end/node_modules/.bin/wasm-opt -Oz \
    --enable-bulk-memory --enable-nontrapping-float-to-int --strip-debug --strip-producers '{}' -o '{}'
fi
# Now that every module is final: each page and the chunks it needs become one bundle named with
# the build's hash (loader and manifest follow).
agentkey-wasm-split stamp "$out" agentkey
cp style/main.css "$out/agentkey.css"
# A release ships the JS glue, the loader and the CSS minified (npm esbuild, pinned in end2end/).
if [[ "$profile" == "wasm-release" && -x end2end/node_modules/.bin/esbuild ]]; then
  for file in "$out"/*.js "$out"/*.css; do
    end2end/node_modules/.bin/esbuild "$file" --minify --log-level=error --allow-overwrite --outfile="$file"
  done
fi
# The server sends these gzip copies to browsers that accept them (never compresses per request).
# For a release, zopfli (when installed) writes gzip streams about 4 % smaller than gzip -9,
# which every browser reads alike; 5 iterations get nearly all of its gain in a few seconds.
if [[ "$profile" == "wasm-release" ]] && command -v zopfli >/dev/null 2>&1; then
  printf '%s\0' "$out"/*.wasm "$out"/*.js "$out"/*.css | xargs -0 -P 2 -n 4 zopfli --i5
else
  gzip -9 -k -f "$out"/*.wasm "$out"/*.js "$out"/*.css
fi
cp -r public/. target/site/
echo "site built in target/site ($profile)"
