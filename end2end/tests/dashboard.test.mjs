// The whole reviewer flow in a real browser against a fresh server: sign in by the emailed
// link, register an agent, see its request arrive live, approve from the keyboard, revoke,
// answer a tool suggestion, accept a guide suggestion, and read the audit log.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launch, watch, smtpSink, agent, OUTPUT, BASE_URL } from "../support.mjs";

const OWNER = process.env.E2E_OWNER ?? "owner@e2e.test";
const SMTP_PORT = Number(process.env.E2E_SMTP_PORT ?? 2526);
const sink = smtpSink(SMTP_PORT);

before(() => sink.start());
after(() => sink.stop());

/** Navigates and waits until the WASM has hydrated the page (handlers attached). */
async function open(page, path) {
  await page.goto(BASE_URL + path);
  await page.waitForSelector("body[data-hydrated]", { timeout: 15_000 });
}

const shot = (page, name) => page.screenshot({ path: join(OUTPUT, `${name}.png`), fullPage: true });

async function signIn(page) {
  const sent = sink.messages.length;
  await open(page, "/login");
  await page.fill("#email", OWNER);
  await page.click("button[type=submit]");
  await page.waitForSelector("#link-sent");
  const mail = await sink.waitFor(/auth\/confirm\?token=[0-9a-f]{64}/, sent);
  const link = mail.match(/https?:\/\/[^\s"<>]+\/auth\/confirm\?token=[0-9a-f]{64}/)[0];
  await page.goto(link);
  await page.waitForSelector("body[data-hydrated]");
  await shot(page, "confirm");
  await page.click("#confirm");
  await page.waitForURL(/\/inbox$/);
}

test("a reviewer runs the whole flow in the dashboard", async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const context = await launch();
  const problems = [];
  // 403s are expected: the revoked agent's fetch is made by the test, not the page.
  try {
    const page = await context.newPage();
    watch(page, problems);

    await signIn(page);
    await shot(page, "inbox-empty");

    // Register an agent; its key is shown once.
    await open(page, "/agents");
    await page.fill("#agent-name", "e2e-coder");
    await page.fill("#agent-description", "Writes code in the e2e test");
    await page.click("#create-agent");
    const key = (await page.textContent("#new-key", { timeout: 10_000 })).trim();
    assert.match(key, /^ak_/);
    assert.match(await page.textContent("#snippet"), /AgentKey/);
    await shot(page, "agents-key");

    // Add a tool with a shared secret.
    await open(page, "/tools");
    await page.fill("#tool-name", "GitHub");
    await page.fill("#tool-url", "https://github.com");
    await page.fill("#tool-secret", "ghp_e2e_secret_value");
    await page.fill("#tool-instructions", "Use the REST API v3.");
    await page.click("#create-tool");
    await page.waitForSelector("#tools .tool");
    assert.ok(!(await page.content()).includes("ghp_e2e_secret_value"), "secret must never be shown back");
    await shot(page, "tools");

    const bot = agent(key);
    const catalog = await bot.tools();
    assert.equal(catalog.status, 200);
    const github = catalog.json.tools.find((t) => t.name === "GitHub");

    // The inbox is open and live; the agent's request appears without a reload.
    await open(page, "/inbox");
    await page.waitForSelector("body[data-live]", { timeout: 15_000 });
    const started = Date.now();
    const asked = await bot.request(github.id, "Open a pull request for the e2e fix.");
    assert.equal(asked.status, 201);
    await page.waitForSelector("#requests .request:has-text('e2e-coder')", { timeout: 5_000 });
    const seenAfterMs = Date.now() - started;
    await shot(page, "inbox-request");

    // Keyboard approve: j/k select, a approves.
    await page.keyboard.press("k");
    await page.keyboard.press("a");
    await page.waitForSelector("#requests .request", { state: "detached", timeout: 5_000 });
    // The row leaves at once (optimistic); the toast says the server has approved.
    await page.waitForSelector(".toast:has-text('Approved GitHub')", { timeout: 5_000 });
    const fetched = await bot.fetchCredential(github.id);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.json.credential, "ghp_e2e_secret_value");

    // A guide suggestion from the approved agent, accepted into a new version.
    const tip = await bot.suggestGuide(github.id, "Set per_page=100 to avoid many round trips.", "Saves requests");
    assert.equal(tip.status, 201);
    await page.waitForSelector(".guide-suggestion", { timeout: 5_000 });
    await page.click(".guide-suggestion button.primary");
    await page.waitForSelector(".guide-suggestion", { state: "detached", timeout: 5_000 });
    assert.match((await bot.fetchCredential(github.id)).json.instructions, /per_page=100/);

    // Revoke from the agent's page: the next fetch is refused.
    await open(page, "/agents");
    await page.click(".grant button.revoke");
    await page.waitForSelector("#dialog[role=dialog]");
    assert.equal(await page.isDisabled("#dialog-confirm"), true, "a reason is required");
    await shot(page, "revoke-dialog");
    await page.fill("#dialog-reason", "Not needed for this project any more.");
    await page.click("#dialog-confirm");
    await page.waitForSelector(".grant .badge.approved", { state: "detached", timeout: 5_000 });
    assert.equal((await bot.fetchCredential(github.id)).status, 403);

    // A suggestion for a missing tool; adding the tool opens a request for its backer.
    const idea = await bot.suggest("Linear", "https://linear.app", "Track the e2e bugs as issues.");
    assert.equal(idea.status, 201);
    await open(page, "/inbox");
    await page.click(".suggestion a.button");
    await page.waitForSelector("#backers-note");
    assert.equal(await page.inputValue("#tool-name"), "Linear");
    await page.fill("#tool-secret", "lin_e2e_secret");
    await page.click("#create-tool");
    await page.waitForSelector("#tools .tool:has-text('Linear')");
    await open(page, "/inbox");
    await page.waitForSelector("#requests .request:has-text('Linear')", { timeout: 5_000 });

    // The audit log: filter by action, export links, chain verified.
    await open(page, "/audit");
    await page.waitForSelector("#chain-status.ok");
    await page.fill("#f-action", "credential.vended");
    await page.click("#apply-filters");
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll("#audit tbody td:nth-child(4)")].map((c) => c.textContent);
      return cells.length >= 2 && cells.every((c) => c === "credential.vended");
    }, null, { timeout: 5_000 });
    const exported = await page.request.get(BASE_URL + (await page.getAttribute("#export-jsonl", "href")));
    assert.equal(exported.status(), 200);
    const jsonl = (await exported.text()).trim();
    const lines = jsonl.split("\n");
    assert.ok(lines.length >= 2 && lines.every((line) => JSON.parse(line).action === "credential.vended"), jsonl);
    const csv = await (await page.request.get(BASE_URL + (await page.getAttribute("#export-csv", "href")))).text();
    assert.match(csv, /^seq,created_at,/);
    assert.ok(!jsonl.includes("ghp_e2e_secret_value"));
    await shot(page, "audit");

    await open(page, "/");
    await page.waitForSelector("#count-agents");
    await shot(page, "overview");
    await open(page, "/settings");
    await page.waitForSelector("#sessions .row");
    await shot(page, "settings");

    console.log(`live inbox: request visible ${seenAfterMs} ms after the agent's POST returned`);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
