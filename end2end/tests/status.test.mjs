// The status page is rendered on the server, hydrated by the WASM bundle, and its counts
// follow changes made elsewhere (here: the CLI) without a reload.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launch, OUTPUT, BASE_URL } from "../support.mjs";

const AGENTKEY_BIN = process.env.AGENTKEY_BIN;

test("status page hydrates and shows live counts without reload", async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const context = await launch();
  const problems = [];
  try {
    const page = await context.newPage();
    page.on("console", (msg) => { if (msg.type() === "error") problems.push(`console: ${msg.text()}`); });
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("response", (res) => { if (res.status() >= 400) problems.push(`HTTP ${res.status()} ${res.url()}`); });

    await page.goto(BASE_URL + "/status");
    await page.waitForSelector('#status[data-hydrated="true"]', { timeout: 15_000 });
    const before = Number(await page.textContent("#count-agents"));

    assert.ok(AGENTKEY_BIN, "AGENTKEY_BIN must point at the agentkey binary");
    execFileSync(AGENTKEY_BIN, ["agent", "create", "--name", "e2e-live-count"], { stdio: "ignore" });

    await page.waitForFunction(
      (n) => Number(document.querySelector("#count-agents")?.textContent) === n,
      before + 1,
      { timeout: 10_000 },
    );
    await page.click("#refresh");
    await page.screenshot({ path: join(OUTPUT, "status.png"), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a page loads its code in one bundle and no other page's", async () => {
  const context = await launch();
  try {
    const manifest = await (await fetch(BASE_URL + "/pkg/__wasm_split_manifest.json")).json();
    const [, own] = Object.entries(manifest).find(([split]) => split.startsWith("__status_route_view"));
    assert.equal(own.length, 1, "one bundle per page");
    const page = await context.newPage();
    const fetched = [];
    page.on("request", (req) => {
      const name = new URL(req.url()).pathname.match(/^\/pkg\/(.+)\.wasm$/)?.[1];
      if (name) fetched.push(name);
    });
    await page.goto(BASE_URL + "/status");
    await page.waitForSelector('#status[data-hydrated="true"]', { timeout: 15_000 });
    // The main module, then the page's own bundle once (its preload is the fetch the loader
    // makes): no request per chunk, and nothing of another page.
    assert.deepEqual(fetched.sort(), ["agentkey", own[0]].sort(), `fetched: ${fetched}`);
  } finally {
    await context.close();
  }
});

test("a page bundle that cannot be loaded ends in a visible reload notice, not a dead page", async () => {
  const context = await launch();
  try {
    const page = await context.newPage();
    // As after an upgrade: the page's bundle is gone.
    const manifest = await (await fetch(BASE_URL + "/pkg/__wasm_split_manifest.json")).json();
    const [, [bundle]] = Object.entries(manifest).find(([split]) => split.startsWith("__status_route_view"));
    await page.route(`${BASE_URL}/pkg/${bundle}.wasm`, (route) => route.fulfill({ status: 404, body: "" }));
    await page.goto(BASE_URL + "/status");
    const notice = page.locator("#fatal[role=alert]");
    await notice.waitFor({ timeout: 15_000 });
    assert.match(await notice.textContent(), /stopped working.*Reload the page/);
    await page.screenshot({ path: join(OUTPUT, "chunk-failure.png") });
  } finally {
    await context.close();
  }
});
