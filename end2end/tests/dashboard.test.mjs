// The whole reviewer flow in a real browser against a fresh server: sign in by the emailed
// link, register an agent, see its request arrive live, approve from the keyboard, revoke,
// answer a tool suggestion, accept a guide suggestion, and read the audit log.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { execFileSync } from "node:child_process";
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

/** The delivery choice of the "Add a tool" form. */
const CREATE_DELIVERY = "form[aria-label='Add a tool'] select.tool-delivery";

/** A decision waits UNDO_MS for Undo before it is sent: move the page's clock past that. */
const UNDO_MS = 5_000;
async function sendHeld(page) {
  await page.locator(".toast.held").first().waitFor();
  await page.clock.runFor(UNDO_MS);
}

const shot = (page, name) => page.screenshot({ path: join(OUTPUT, `${name}.png`), fullPage: true });
/** Screenshots at 1440×900 (`name-1440`) and 390×844 (`name-390`), then the size it had. */
async function shots(page, name) {
  const size = page.viewportSize();
  for (const [width, height] of [[1440, 900], [390, 844]]) {
    await page.setViewportSize({ width, height });
    await shot(page, `${name}-${width}`);
  }
  await page.setViewportSize(size);
}

const AXE = new URL("../node_modules/axe-core/axe.min.js", import.meta.url).pathname;

/** Runs axe-core on `paths` in the light and the dark scheme; returns every violation. */
async function axeViolations(page, paths) {
  // Evaluated by the browser itself before each page's scripts (the page's CSP is not asked).
  await page.addInitScript({ path: AXE });
  const found = [];
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const path of paths) {
      await open(page, path);
      const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
      for (const v of result.violations) {
        const where = v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ");
        found.push(`${scheme} ${path}: ${v.id} (${v.impact}) at ${where}`);
      }
    }
  }
  return found;
}

/** A fresh browser with a signed-in page that records problems (but the refusals `allowed`). */
async function signedIn(problems, allowed = () => false) {
  const context = await launch();
  // The page's timers run on a clock the test may move (decisions wait 5 s for Undo).
  await context.clock.install();
  const page = await context.newPage();
  watch(page, problems, allowed);
  await signIn(page);
  return { context, page };
}

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

/** Refusals a test provokes on purpose: one of `paths` answering 400. */
const refusal = (...paths) => (res) => res.status() === 400 && paths.some((p) => res.url().endsWith(p));
/** Problems but the browser's own log line of a provoked 400. */
const unexpected = (problems) => problems.filter((p) => !/status of 400/.test(p));

