// Prints the browser bundle's sizes, gzip -9 as served compressed: the main module every page
// loads first, and for each page the main module plus the bundle of its lazy route (its own
// module and the chunks it needs, in one file; named by the manifest Leptos uses for
// preloading). Run after scripts/build-site.sh [--release].
import { readFileSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";

const pkg = new URL("../target/site/pkg/", import.meta.url);
const gz = (name) => gzipSync(readFileSync(new URL(name, pkg)), { level: 9 }).length;
const raw = (name) => readFileSync(new URL(name, pkg)).length;
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

const glue = ["agentkey.js", "__wasm_split.______________________.js"];
const main = gz("agentkey.wasm");
const glueGz = glue.reduce((sum, f) => sum + gz(f), 0);
const wasm = readdirSync(pkg).filter((f) => f.endsWith(".wasm"));
const allRaw = wasm.reduce((sum, f) => sum + raw(f), 0);
const allGz = wasm.reduce((sum, f) => sum + gz(f), 0);
console.log(`main module agentkey.wasm: ${kb(raw("agentkey.wasm"))}, gzip ${kb(main)}`);
console.log(`JS glue (${glue.join(", ")}): gzip ${kb(glueGz)}`);
console.log(`all ${wasm.length} WASM files: ${kb(allRaw)}, gzip ${kb(allGz)} (each file compressed alone)`);

const manifest = JSON.parse(readFileSync(new URL("__wasm_split_manifest.json", pkg)));
console.log("first visit of a page (main module + its page bundle, gzip):");
for (const [split, files] of Object.entries(manifest)) {
  const page = split.replace(/^__(\w+?)_route_view_\d+$/, "$1");
  const bundle = files.reduce((sum, f) => sum + gz(`${f}.wasm`), 0);
  console.log(`  ${page.padEnd(10)} ${kb(main + bundle).padStart(10)}  (bundle ${kb(bundle)})`);
}
