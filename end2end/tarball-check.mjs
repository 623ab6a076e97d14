// Release check (not a test of the suite): the setup link of a freshly unpacked tarball's
// server, followed in Debian's Chromium; prints what the page shows once signed in.
// Usage: node tarball-check.mjs <setup link>
import { launch } from "./support.mjs";

const link = process.argv[2];
const context = await launch();
const page = await context.newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(e.message));
page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });
await page.goto(link);
await page.waitForSelector("body[data-hydrated]", { timeout: 30_000 });
await page.fill("#org-name", "Tarball Check");
await page.fill("#owner-email", "owner@tarball.test");
await page.click("#confirm");
await page.waitForURL((u) => u.pathname === "/", { timeout: 15_000 });
await page.waitForSelector("body[data-hydrated]", { timeout: 30_000 });
console.log(`signed in: ${await page.title()} | ${(await page.textContent("main h1")).trim()} | problems: ${problems.length ? problems.join("; ") : "none"}`);
await context.close();