test("a reviewer runs the whole flow in the dashboard", async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const problems = [];
  const { context, page } = await signedIn(problems, refusal("/rpc/tools/create", "/rpc/audit"));
  try {
    await shot(page, "inbox-empty");

    // Register an agent; its key is shown once.
    await open(page, "/agents");
    await page.fill("#agent-name", "e2e-coder");
    await page.fill("#agent-description", "Writes code in the e2e test");
    await page.click("#create-agent");
    const key = (await page.textContent("#new-key", { timeout: 10_000 })).trim();
    assert.match(key, /^ak_/);
    // The first tab is an MCP client's setup: the endpoint, and the key read from the environment.
    const mcpSetup = await page.textContent("#snippet");
    assert.match(mcpSetup, /\/mcp /);
    assert.match(mcpSetup, /AGENTKEY_API_KEY/);
    assert.ok(!mcpSetup.includes(key), "no setup inlines the key");
    await page.getByRole("tab", { name: "CLAUDE.md", exact: true }).click();
    assert.match(await page.textContent("#snippet"), /AgentKey/);
    await shot(page, "agents-key");

    // Add a tool with a shared secret. A one-letter name is explained beside the field in
    // plain words; a bare domain is a URL.
    await open(page, "/tools");
    // New tools default to the proxy; this one hands its secret out.
    assert.equal(await page.inputValue(CREATE_DELIVERY), "proxy");
    await page.fill("#tool-name", "G");
    await page.selectOption(CREATE_DELIVERY, "fetch");
    await page.click("#create-tool");
    await page.locator("#tool-name-error", { hasText: "Name must be at least 2 characters (got 1)." }).waitFor();
    assert.equal(await page.locator(".toast.error").count(), 0, "said beside the field, not in a toast");
    await shot(page, "tools-field-error");
    await page.fill("#tool-name", "GitHub");
    await page.fill("#tool-url", "github.com");
    await page.fill("#tool-secret", "ghp_e2e_secret_value");
    await page.fill("#tool-instructions", "Use the REST API v3.");
    await page.click("#create-tool");
    await page.waitForSelector("#tools .tool");
    assert.ok(!(await page.content()).includes("ghp_e2e_secret_value"), "secret must never be shown back");
    await shot(page, "tools");

    // The catalog exports as YAML (without the secret) and that export plans no change.
    await page.click("#export-catalog-yaml");
    await page.waitForFunction(() => document.querySelector("#catalog-json")?.value.includes("- name: GitHub"));
    assert.ok(!(await page.inputValue("#catalog-json")).includes("ghp_e2e_secret_value"));
    await page.click("#preview-import");
    await page.locator("#import-plan li", { hasText: "unchanged GitHub" }).waitFor();
    await shot(page, "catalog-yaml");

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
    // What waits is counted in the sidebar and the tab title, live; each page has its title.
    await page.locator("#pending-count", { hasText: /^[1-9]\d*$/ }).waitFor();
    const waiting = (await page.textContent("#pending-count")).trim();
    await page.waitForFunction((n) => document.title === `(${n}) Inbox · AgentKey`, waiting);
    await shot(page, "inbox-request");

    // The reviewer picks how long the grant lasts (the agent asked for none), then approves
    // from the keyboard: j/k select, a approves.
    const row = page.locator("#requests .request:has-text('e2e-coder')");
    // Beside the request: who registered the agent, its last activity, what it holds.
    const standing = row.locator(".agent-context");
    await standing.locator(".registrant", { hasText: OWNER }).waitFor();
    assert.match(await standing.textContent(), /last active just now · holds nothing yet/);
    await shots(page, "inbox-context");
    await row.locator("select.duration-choice").selectOption("8h");
    await row.locator(".reason").click();
    await page.keyboard.press("k");
    // A decision waits 5 s for Undo before anything is sent; undone, nothing reached the server.
    // The page's clock stands still meanwhile: the window ends when the test says.
    await page.clock.pauseAt(Date.now() + 1000);
    await page.keyboard.press("a");
    await page.waitForSelector("#requests .request", { state: "detached", timeout: 5_000 });
    const held = page.locator(".toast.held", { hasText: "Approving GitHub for e2e-coder…" });
    await held.waitFor();
    await shots(page, "inbox-undo");
    await held.locator("button.undo").click();
    // The Undo toast is gone (a new toast never takes its place by reusing its id).
    await held.waitFor({ state: "detached" });
    await page.locator(".toast", { hasText: "Undone: nothing was sent." }).waitFor();
    await row.waitFor();
    await page.clock.runFor(UNDO_MS);
    assert.equal((await bot.tools()).json.tools.find((t) => t.name === "GitHub").your_access, "pending");
    await row.locator(".reason").click();
    await page.keyboard.press("a");
    await sendHeld(page);
    await page.clock.resume();
    // The row left at once (optimistic); the toast says the server has approved.
    await page.waitForSelector(".toast:has-text('Approved GitHub')", { timeout: 5_000 });
    const fetched = await bot.fetchCredential(github.id);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.json.credential, "ghp_e2e_secret_value");
    const left = fetched.json.grant_expires_in_seconds;
    assert.ok(left > 8 * 3600 - 120 && left <= 8 * 3600, `an 8 h grant: ${left} s left`);
    assert.equal((await bot.tools()).json.tools.find((t) => t.name === "GitHub").grant_expires_in_seconds > 0, true);

    // A guide suggestion from the approved agent, accepted into a new version.
    const tip = await bot.suggestGuide(github.id, "Set per_page=100 to avoid many round trips.", "Saves requests");
    assert.equal(tip.status, 201);
    await page.waitForSelector(".guide-suggestion", { timeout: 5_000 });
    // Its preview is the guide as accepting it leaves it, the added text marked.
    await page.click(".guide-suggestion .guide-preview summary");
    const preview = page.locator(".guide-suggestion .guide-text");
    assert.equal(await preview.textContent(), "Use the REST API v3.\n\nSet per_page=100 to avoid many round trips.");
    assert.equal(await preview.locator("ins").textContent(), "Set per_page=100 to avoid many round trips.");
    await shots(page, "inbox-guide-preview");
    await page.click(".guide-suggestion button.primary");
    await page.waitForSelector(".guide-suggestion", { state: "detached", timeout: 5_000 });
    assert.match((await bot.fetchCredential(github.id)).json.instructions, /per_page=100/);

    await open(page, "/tools");
    // The tool lists who holds it, with the time left and the last fetch, and charts its use.
    await page.locator("#tools .holders .holder", { hasText: /^e2e-coder \(7 h 5\d min left\), fetched just now$/ }).waitFor();
    await page.locator("#tools .tool svg.sparkline[aria-label^='GitHub: 2 uses in the last 30 days']").waitFor();
    // The agent's page counts the grant down; revoke from there: the next fetch is refused.
    await open(page, "/agents");
    await page.locator(".grant time.countdown", { hasText: /^7 h 5\d min left$/ }).waitFor();
    await page.click(".grant button.revoke");
    await page.waitForSelector("#dialog[role=dialog]");
    assert.equal(await page.isDisabled("#dialog-confirm"), true, "a reason is required");
    await shot(page, "revoke-dialog");
    await page.fill("#dialog-reason", "Not needed for this project any more.");
    await page.click("#dialog-confirm");
    await page.waitForSelector(".grant .badge.approved", { state: "detached", timeout: 5_000 });
    assert.equal((await bot.fetchCredential(github.id)).status, 403);
    // The agent had fetched the shared secret: AgentKey offers to rotate it right there, and
    // the new secret is taken masked and never shown back.
    await page.locator("#dialog", { hasText: "e2e-coder saw version 1 of GitHub's secret" }).waitFor({ timeout: 5_000 });
    assert.equal(await page.getAttribute("#dialog-secret", "type"), "password");
    await shot(page, "rotate-after-revoke");
    await page.fill("#dialog-secret", "ghp_e2e_rotated_value");
    await page.click("#dialog-confirm");
    await page.waitForSelector(".toast:has-text('secret is now version 2')", { timeout: 5_000 });
    assert.ok(!(await page.content()).includes("ghp_e2e_rotated_value"));

    // A suggestion for a missing tool; adding the tool opens a request for its backer.
    const idea = await bot.suggest("Linear", "https://linear.app", "Track the e2e bugs as issues.");
    assert.equal(idea.status, 201);
    await open(page, "/inbox");
    await page.click(".suggestion a.button");
    await page.waitForSelector("#backers-note");
    assert.equal(await page.inputValue("#tool-name"), "Linear");
    await page.fill("#tool-secret", "lin_e2e_secret");
    await page.selectOption(CREATE_DELIVERY, "fetch");
    await page.click("#create-tool");
    await page.waitForSelector("#tools .tool:has-text('Linear')");
    await open(page, "/inbox");
    await page.waitForSelector("#requests .request:has-text('Linear')", { timeout: 5_000 });
    // Deny from the keyboard: `d` opens the dialog without typing itself into the reason,
    // Ctrl+Enter confirms, and the agent reads exactly what was typed.
    await page.keyboard.press("d");
    await page.waitForSelector("#dialog[role=dialog]");
    await page.keyboard.type("Not needed");
    assert.equal(await page.inputValue("#dialog-reason"), "Not needed");
    await page.keyboard.press("Control+Enter");
    // `z` takes the denial back while it waits; then it is made again and sent.
    await page.locator(".toast.held", { hasText: "Denying Linear for e2e-coder…" }).waitFor();
    await page.keyboard.press("z");
    await page.waitForSelector("#requests .request:has-text('Linear')");
    await page.clock.runFor(UNDO_MS);
    assert.equal((await bot.tools()).json.tools.find((t) => t.name === "Linear").your_access, "pending");
    await page.keyboard.press("d");
    await page.waitForSelector("#dialog[role=dialog]");
    await page.keyboard.type("Not needed");
    await page.keyboard.press("Control+Enter");
    await sendHeld(page);
    await page.waitForSelector(".toast:has-text('Denied Linear')", { timeout: 5_000 });
    const linear = (await bot.tools()).json.tools.find((t) => t.name === "Linear");
    assert.equal(linear.your_access, "denied");
    assert.equal(linear.denial_reason, "Not needed");

    // The audit log, reached through the sidebar: the router loads the page's chunks on the
    // way (no full page load). Filter by action, export links, chain verified.
    await page.click("nav.sidebar a[href='/audit']");
    await page.waitForURL(/\/audit$/);
    await page.waitForSelector("#chain-status.ok");
    assert.equal(await page.locator(".routing").isHidden(), true, "the loading bar is gone once the page is there");
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

    // The start of an action picks every action it begins; a refused filter is said beside its
    // field while the rows stay; the agent comes from a list; a row opens into its details.
    const actionsShown = () => page.evaluate(() =>
      [...document.querySelectorAll("#audit tbody td:nth-child(4)")].map((c) => c.textContent));
    await page.fill("#f-action", "grant.*");
    await page.click("#apply-filters");
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll("#audit tbody td:nth-child(4)")].map((c) => c.textContent);
      return cells.length >= 2 && cells.every((c) => c.startsWith("grant.")) && new Set(cells).size >= 2;
    }, null, { timeout: 5_000 });
    const before = await actionsShown();
    await page.fill("#f-action", "Grant!");
    await page.click("#apply-filters");
    await page.locator("#f-action-error", { hasText: /^Action must be an action such as credential\.vended/ }).waitFor();
    assert.deepEqual(await actionsShown(), before, "the table stays");
    await page.fill("#f-action", "grant.denied");
    await page.selectOption("#f-agent", { label: "e2e-coder" });
    await page.click("#apply-filters");
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll("#audit tbody td:nth-child(4)")].map((c) => c.textContent);
      return cells.length >= 1 && cells.every((c) => c === "grant.denied");
    }, null, { timeout: 5_000 });
    assert.equal(await page.locator("#f-action-error").count(), 0, "the error goes with a good filter");
    await page.locator("#audit .audit-open").first().click();
    const detail = page.locator("#audit .audit-detail");
    await detail.waitFor();
    assert.match(await detail.textContent(), /ReasonNot needed/);
    assert.match(await detail.locator(".metadata").textContent(), /"tool_name": "Linear"/);
    await shot(page, "audit-detail");

    await open(page, "/");
    await page.waitForSelector("#count-agents");
    // The month's activity names the tool and the agent that used it.
    await page.locator("#activity svg.sparkline[aria-label^='GitHub: ']").waitFor();
    await page.locator("#activity svg.sparkline[aria-label^='e2e-coder: ']").waitFor();
    await shot(page, "overview");
    await open(page, "/settings");
    await page.waitForSelector("#sessions .row");
    await shot(page, "settings");

    // A slow navigation (the next page's code takes 1.5 s) keeps the frame and the page being
    // left on screen under the loading bar.
    await open(page, "/");
    await page.route(/\/pkg\/bundle_.*\.wasm/, async (route) => {
      await new Promise((r) => setTimeout(r, 1500));
      await route.continue();
    });
    await page.click(".sidebar a[href='/members']");
    await page.waitForSelector(".routing:not([hidden])", { timeout: 1_000 });
    assert.equal(await page.isVisible(".sidebar"), true, "the sidebar stays");
    assert.equal(await page.textContent("main h1"), "Overview", "the page being left stays");
    await page.waitForFunction(() => document.querySelector("main h1")?.textContent === "Members", null, { timeout: 10_000 });
    await page.unroute(/\/pkg\/bundle_.*\.wasm/);

    // At 390 px the links fold into a menu, rows put their buttons under the text, and wide
    // tables scroll inside themselves rather than the page sideways.
    await page.setViewportSize({ width: 390, height: 844 });
    await open(page, "/tools");
    const links = page.locator("#nav-links");
    assert.equal(await links.isVisible(), false, "the links are folded");
    await page.click(".menu-toggle");
    await links.locator("a", { hasText: "Agents" }).waitFor();
    await shot(page, "menu-390");
    await links.locator("a", { hasText: "Agents" }).click();
    await page.waitForURL(/\/agents$/);
    await page.locator("main h1", { hasText: "Agents" }).waitFor();
    assert.equal(await links.isVisible(), false, "choosing a page folds the menu");
    const agentRow = page.locator("#agents .agent").first();
    const text = await agentRow.locator(".main").boundingBox();
    const buttons = await agentRow.locator(":scope > .actions").boundingBox();
    assert.ok(buttons.y >= text.y + text.height - 1, "the buttons are under the text");
    for (const path of ["/", "/inbox", "/access", "/agents", "/tools", "/audit", "/reviews", "/settings"]) {
      await open(page, path);
      const sideways = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      const wide = await page.evaluate(() => [...document.querySelectorAll("body *")]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest(".table-scroll, .access-scroll"))
        .slice(0, 5).map((el) => `${el.tagName}.${el.className}#${el.id} ${Math.round(el.getBoundingClientRect().right)}`));
      assert.ok(sideways <= 0, `${path} scrolls sideways by ${sideways} px at 390 px: ${wide.join(", ")}`);
      await shot(page, `${path === "/" ? "overview" : path.slice(1)}-390`);
    }
    await page.setViewportSize({ width: 1440, height: 900 });
    for (const path of ["/", "/inbox", "/access", "/agents", "/tools", "/audit", "/reviews", "/settings"]) {
      await open(page, path);
      await shot(page, `${path === "/" ? "overview" : path.slice(1)}-1440`);
    }

    console.log(`live inbox: request visible ${seenAfterMs} ms after the agent's POST returned`);
    assert.deepEqual(unexpected(problems), []);
  } finally {
    await context.close();
  }
});

