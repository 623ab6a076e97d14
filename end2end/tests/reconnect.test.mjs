// The live inbox survives a server restart: the browser's event stream reconnects on its own,
// the server's first event makes the page resynchronise, and the session (stored in the
// database) is still valid. This test runs its own server so that it can restart it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, watch, smtpSink, OUTPUT } from "../support.mjs";

const BIN = process.env.AGENTKEY_BIN;
const PORT = Number(process.env.E2E_RECONNECT_PORT ?? 3141);
const SMTP_PORT = Number(process.env.E2E_RECONNECT_SMTP_PORT ?? 2527);
const BASE = `http://127.0.0.1:${PORT}`;
const OWNER = "reviewer@e2e.test";

test("the open inbox reconnects after a server restart and shows new requests", async () => {
  assert.ok(BIN, "AGENTKEY_BIN must point at the agentkey binary");
  mkdirSync(OUTPUT, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), "agentkey-reconnect-"));
  const env = {
    ...process.env,
    AGENTKEY_DATABASE_URL: `sqlite://${dir}/reconnect.db`,
    AGENTKEY_BIND: `127.0.0.1:${PORT}`,
    AGENTKEY_SMTP_URL: `smtp://127.0.0.1:${SMTP_PORT}`,
    // The built browser bundle of this checkout (the test runs from end2end/).
    AGENTKEY_SITE_ROOT: new URL("../../target/site", import.meta.url).pathname,
  };
  const cli = (...args) => JSON.parse(execFileSync(BIN, ["--json", ...args], { env }).toString());
  const sink = smtpSink(SMTP_PORT);
  await sink.start();
  let server = null;
  const start = async () => {
    server = spawn(BIN, ["serve"], { env, stdio: "ignore" });
    for (let i = 0; i < 200; i++) {
      try { if ((await fetch(`${BASE}/healthz`)).ok) return; } catch { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("server did not start");
  };
  const stop = () => new Promise((resolve) => { server.once("exit", resolve); server.kill("SIGTERM"); });

  cli("admin", "create-org", "--name", "Reconnect", "--owner-email", OWNER);
  const key = cli("agent", "create", "--name", "night-shift")["api_key"];
  const tool = execFileSync(BIN, ["--json", "tool", "create", "--name", "Notion", "--credential-stdin"], { env, input: "secret_notion" });
  const toolId = JSON.parse(tool.toString()).tool.id;

  await start();
  const context = await launch();
  const problems = [];
  try {
    const page = await context.newPage();
    // While the server is down the stream's reconnect attempts fail by design.
    watch(page, problems, (res) => res.url().endsWith("/events"));
    page.on("console", () => {});
    await page.goto(`${BASE}/login`);
    await page.waitForSelector("body[data-hydrated]");
    await page.fill("#email", OWNER);
    await page.click("button[type=submit]");
    const mail = await sink.waitFor(/auth\/confirm\?token=[0-9a-f]{64}/);
    await page.goto(mail.match(/https?:\/\/[^\s"<>]+\/auth\/confirm\?token=[0-9a-f]{64}/)[0]);
    await page.waitForSelector("body[data-hydrated]");
    await page.click("#confirm");
    await page.waitForURL(/\/inbox$/);
    await page.waitForSelector("body[data-live]");

    await stop();
    await start();
    const asked = await fetch(`${BASE}/api/tools/${toolId}/request`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "Write the nightly report page." }),
    });
    assert.equal(asked.status, 201);
    // No reload: the reconnected stream (or its resync) brings the request in.
    await page.waitForSelector("#requests .request:has-text('night-shift')", { timeout: 15_000 });
    await page.screenshot({ path: join(OUTPUT, "inbox-after-restart.png"), fullPage: true });
    const unexpected = problems.filter((p) => !p.startsWith("console:"));
    assert.deepEqual(unexpected, []);
  } finally {
    await context.close();
    if (server && server.exitCode === null) await stop();
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
