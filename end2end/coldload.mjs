// Cold load of dashboard pages, as a benchmark (not a test): a signed-in reviewer opens each
// page in a fresh browser profile (empty cache) five times; prints the median time from
// navigation to a hydrated page, the bytes transferred and the number of requests.
// Run by `scripts/e2e.sh coldload.mjs` (it starts the server and the mail sink's port).
import { writeFileSync } from "node:fs";
import { launch, smtpSink, BASE_URL } from "./support.mjs";

const OWNER = process.env.E2E_OWNER ?? "owner@e2e.test";
const sink = smtpSink(Number(process.env.E2E_SMTP_PORT ?? 2526));
const RUNS = 5;
const PAGES = (process.env.COLD_PAGES ?? "/inbox,/access").split(",");

async function cookies() {
  const context = await launch();
  const page = await context.newPage();
  await page.goto(BASE_URL + "/login");
  await page.waitForSelector("body[data-hydrated]");
  await page.fill("#email", OWNER);
  await page.click("button[type=submit]");
  const mail = await sink.waitFor(/auth\/confirm\?token=[0-9a-f]{64}/, 0);
  await page.goto(mail.match(/https?:\/\/[^\s"<>]+\/auth\/confirm\?token=[0-9a-f]{64}/)[0]);
  await page.waitForSelector("body[data-hydrated]");
  await page.click("#confirm");
  await page.waitForURL(/\/inbox$/);
  const jar = await context.cookies();
  await context.close();
  return jar;
}

async function once(jar, path) {
  const context = await launch();
  await context.addCookies(jar);
  const page = await context.newPage();
  let requests = 0;
  page.on("request", () => { requests += 1; });
  const started = Date.now();
  const response = await page.goto(BASE_URL + path);
  await page.waitForSelector("body[data-hydrated]", { timeout: 30_000 });
  if (process.env.COLD_HTML) writeFileSync(process.env.COLD_HTML, await response.text());
  const ms = Date.now() - started;
  if (process.env.COLD_DEBUG) {
    const names = await page.evaluate(() =>
      [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")].map(
        (e) => `${e.name.split("/").pop()} ${e.transferSize} (body ${e.encodedBodySize})`,
      ),
    );
    console.log(names.join("\n"));
  }
  const bytes = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation").map((e) => e.transferSize);
    const res = performance.getEntriesByType("resource").map((e) => e.transferSize);
    return [...nav, ...res].reduce((a, b) => a + b, 0);
  });
  await context.close();
  return { ms, bytes, requests };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

await sink.start();
const jar = await cookies();
for (const path of PAGES) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once(jar, path));
  console.log(
    `cold load ${path}: median ${median(runs.map((r) => r.ms))} ms (runs ${runs.map((r) => r.ms).join(", ")}), ` +
      `${(median(runs.map((r) => r.bytes)) / 1024).toFixed(0)} KiB, ${median(runs.map((r) => r.requests))} requests`,
  );
}
await sink.stop();
