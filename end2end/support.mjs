// Shared pieces of the browser tests: Debian's Chromium, a real SMTP server on loopback that
// keeps what it receives, and a small client for the agent REST API.
import { createServer } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:3137";
export const OUTPUT = new URL("./output/", import.meta.url).pathname;

export async function launch() {
  // Debian's Chromium only; flags keep it off the (closed) network.
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "agentkey-e2e-")), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/** Watches a page for console errors, page errors and failed responses. */
export function watch(page, problems, allowStatus = () => false) {
  // E2E_CONSOLE=1 prints the page's console as it runs (debugging a failing flow).
  if (process.env.E2E_CONSOLE) page.on("console", (msg) => console.log(`[console ${msg.type()}] ${msg.text()}`));
  page.on("console", (msg) => { if (msg.type() === "error") problems.push(`console: ${msg.text()}`); });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("response", (res) => {
    if (res.status() >= 400 && !allowStatus(res)) problems.push(`HTTP ${res.status()} ${res.url()}`);
  });
}

/** A minimal SMTP server (RFC 5321 subset lettre needs: EHLO, MAIL, RCPT, DATA, QUIT). */
export function smtpSink(port) {
  const messages = [];
  const waiters = [];
  const server = createServer((socket) => {
    socket.setEncoding("latin1");
    // A client may reset the connection once it has what it needs (after QUIT, or a pooled
    // connection dropped at shutdown): that is not a failure of the test.
    socket.on("error", () => {});
    let buffer = "";
    let inData = false;
    let data = "";
    const reply = (line) => socket.write(line + "\r\n");
    reply("220 e2e-sink ESMTP");
    socket.on("data", (chunk) => {
      buffer += chunk;
      for (;;) {
        if (inData) {
          const end = buffer.indexOf("\r\n.\r\n");
          if (end < 0) return;
          data += buffer.slice(0, end);
          buffer = buffer.slice(end + 5);
          inData = false;
          messages.push(data);
          data = "";
          waiters.splice(0).forEach((w) => w());
          reply("250 queued");
          continue;
        }
        const nl = buffer.indexOf("\r\n");
        if (nl < 0) return;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO" || verb === "HELO") reply("250 e2e-sink");
        else if (verb === "DATA") { inData = true; reply("354 end with <CRLF>.<CRLF>"); }
        else if (verb === "QUIT") { reply("221 bye"); socket.end(); return; }
        else reply("250 ok");
      }
    });
  });
  return {
    messages,
    start: () => new Promise((resolve) => server.listen(port, "127.0.0.1", resolve)),
    stop: () => new Promise((resolve) => server.close(resolve)),
    /** Resolves with the first message (received from `since` on) matching `pattern`. */
    async waitFor(pattern, since = 0, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.slice(since).map(decode).find((m) => pattern.test(m));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no mail matching ${pattern} after ${timeoutMs} ms`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 200); });
      }
    },
  };
}

/** Undoes quoted-printable and base64 body encodings so a test can read links. */
function decode(raw) {
  const qp = raw.replace(/=\r\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  const b64 = [...raw.matchAll(/Content-Transfer-Encoding: base64\r\n(?:[^\r\n]+\r\n)*\r\n([A-Za-z0-9+/=\r\n]+)/g)]
    .map((m) => Buffer.from(m[1].replace(/\r\n/g, ""), "base64").toString("utf8"))
    .join("\n");
  return qp + "\n" + b64;
}

/** The agent side: plain HTTP with the agent's key. */
export function agent(key) {
  const call = async (method, path, body) => {
    const res = await fetch(BASE_URL + path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, json, text };
  };
  return {
    tools: () => call("GET", "/api/tools"),
    request: (toolId, reason) => call("POST", `/api/tools/${toolId}/request`, { reason }),
    fetchCredential: (toolId) => call("GET", `/api/tools/${toolId}/credentials`),
    suggest: (name, url, reason) => call("POST", "/api/tools/suggest", { name, url, reason }),
    suggestGuide: (toolId, learned, why) => call("POST", `/api/tools/${toolId}/instructions/suggest`, { learned, why }),
  };
}