test("an admin connects Slack, sends a test and an agent's request reaches it", async () => {
  // A Slack stand-in on loopback (the e2e server runs with AGENTKEY_TEST_LOOPBACK_WEBHOOKS).
  const received = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => {
      received.push({ path: req.url, key: req.headers["idempotency-key"], body: JSON.parse(body || "null") });
      res.end("ok");
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const webhook = `http://127.0.0.1:${receiver.address().port}/services/T0/B0/e2eWebhookSECRET`;
  const problems = [];
  const { context, page } = await signedIn(problems, refusal("/rpc/notifications/webhook"));
  try {
    await open(page, "/settings");
    const slack = page.locator("[data-channel=slack]");
    // The section says where a webhook comes from; a refused URL is explained beside the
    // field and stays there to be corrected.
    assert.equal(await slack.locator(".how-to a").getAttribute("href"), "https://api.slack.com/messaging/webhooks");
    await slack.locator("input[name=webhook]").fill("https://example.com/not-a-slack-hook");
    await slack.locator("button[type=submit]").click();
    await slack.locator("#webhook-error-slack", { hasText: /^URL / }).waitFor();
    assert.equal(await slack.locator("input[name=webhook]").inputValue(), "https://example.com/not-a-slack-hook");
    assert.equal(await page.locator(".toast.error").count(), 0, "said beside the field, not in a toast");
    await slack.locator("input[name=webhook]").fill(webhook);
    await slack.locator("button[type=submit]").click();
    await slack.locator("code.target").waitFor();
    assert.equal(await slack.locator("code.target").textContent(), "127.0.0.1/services/…CRET");
    assert.equal(await slack.locator("input[name=webhook]").inputValue(), "", "the URL is not kept in the form");
    assert.ok(!(await page.content()).includes("e2eWebhookSECRET"), "the page never shows the saved URL");

    await slack.locator("button.test").click();
    await page.locator(".toast", { hasText: "Test sent to Slack." }).waitFor();
    assert.equal(received.length, 1);
    assert.match(JSON.stringify(received[0].body.blocks), /AgentKey test/);

    // An agent's request arrives in Slack through the outbox, with its reason.
    await open(page, "/agents");
    await page.fill("#agent-name", "e2e-notified");
    await page.fill("#agent-description", "Requests a tool in the notifications test");
    await page.click("#create-agent");
    const key = (await page.textContent("#new-key", { timeout: 10_000 })).trim();
    const bot = agent(key);
    const catalog = await bot.tools();
    const tool = catalog.json.tools[0];
    assert.ok(tool, "the first test left tools in the catalog");
    const res = await bot.request(tool.id, "Notify the reviewers <!channel>");
    assert.equal(res.status, 201);
    for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(received.length, 2, "the access request reached Slack");
    const text = JSON.stringify(received[1].body.blocks);
    assert.match(text, /e2e-notified/);
    assert.match(text, /\[channel\]/, "mentions are neutralised");
    assert.notEqual(received[1].key, received[0].key);

    await open(page, "/settings");
    await page.locator("[data-channel=slack] [data-status=delivered]").waitFor();
    await shot(page, "settings-notifications");
    assert.deepEqual(unexpected(problems), []);
  } finally {
    await context.close();
    receiver.close();
  }
});

/** Accepts the invitation mailed to `email` in a fresh browser; returns its context and page. */
async function acceptInvitation(email, sent, problems) {
  const mail = await sink.waitFor(new RegExp(`To: ${email}[\\s\\S]*invite\\?token=[0-9a-f]{64}`), sent);
  const link = mail.match(/https?:\/\/[^\s"<>]+\/invite\?token=[0-9a-f]{64}/)[0];
  const context = await launch();
  await context.clock.install();
  const page = await context.newPage();
  watch(page, problems, (res) => res.url().includes("/rpc/requests/approve"));
  await page.goto(link);
  await page.waitForSelector("body[data-hydrated]");
  await page.click("#accept");
  await page.waitForURL(/\/inbox$/);
  return { context, page };
}

test("a second reviewer joins by invitation, a quorum of two decides, an auditor only reads", async () => {
  const problems = [];
  const { context, page } = await signedIn(problems);
  const contexts = [context];
  try {
    // Invite a reviewer and an auditor; each accepts in their own browser.
    await open(page, "/members");
    let sent = sink.messages.length;
    await page.fill("#invite-email", "reviewer@e2e.test");
    await page.selectOption("#invite-role", "approver");
    await page.click("#invite button[type=submit]");
    await page.locator(".toast", { hasText: "Invitation sent to reviewer@e2e.test." }).waitFor();
    const reviewer = await acceptInvitation("reviewer@e2e.test", sent, problems);
    contexts.push(reviewer.context);
    sent = sink.messages.length;
    await page.fill("#invite-email", "auditor@e2e.test");
    await page.selectOption("#invite-role", "auditor");
    await page.click("#invite button[type=submit]");
    await page.locator(".toast", { hasText: "Invitation sent to auditor@e2e.test." }).waitFor();
    const auditor = await acceptInvitation("auditor@e2e.test", sent, problems);
    contexts.push(auditor.context);
    await open(page, "/members");
    await page.locator("li.member[data-email='reviewer@e2e.test']").waitFor();
    await shot(page, "members");

    // GitHub needs two approvals.
    await open(page, "/tools");
    const row = page.locator("li.tool", { hasText: "GitHub" });
    await row.locator("button", { hasText: "Edit" }).click();
    await row.locator("form.quorum select").selectOption("2");
    await row.locator("form.quorum button[type=submit]").click();
    // Two members may approve, and the owner registered e2e-coder: its requests cannot reach
    // two approvals, and the toast says so.
    const quorumToast = page.locator(".toast", { hasText: "now needs 2 approval(s)" });
    await quorumToast.waitFor();
    assert.match(await quorumToast.textContent(), /Warning: .*e2e-coder/);

    // An agent registered from the CLI (so the owner did not register it) asks for GitHub.
    const created = JSON.parse(execFileSync(process.env.AGENTKEY_BIN, ["--json", "agent", "create", "--name", "e2e-quorum-bot"]).toString());
    const bot = agent(created.api_key);
    const github = (await bot.tools()).json.tools.find((t) => t.name === "GitHub");
    assert.equal((await bot.request(github.id, "Needs two reviewers to agree.")).status, 201);

    // First approval: still pending, "1 of 2".
    await open(reviewer.page, "/inbox");
    const pending = reviewer.page.locator("#requests .request", { hasText: "e2e-quorum-bot" });
    await pending.locator("button.approve").click();
    await sendHeld(reviewer.page);
    await reviewer.page.locator(".toast", { hasText: "Approval recorded: 1 of 2." }).waitFor();
    await pending.locator(".quorum", { hasText: "1 of 2 approvals · approved by reviewer@e2e.test" }).waitFor();
    assert.equal((await bot.fetchCredential(github.id)).status, 403, "one approval is not enough");
    await shot(reviewer.page, "inbox-quorum");

    // Second approval by the owner: approved, the agent fetches.
    await open(page, "/inbox");
    const ownerRow = page.locator("#requests .request", { hasText: "e2e-quorum-bot" });
    await ownerRow.locator(".quorum", { hasText: "1 of 2" }).waitFor();
    await ownerRow.locator("button.approve").click();
    await sendHeld(page);
    await page.locator(".toast", { hasText: "Approved GitHub for e2e-quorum-bot." }).waitFor();
    assert.equal((await bot.fetchCredential(github.id)).status, 200);

    // An agent the owner registers: the owner's inbox offers no Approve for it and says why;
    // the reviewer's does.
    await open(page, "/agents");
    await page.fill("#agent-name", "e2e-owners-bot");
    await page.click("#create-agent");
    const ownersKey = (await page.textContent("#new-key", { timeout: 10_000 })).trim();
    assert.equal((await agent(ownersKey).request(github.id, "Registered by the owner herself.")).status, 201);
    await open(page, "/inbox");
    const ownRow = page.locator("#requests .request", { hasText: "e2e-owners-bot" });
    await ownRow.locator(".cannot-approve", { hasText: "You registered this agent" }).waitFor();
    assert.equal(await ownRow.locator("button.approve").count(), 0, "no Approve for the registrant");
    await open(reviewer.page, "/inbox");
    const theirRow = reviewer.page.locator("#requests .request", { hasText: "e2e-owners-bot" });
    await theirRow.locator("button.approve").waitFor();
    assert.equal(await theirRow.locator(".cannot-approve").count(), 0);

    // The auditor reads the audit log, has no decision buttons, and the server refuses them.
    const linear = (await bot.tools()).json.tools.find((t) => t.name !== "GitHub");
    assert.equal((await bot.request(linear.id, "Something for the auditor to look at.")).status, 201);
    await open(auditor.page, "/audit");
    await auditor.page.locator("text=grant.approval_recorded").first().waitFor();
    await open(auditor.page, "/inbox");
    await auditor.page.locator("#requests .request", { hasText: "e2e-quorum-bot" }).waitFor();
    assert.equal(await auditor.page.locator("#requests button.approve").count(), 0, "no approve buttons for auditors");
    await shot(auditor.page, "inbox-auditor");
    const requestId = await auditor.page.locator("#requests .request", { hasText: "e2e-quorum-bot" }).first().getAttribute("data-id");
    const status = await auditor.page.evaluate(async (id) => {
      const res = await fetch("/rpc/requests/approve", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `id=${id}` });
      return res.status;
    }, requestId);
    assert.equal(status, 403, "the server function refuses an auditor");
    // The browser logs the refused call it was told to make; nothing else may fail.
    assert.deepEqual(problems.filter((p) => !p.includes("status of 403")), []);
  } finally {
    for (const c of contexts) await c.close();
  }
});

test("a tool's guide is edited and restored from its history; a change after the session is gone goes to sign-in", async () => {
  const problems = [];
  // The one refusal this test provokes: the change sent after the cookie is gone.
  const context = await launch();
  await context.clock.install();
  const page = await context.newPage();
  watch(
    page,
    problems,
    (res) =>
      (res.status() === 401 && res.url().includes("/rpc/tools/guide")) ||
      (res.status() === 400 && res.url().includes("/rpc/requests/approve")) ||
      (res.status() === 400 && res.url().includes("/rpc/tools/draft-guide")),
  );
  try {
    await signIn(page);
    await open(page, "/tools");
    await page.fill("#tool-name", "Notion");
    await page.fill("#tool-instructions", "Use the v1 API.");
    await page.selectOption(CREATE_DELIVERY, "fetch");
    await page.click("#create-tool");
    const row = page.locator("#tools .tool", { hasText: "Notion" });
    await row.waitFor();
    await row.locator("button", { hasText: "Edit" }).click();

    // Saving the guide makes version 2; its history shows version 1 with the change marked.
    await row.locator(".guide-input").fill("Use the v2 API.");
    await row.locator("button", { hasText: "Save guide" }).click();
    await page.locator(".toast", { hasText: "Usage guide saved as version 2." }).waitFor();
    await row.locator("button", { hasText: "History" }).click();
    const first = row.locator(".history li", { hasText: "v1 ·" });
    await first.waitFor();
    assert.match(await first.locator(".diff .del").textContent(), /Use the v1 API\./);
    assert.match(await first.locator(".diff .add").textContent(), /Use the v2 API\./);
    await first.locator("button", { hasText: "Restore" }).click();
    await page.locator(".toast", { hasText: "Restored as version 3." }).waitFor();
    await row.locator(".muted", { hasText: "guide v3" }).waitFor();
    await draftsAGuide(page);

    // A decision the server refuses (a per-agent tool approved without the agent's secret)
    // shows its reason and puts the optimistically hidden row back; the page keeps working.
    const cli = (...args) => JSON.parse(execFileSync(process.env.AGENTKEY_BIN, ["--json", ...args]).toString());
    const vault = cli("tool", "create", "--name", "Vault", "--mode", "per-agent").tool;
    const bot = agent(cli("agent", "create", "--name", "e2e-vault-bot").api_key);
    assert.equal((await bot.request(vault.id, "Read the staging secrets.")).status, 201);
    await open(page, "/inbox");
    const request = page.locator("#requests .request", { hasText: "e2e-vault-bot" });
    await request.locator("button.approve").click();
    await sendHeld(page);
    await page.locator(".toast.error").waitFor();
    await request.waitFor();
    await request.locator("input[type=password]").fill("vault_token_e2e");
    await request.locator("button.approve").click();
    await sendHeld(page);
    await page.locator(".toast", { hasText: "Approved Vault for e2e-vault-bot." }).waitFor();
    assert.equal((await bot.fetchCredential(vault.id)).json.credential, "vault_token_e2e");

    // The inbox at volume: three agents ask for two tools; the reviewer filters, groups by
    // tool, packs the rows and selects every shown row at once.
    const volumeTools = ["Figma", "Sentry"].map((name) => cli("tool", "create", "--name", name, "--delivery", "fetch").tool);
    const bots = ["volume-a", "volume-b", "volume-c"].map((n) => agent(cli("agent", "create", "--name", n).api_key));
    for (const b of bots) {
      for (const t of volumeTools) assert.equal((await b.request(t.id, `Need ${t.name} for the volume check.`)).status, 201);
    }
    await open(page, "/inbox");
    await page.locator("#requests .request").nth(5).waitFor();
    assert.equal(await page.locator("#requests .request time.ago").first().textContent(), "just now");
    await page.fill("#inbox-filter", "volume-b");
    await page.waitForFunction(() => document.querySelectorAll("#requests .request").length === 2);
    // Other tests share this server: the rest of the check looks at these six only.
    await page.fill("#inbox-filter", "volume");
    await page.waitForFunction(() => document.querySelectorAll("#requests .request").length === 6);
    await page.selectOption("#inbox-group", "tool");
    await page.locator("#requests .group-head", { hasText: "Sentry" }).waitFor();
    assert.equal(await page.locator("#requests .group-head").count(), 2);
    await page.check("#inbox-compact");
    const heights = await page.$$eval("#requests .request", (rows) => rows.map((r) => r.getBoundingClientRect().height));
    assert.ok(heights.every((h) => h <= 56), `15 compact rows fit in 900 px: ${heights}`);
    await page.check("#select-all");
    await page.locator(".bulk", { hasText: "6 selected" }).waitFor();
    await shot(page, "inbox-volume");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, "inbox-volume-390");
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.click(".bulk button:has-text('Deny selected')");
    await page.fill("#dialog-reason", "Volume check done.");
    await page.click("#dialog-confirm");
    await sendHeld(page);
    await page.locator(".toast", { hasText: "6 requests denied." }).waitFor();

    await open(page, "/tools");
    await row.locator("button", { hasText: "Edit" }).click();
    await row.locator(".guide-input").waitFor();

    // The session ends behind the page's back: the next change answers 401 and the page,
    // deciding on that status, goes to sign-in.
    await context.clearCookies();
    await row.locator("button", { hasText: "Save guide" }).click();
    await page.waitForURL(/\/login$/, { timeout: 5_000 });
    await page.waitForSelector("#email");
    // The browser logs the refused call itself; anything else is a problem.
    const refused = /Failed to load resource: the server responded with a status of (400|401)/;
    assert.deepEqual(problems.filter((p) => !refused.test(p)), []);
  } finally {
    await context.close();
  }
});

test("a proxied tool: the reviewer narrows the grant, the agent uses the secret without seeing it", async () => {
  // The tool's API on loopback (the e2e server runs with AGENTKEY_TEST_LOOPBACK_UPSTREAMS).
  const seen = [];
  const upstream = createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ data: [{ id: "ch_1" }], echoed: req.headers.authorization }));
  });
  await new Promise((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${upstream.address().port}`;
  const problems = [];
  const { context, page } = await signedIn(problems);
  try {
    await open(page, "/tools");
    await page.fill("#tool-name", "Stripe");
    await page.fill("#tool-secret", "sk_e2e_proxy_secret");
    const form = page.locator("form[aria-label='Add a tool']");
    await form.locator(".tool-upstream").fill(base);
    await form.locator(".tool-inject").fill("Authorization: Bearer {secret}");
    await form.locator(".tool-allow").fill("GET /v1/**\nPOST /v1/refunds");
    await page.click("#create-tool");
    const row = page.locator("#tools .tool", { hasText: "Stripe" });
    await row.waitFor();
    assert.match(await row.locator(".delivery-summary").textContent(), /proxy only/);

    await open(page, "/agents");
    await page.fill("#agent-name", "e2e-payments");
    await page.fill("#agent-description", "Uses Stripe through the proxy");
    await page.click("#create-agent");
    const key = (await page.textContent("#new-key", { timeout: 10_000 })).trim();
    await page.getByRole("tab", { name: "CLAUDE.md", exact: true }).click();
    assert.match(await page.textContent("#snippet"), /proxy/);
    const bot = agent(key);
    const stripe = (await bot.tools()).json.tools.find((t) => t.name === "Stripe");
    assert.equal(stripe.delivery, "proxy");
    assert.ok(stripe.proxy_url.endsWith(`/api/tools/${stripe.id}/proxy`));
    assert.equal((await bot.request(stripe.id, "Look up charges for the refund report.")).status, 201);

    // The reviewer approves read-only with a budget of 5 calls a day.
    await open(page, "/inbox");
    const request = page.locator("#requests .request", { hasText: "e2e-payments" });
    await request.waitFor({ timeout: 5_000 });
    await request.locator("input.read-only").check();
    await request.locator("input.calls-per-day").fill("5");
    await shot(page, "inbox-proxy-narrow");
    await request.locator("button.approve").click();
    await sendHeld(page);
    await page.locator(".toast", { hasText: "Approved Stripe" }).waitFor();

    const call = (method, path) =>
      fetch(`${stripe.proxy_url}${path}`, { method, headers: { authorization: `Bearer ${key}` } });
    const listed = await call("GET", "/v1/charges?limit=3");
    assert.equal(listed.status, 200);
    const text = await listed.text();
    assert.ok(!text.includes("sk_e2e_proxy_secret"), "the echoed secret is redacted");
    assert.equal(seen.at(-1).authorization, "Bearer sk_e2e_proxy_secret");
    assert.equal(seen.at(-1).url, "/v1/charges?limit=3");
    assert.equal((await call("POST", "/v1/refunds")).status, 403, "the grant is read-only");
    assert.equal((await bot.fetchCredential(stripe.id)).status, 403, "the secret is never handed out");
    assert.equal(seen.length, 1);

    await open(page, "/agents");
    const use = page.locator(".grant .grant-use", { hasText: "never sees it" });
    await use.waitFor();
    assert.match(await use.textContent(), /read-only · 1 of 5 calls today/);
    await shot(page, "agents-proxy-use");
    assert.deepEqual(problems.filter((p) => !p.includes("/proxy/v1/refunds") && !p.includes("/credentials")), []);

    // An access review of the agent's grants: its reviewer keeps Stripe, the review closes
    // with nothing revoked, and the evidence exports as CSV.
    await open(page, "/reviews");
    await page.selectOption("select.review-scope", "agent");
    await page.locator("select.review-target option", { hasText: "e2e-payments" }).waitFor({ state: "attached" });
    const paymentsAgent = await page.locator("select.review-target option", { hasText: "e2e-payments" }).getAttribute("value");
    await page.selectOption("select.review-target", paymentsAgent);
    await page.click("#start-review");
    const reviewed = page.locator("#review-detail tr.review-item", { hasText: "Stripe" });
    await reviewed.waitFor({ timeout: 5_000 });
    await reviewed.locator("button.keep").click();
    await reviewed.locator(".badge.keep").waitFor({ timeout: 5_000 });
    await page.click("#close-review");
    await page.click("#dialog-confirm");
    await page.locator(".toast", { hasText: "Review closed: 0 grant(s) revoked." }).waitFor({ timeout: 5_000 });
    await page.locator("#review-detail .badge.kept").waitFor();
    await page.click("#export-review");
    const csvHref = await page.locator("#review-csv").getAttribute("href");
    assert.match(decodeURIComponent(csvHref), /"e2e-payments","Stripe".*"keep".*"kept"/);
    await shot(page, "review-closed");

    // The access picture: the agent's Stripe cell is approved and used; opened, it shows the
    // grant's history and revokes it; the filters narrow the matrix.
    await open(page, "/access");
    const accessRow = page.locator("#access tr", { hasText: "e2e-payments" });
    const cell = accessRow.locator(`button.cell[data-tool='${stripe.id}']`);
    assert.equal((await cell.textContent()).trim(), "approved");
    assert.match(await cell.getAttribute("title"), /approved · last used \d{4}-\d\d-\d\d/);
    await page.fill("#access-agent", "payments");
    assert.equal(await page.locator("#access tbody tr").count(), 1, "the agent filter leaves one row");
    await page.fill("#access-tool", "zzz-no-such-tool");
    assert.equal(await page.locator("#access thead th").count(), 1, "the tool filter leaves no tool column");
    await page.fill("#access-tool", "");
    await shot(page, "access");
    await cell.click();
    const detail = page.locator("#grant-detail");
    await detail.locator(".history li", { hasText: "Look up charges for the refund report." }).waitFor();
    await detail.locator("button.revoke").click();
    await page.fill("#dialog-reason", "Refund report is done");
    await page.click("#dialog-confirm");
    await page.locator(".toast", { hasText: "Revoked Stripe for e2e-payments." }).waitFor();
    await accessRow.locator(`button.cell.revoked[data-tool='${stripe.id}']`).waitFor();
    assert.equal((await call("GET", "/v1/charges")).status, 403, "the revoke from the picture is instant");
    await shot(page, "access-revoked");

    // Every page, now that each holds data, passes axe-core in both schemes; and so does the
    // sign-in page, seen signed out.
    const found = await axeViolations(page, ["/", "/inbox", "/access", "/reviews", "/agents", "/tools", "/audit", "/members", "/settings", "/status"]);
    const outside = await launch();
    try {
      found.push(...(await axeViolations(await outside.newPage(), ["/login"])));
    } finally {
      await outside.close();
    }
    assert.deepEqual(found, [], `axe-core violations:\n${found.join("\n")}`);

    // Every page has its own tab title; an unknown address says so and links home.
    const titled = { "/": "Overview", "/inbox": "Inbox", "/access": "Access", "/reviews": "Access reviews", "/agents": "Agents", "/tools": "Tools",
      "/audit": "Audit log", "/members": "Members", "/settings": "Settings" };
    for (const [path, name] of Object.entries(titled)) {
      await open(page, path);
      await page.waitForFunction((n) => document.title === `${n} · AgentKey` || document.title.endsWith(`) ${n} · AgentKey`), name);
    }
    await page.goto(BASE_URL + "/no-such-page");
    await page.locator("main a[href='/']", { hasText: "Go to the overview" }).waitFor();
  } finally {
    await context.close();
    upstream.close();
  }
});


/**
 * A usage guide drafted by the model into the editor, cancelled and discarded, drafted again
 * and saved (on the signed-in `page`; sign-in links per mailbox are limited).
 */
async function draftsAGuide(page) {
  // The model: a chat-completions server on loopback at the port e2e.sh gave AGENTKEY_AI_URL.
  // "good" streams three chunks a little apart; "hang" sends one and then nothing.
  let mode = "good";
  let closedEarly = 0;
  const asked = [];
  const chunk = (text) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: text } }] })}\n\n`;
  const model = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/docs") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html><body><h1>Height API</h1><p>GraphQL at https://api.height.app/graphql, 1500 requests per hour.</p></body></html>");
      return;
    }
    let body = "";
    req.on("data", (d) => { body += d; });
    req.on("end", () => {
      asked.push(JSON.parse(body));
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk("## Authentication\n"));
      if (mode === "hang") {
        res.on("close", () => { if (!res.writableEnded) closedEarly += 1; });
        return;
      }
      const rest = ["Send `Authorization: <token>`.\n", "## Base URL\nhttps://api.height.app/graphql\n"];
      let i = 0;
      const next = () => {
        if (i < rest.length) { res.write(chunk(rest[i++])); setTimeout(next, 150); return; }
        res.end("data: [DONE]\n\n");
      };
      setTimeout(next, 150);
    });
  });
  const port = Number(process.env.E2E_AI_PORT ?? 3139);
  await new Promise((resolve) => model.listen(port, "127.0.0.1", resolve));
  try {
    await open(page, "/tools");
    await page.fill("#tool-name", "Height");
    await page.fill("#tool-instructions", "Hand-written guide.");
    await page.selectOption(CREATE_DELIVERY, "fetch");
    await page.click("#create-tool");
    const row = page.locator("#tools .tool", { hasText: "Height" });
    await row.waitFor();
    await row.locator("button", { hasText: "Edit" }).click();
    const editor = row.locator(".guide-input");
    const start = row.locator("button.ai-draft-start");
    assert.match(await start.textContent(), /Draft with AI \(e2e-model\)/);

    // A docs page on a private address is refused beside the field; the editor is untouched.
    await row.locator(".ai-docs-url").fill("http://10.0.0.7/docs");
    await start.click();
    await row.locator("#ai-docs-error", { hasText: "10.0.0.7 is not a public address" }).waitFor();
    assert.equal(await editor.inputValue(), "Hand-written guide.");

    // A silent model: the first chunk arrives, Cancel stops it and closes the model's
    // connection, Discard puts the hand-written text back.
    mode = "hang";
    await row.locator(".ai-docs-url").fill("");
    await start.click();
    await page.waitForFunction((el) => el.value.includes("## Authentication"), await editor.elementHandle());
    await row.locator("button.ai-draft-cancel").click();
    for (let i = 0; i < 50 && closedEarly === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(closedEarly, 1, "the cancelled draft kept the model's connection open");
    await row.locator(".ai-draft-discard").click();
    assert.equal(await editor.inputValue(), "Hand-written guide.");

    // A good model with the docs page: the text streams in, nothing is saved until Save guide.
    mode = "good";
    await row.locator(".ai-docs-url").fill(`http://127.0.0.1:${port}/docs`);
    await start.click();
    await row.locator(".ai-note", { hasText: "Draft ready" }).waitFor({ timeout: 10_000 });
    const draft = "## Authentication\nSend `Authorization: <token>`.\n## Base URL\nhttps://api.height.app/graphql\n";
    assert.equal(await editor.inputValue(), draft);
    assert.match(asked.at(-1).messages[1].content, /1500 requests per hour/);
    await shot(page, "tool-guide-draft");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, "tool-guide-draft-390");
    await page.setViewportSize({ width: 1440, height: 900 });
    await row.locator("button", { hasText: "Save guide" }).click();
    await page.locator(".toast", { hasText: "Usage guide saved as version 2." }).waitFor();
  } finally {
    model.close();
  }
}
