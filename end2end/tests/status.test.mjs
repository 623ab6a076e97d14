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
